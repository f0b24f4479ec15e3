package client

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// FederatedCredentialCreate is a new federated credential of an API
// client: tokens of Issuer whose sub is Subject, whose aud names one of
// Audiences and whose top-level string claims equal Claims authenticate
// the client (workload identity federation).
type FederatedCredentialCreate struct {
	Name      string            `json:"name,omitempty"`
	Issuer    string            `json:"issuer"`
	Subject   string            `json:"subject"`
	Audiences []string          `json:"audiences"`
	Claims    map[string]string `json:"claims,omitempty"`
	// IfMatch, when set, is the client's version the change applies to.
	IfMatch string `json:"-"`
}

// FederatedCredential is a federated credential of an API client.
type FederatedCredential struct {
	ID        int64             `json:"id"`
	ClientID  int64             `json:"client_id"`
	Name      string            `json:"name"`
	Issuer    string            `json:"issuer"`
	Subject   string            `json:"subject"`
	Audiences []string          `json:"audiences"`
	Claims    map[string]string `json:"claims"`
	CreatedBy *int64            `json:"created_by"`
	CreatedAt time.Time         `json:"created_at"`
	// Raw is the answer's JSON as the server sent it.
	Raw json.RawMessage `json:"-"`
}

// CreateFederatedCredential adds a federated credential to API client id.
func (c *Client) CreateFederatedCredential(ctx context.Context, id int64, in FederatedCredentialCreate) (*FederatedCredential, error) {
	return record(ctx, c, call{method: http.MethodPost, path: idPath("/clients", id, "federated-credentials"), body: in, ifMatch: in.IfMatch},
		func(f *FederatedCredential) *json.RawMessage { return &f.Raw })
}

// ListFederatedCredentials reads every federated credential of API client
// id (at most 20).
func (c *Client) ListFederatedCredentials(ctx context.Context, id int64) (*List[FederatedCredential], error) {
	return list[FederatedCredential](ctx, c, idPath("/clients", id, "federated-credentials"), nil)
}

// DeleteFederatedCredential deletes federated credential fid of API
// client id: its tokens stop authenticating the client at once. ifMatch
// may be empty.
func (c *Client) DeleteFederatedCredential(ctx context.Context, id, fid int64, ifMatch string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: idPath("/clients", id, "federated-credentials", strconv.FormatInt(fid, 10)), ifMatch: ifMatch})
	return err
}
