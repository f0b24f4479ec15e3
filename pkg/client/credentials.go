package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Credential is an API client or an API key: the same record, a key being
// one tgk_… string.
type Credential struct {
	ID   int64  `json:"id"`
	Kind string `json:"kind"` // client or key
	// AccountID is the credential's account; OwnerID its user, 0 for a
	// credential of the account.
	AccountID int64 `json:"account_id"`
	OwnerID   int64 `json:"owner_id,omitempty"`
	// IsDefault marks a user's system-generated default key.
	IsDefault   bool   `json:"is_default"`
	Name        string `json:"name"`
	Description string `json:"description"`
	// AccessRights is the bundle the scopes came from, "" for raw scopes.
	AccessRights  string   `json:"access_rights,omitempty"`
	Scopes        []string `json:"scopes"`
	GrantTypes    []string `json:"grant_types"`
	MayIntrospect bool     `json:"may_introspect"`
	// TokenLifetime is in seconds; 0 means the server default.
	TokenLifetime int64 `json:"token_lifetime,omitempty"`
	ReuseTokens   bool  `json:"reuse_tokens"`
	// AccessTokenStrategy is the format of its access tokens: opaque or
	// jwt (RFC 9068).
	AccessTokenStrategy string `json:"access_token_strategy,omitempty"`
	// TokenEndpointAuthMethod is how it authenticates (RFC 7591 names):
	// client_secret_basic or client_secret_post (a secret, either way), or
	// private_key_jwt (a JWT client assertion signed with a key of JWKS or
	// JWKSURI).
	TokenEndpointAuthMethod string `json:"token_endpoint_auth_method,omitempty"`
	// JWKS is its public JWK Set (RFC 7517 §5); JWKSURI where it is
	// published. At most one is set.
	JWKS    json.RawMessage `json:"jwks,omitempty"`
	JWKSURI string          `json:"jwks_uri,omitempty"`
	// DPoPBoundAccessTokens: its tokens must be bound to a DPoP key (RFC
	// 9449); a token request without a proof is refused.
	DPoPBoundAccessTokens bool                 `json:"dpop_bound_access_tokens"`
	RateLimits            map[string]RateLimit `json:"rate_limits,omitempty"`
	// Quota bounds its calls per UTC day or month; nil: none.
	Quota *Quota `json:"quota"`
	// QuotaUsage is what is spent of Quota in the current period (in the
	// answers about one credential, not in lists).
	QuotaUsage *QuotaUsage `json:"quota_usage,omitempty"`
	// AllowedCIDRs are the networks it may be used from; empty: anywhere.
	AllowedCIDRs []string `json:"allowed_cidrs"`
	// Status is active, disabled, or expired (active but past ExpiresAt).
	Status Status `json:"status"`
	// DisabledReason says why a disabled credential is disabled: manual,
	// unused, expired or user.
	DisabledReason         string     `json:"disabled_reason,omitempty"`
	SecretHint             string     `json:"secret_hint"`
	KeyHint                string     `json:"key_hint,omitempty"`
	ExpiresAt              *time.Time `json:"expires_at,omitempty"`
	LastUsedAt             *time.Time `json:"last_used_at,omitempty"`
	PreviousSecretRetireAt *time.Time `json:"previous_secret_retire_at,omitempty"`
	CreatedBy              int64      `json:"created_by,omitempty"`
	CreatedAt              time.Time  `json:"created_at"`
	UpdatedAt              time.Time  `json:"updated_at"`
	// Version is the record's version, its ETag.
	Version int64 `json:"version"`
	// Raw is the record's JSON as the server sent it.
	Raw json.RawMessage `json:"-"`
}

// CredentialWithSecret is a credential just created or rotated, with the
// secret that is shown this once.
type CredentialWithSecret struct {
	Credential
	// ClientSecret is a client's secret (with ID as client_id); for a key,
	// its secret without the id.
	ClientSecret string `json:"client_secret"`
	// Key is a key's tgk_… string: the one value to use.
	Key string `json:"key,omitempty"`
	// Use names the field to use: key or client_secret.
	Use string `json:"use"`
}

// RateLimit overrides a rate class for one credential.
type RateLimit struct {
	Rate  int `json:"rate"`  // requests per second
	Burst int `json:"burst"` // requests at once
}

// Quota periods: quotas refill at 00:00 UTC of the next day, or of the
// first of the next month.
const (
	QuotaDay   = "day"
	QuotaMonth = "month"
)

// Quota is at most Limit calls (or their cost) per Period.
type Quota struct {
	Limit  int64  `json:"limit"`
	Period string `json:"period"` // QuotaDay or QuotaMonth
}

// QuotaUsage is what is spent of a quota in the current period.
type QuotaUsage struct {
	Used      int64     `json:"used"`
	Remaining int64     `json:"remaining"`
	ResetsAt  time.Time `json:"resets_at"`
}

// CredentialCreate is a new client or key. Fields left zero take the
// server's defaults.
type CredentialCreate struct {
	Name        string `json:"name"`
	Description string `json:"description,omitzero"`
	// AccessRights is a named bundle of scopes; Scopes raw scopes instead.
	AccessRights string   `json:"access_rights,omitzero"`
	Scopes       []string `json:"scopes,omitzero"`
	// GrantTypes, clients only: the allowed grants.
	GrantTypes    []string `json:"grant_types,omitzero"`
	MayIntrospect bool     `json:"may_introspect,omitzero"`
	// TokenLifetime in seconds; 0 means the server default.
	TokenLifetime int64 `json:"token_lifetime,omitzero"`
	ReuseTokens   bool  `json:"reuse_tokens,omitzero"`
	// AccessTokenStrategy is opaque (the server default when empty) or jwt.
	AccessTokenStrategy string `json:"access_token_strategy,omitzero"`
	// TokenEndpointAuthMethod is client_secret_basic (the server default
	// when empty), client_secret_post or private_key_jwt; private_key_jwt
	// needs JWKS or JWKSURI, and the answer then holds no secret.
	TokenEndpointAuthMethod string `json:"token_endpoint_auth_method,omitzero"`
	// JWKS is a JWK Set of public keys (a JSON object).
	JWKS json.RawMessage `json:"jwks,omitzero"`
	// JWKSURI is the https URL of the client's JWK Set.
	JWKSURI string `json:"jwks_uri,omitzero"`
	// DPoPBoundAccessTokens requires a DPoP proof for every token.
	DPoPBoundAccessTokens bool                 `json:"dpop_bound_access_tokens,omitzero"`
	RateLimits            map[string]RateLimit `json:"rate_limits,omitzero"`
	// Quota bounds its calls per UTC day or month (admins only).
	Quota *Quota `json:"quota,omitempty"`
	// AllowedCIDRs are the addresses or CIDR prefixes it may be used from
	// (at most 100).
	AllowedCIDRs []string `json:"allowed_cidrs,omitzero"`
	// ExpiresAt is an RFC 3339 time after which it stops working.
	ExpiresAt string `json:"expires_at,omitzero"`
	// OwnerID (a user the admin manages) or AccountID (an account of the
	// admin's subtree, for a credential no user owns): admins only.
	OwnerID   int64 `json:"owner_id,omitzero"`
	AccountID int64 `json:"account_id,omitzero"`
	// Password is the caller's own, when the account's policy asks for it.
	Password string `json:"password,omitzero"`
}

// CredentialUpdate changes the fields it sets. An empty non-nil Scopes,
// GrantTypes or RateLimits is sent, and clears them.
type CredentialUpdate struct {
	Name          *string  `json:"name,omitempty"`
	Description   *string  `json:"description,omitempty"`
	AccessRights  *string  `json:"access_rights,omitempty"`
	Scopes        []string `json:"scopes,omitzero"`
	GrantTypes    []string `json:"grant_types,omitzero"` // clients only
	MayIntrospect *bool    `json:"may_introspect,omitempty"`
	TokenLifetime *int64   `json:"token_lifetime,omitempty"` // seconds; 0 is the server default
	ReuseTokens   *bool    `json:"reuse_tokens,omitempty"`
	// AccessTokenStrategy is opaque or jwt.
	AccessTokenStrategy *string `json:"access_token_strategy,omitempty"`
	// TokenEndpointAuthMethod changes how it authenticates; moving between
	// a secret and keys revokes its tokens.
	TokenEndpointAuthMethod *string `json:"token_endpoint_auth_method,omitempty"`
	// JWKS replaces its JWK Set (and removes its JWKSURI).
	JWKS json.RawMessage `json:"jwks,omitzero"`
	// JWKSURI replaces its jwks_uri (and removes its JWKS).
	JWKSURI *string `json:"jwks_uri,omitempty"`
	// DPoPBoundAccessTokens requires a DPoP proof for every token.
	DPoPBoundAccessTokens *bool                `json:"dpop_bound_access_tokens,omitempty"`
	RateLimits            map[string]RateLimit `json:"rate_limits,omitzero"`
	// Quota sets its quota (Set), or removes it (Remove); admins only.
	Quota Setting[Quota] `json:"quota,omitzero"`
	// AllowedCIDRs replaces its allowlist; an empty non-nil one removes it.
	AllowedCIDRs []string `json:"allowed_cidrs,omitzero"`
	// ExpiresAt is an RFC 3339 time, or "" for never.
	ExpiresAt *string `json:"expires_at,omitempty"`
	Status    Status  `json:"status,omitzero"`
	// IfMatch, when set, is the version (or ETag) the record must still
	// have.
	IfMatch string `json:"-"`
}

// Rotation gives a credential a new secret.
type Rotation struct {
	// Overlap is how long the old secret keeps working; nil means the
	// server's default (24 h), 0 retires it at once. Whole seconds.
	Overlap *time.Duration `json:"-"`
	// IfMatch, when set, is the version (or ETag) the record must still
	// have.
	IfMatch string `json:"-"`
}

func (r Rotation) body() any {
	var b struct {
		OverlapSeconds *int64 `json:"overlap_seconds,omitempty"`
	}
	if r.Overlap != nil {
		s := int64(*r.Overlap / time.Second)
		b.OverlapSeconds = &s
	}
	return b
}

// CredentialFilter selects clients or keys. A member sees only their own,
// whatever the filter says.
type CredentialFilter struct {
	AccountID int64
	// Subtree, with AccountID, includes the account's descendants.
	Subtree bool
	OwnerID int64
	Status  Status
	// Name keeps records whose name contains it, ignoring case.
	Name string
	Page
}

func (f CredentialFilter) query() url.Values {
	q := f.Page.query()
	setInt(q, "owner_id", f.OwnerID)
	if f.Status != "" {
		q.Set("status", string(f.Status))
	}
	setInt(q, "account_id", f.AccountID)
	if f.Subtree {
		q.Set("subtree", "true")
	}
	if f.Name != "" {
		q.Set("name", f.Name)
	}
	return q
}

// ClientTokenRequest asks for a long-lived token of a client.
type ClientTokenRequest struct {
	// Password is the calling user's own.
	Password string `json:"password"`
	// Lifetime in seconds; nil means the server's default (one year).
	Lifetime *int64 `json:"lifetime,omitempty"`
}

// ClientToken is a long-lived token of a client, shown once.
type ClientToken struct {
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type"`
	ExpiresIn   int64     `json:"expires_in"`
	ExpiresAt   time.Time `json:"expires_at"`
	Scope       string    `json:"scope"`
	// Raw is the answer's JSON as the server sent it.
	Raw json.RawMessage `json:"-"`
}

// credentialAPI holds the calls clients and keys share, under base.
type credentialAPI struct{ base string }

var (
	clients = credentialAPI{base: "/clients"}
	keys    = credentialAPI{base: "/keys"}
)

func credentialRaw(c *Credential) *json.RawMessage           { return &c.Raw }
func withSecretRaw(c *CredentialWithSecret) *json.RawMessage { return &c.Raw }

func (k credentialAPI) create(ctx context.Context, c *Client, in CredentialCreate) (*CredentialWithSecret, error) {
	return record(ctx, c, call{method: http.MethodPost, path: k.base, body: in}, withSecretRaw)
}

func (k credentialAPI) get(ctx context.Context, c *Client, id int64) (*Credential, error) {
	return record(ctx, c, call{method: http.MethodGet, path: idPath(k.base, id)}, credentialRaw)
}

func (k credentialAPI) update(ctx context.Context, c *Client, id int64, in CredentialUpdate) (*Credential, error) {
	return record(ctx, c, call{method: http.MethodPatch, path: idPath(k.base, id), body: in, ifMatch: in.IfMatch}, credentialRaw)
}

func (k credentialAPI) rotate(ctx context.Context, c *Client, id int64, r Rotation) (*CredentialWithSecret, error) {
	return record(ctx, c, call{method: http.MethodPost, path: idPath(k.base, id, "rotate"), body: r.body(), ifMatch: r.IfMatch}, withSecretRaw)
}

func (k credentialAPI) delete(ctx context.Context, c *Client, id int64, ifMatch string) (answer, error) {
	return c.do(ctx, call{method: http.MethodDelete, path: idPath(k.base, id), ifMatch: ifMatch})
}

// CreateClient creates an API client; its secret is in the result, once.
func (c *Client) CreateClient(ctx context.Context, in CredentialCreate) (*CredentialWithSecret, error) {
	return clients.create(ctx, c, in)
}

// GetClient reads an API client.
func (c *Client) GetClient(ctx context.Context, id int64) (*Credential, error) {
	return clients.get(ctx, c, id)
}

// ListClients reads a page of API clients.
func (c *Client) ListClients(ctx context.Context, f CredentialFilter) (*List[Credential], error) {
	return list[Credential](ctx, c, clients.base, f.query())
}

// UpdateClient changes the fields in set.
func (c *Client) UpdateClient(ctx context.Context, id int64, in CredentialUpdate) (*Credential, error) {
	return clients.update(ctx, c, id, in)
}

// DisableClient disables an API client: its tokens stop working at once.
// ifMatch may be empty.
func (c *Client) DisableClient(ctx context.Context, id int64, ifMatch string) (*Credential, error) {
	return clients.update(ctx, c, id, CredentialUpdate{Status: StatusDisabled, IfMatch: ifMatch})
}

// EnableClient enables an API client. ifMatch may be empty.
func (c *Client) EnableClient(ctx context.Context, id int64, ifMatch string) (*Credential, error) {
	return clients.update(ctx, c, id, CredentialUpdate{Status: StatusActive, IfMatch: ifMatch})
}

// RotateClient gives an API client a new secret, in the result once.
func (c *Client) RotateClient(ctx context.Context, id int64, r Rotation) (*CredentialWithSecret, error) {
	return clients.rotate(ctx, c, id, r)
}

// DeleteClient deletes an API client: its tokens stop working at once.
// ifMatch may be empty.
func (c *Client) DeleteClient(ctx context.Context, id int64, ifMatch string) error {
	_, err := clients.delete(ctx, c, id, ifMatch)
	return err
}

// CreateClientToken returns a long-lived token of an API client; the
// calling user confirms with their own password.
func (c *Client) CreateClientToken(ctx context.Context, id int64, in ClientTokenRequest) (*ClientToken, error) {
	return record(ctx, c, call{method: http.MethodPost, path: idPath("/clients", id, "tokens"), body: in},
		func(t *ClientToken) *json.RawMessage { return &t.Raw })
}

// CreateKey creates an API key; the key string is in the result, once.
// GrantTypes must be empty: a key always uses client_credentials.
func (c *Client) CreateKey(ctx context.Context, in CredentialCreate) (*CredentialWithSecret, error) {
	return keys.create(ctx, c, in)
}

// GetKey reads an API key.
func (c *Client) GetKey(ctx context.Context, id int64) (*Credential, error) {
	return keys.get(ctx, c, id)
}

// ListKeys reads a page of API keys.
func (c *Client) ListKeys(ctx context.Context, f CredentialFilter) (*List[Credential], error) {
	return list[Credential](ctx, c, keys.base, f.query())
}

// UpdateKey changes the fields in set; GrantTypes must be empty.
func (c *Client) UpdateKey(ctx context.Context, id int64, in CredentialUpdate) (*Credential, error) {
	return keys.update(ctx, c, id, in)
}

// DisableKey disables an API key: its tokens stop working at once. ifMatch
// may be empty.
func (c *Client) DisableKey(ctx context.Context, id int64, ifMatch string) (*Credential, error) {
	return keys.update(ctx, c, id, CredentialUpdate{Status: StatusDisabled, IfMatch: ifMatch})
}

// EnableKey enables an API key. ifMatch may be empty.
func (c *Client) EnableKey(ctx context.Context, id int64, ifMatch string) (*Credential, error) {
	return keys.update(ctx, c, id, CredentialUpdate{Status: StatusActive, IfMatch: ifMatch})
}

// RotateKey gives an API key a new key string, in the result once.
func (c *Client) RotateKey(ctx context.Context, id int64, r Rotation) (*CredentialWithSecret, error) {
	return keys.rotate(ctx, c, id, r)
}

// DeleteKey deletes an API key: its tokens stop working at once. Deleting a
// user's default key makes a new default key, whose id is returned as
// replacement (0 otherwise). ifMatch may be empty.
func (c *Client) DeleteKey(ctx context.Context, id int64, ifMatch string) (replacement int64, err error) {
	a, err := keys.delete(ctx, c, id, ifMatch)
	if err != nil {
		return 0, err
	}
	if r := a.header.Get("Tollgate-Replacement-Key"); r != "" {
		replacement, _ = strconv.ParseInt(r, 10, 64) // a malformed header names no replacement
	}
	return replacement, nil
}
