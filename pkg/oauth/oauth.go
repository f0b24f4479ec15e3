// Package oauth is the one place where Tollgate's storage contracts meet
// fosite: it adapts storage.Client to fosite.Client and storage.Clients to
// fosite's client manager, defines the session every token request carries,
// mints tokens for the grants, and records backend failures so the HTTP
// layer can answer an outage as an outage instead of as bad credentials.
package oauth

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ory/fosite"

	"github.com/tollgate/tollgate/storage"
)

// Client adapts a storage.Client to fosite.Client.
type Client struct {
	storage.Client
	// AuthGeneration is the generation of the secret the client
	// authenticated with: the current one, or the previous one during a
	// rotation's overlap. Tokens minted now carry it.
	AuthGeneration int64
	id             string
	hashed         []byte
}

var _ fosite.Client = (*Client)(nil)

// NewClient wraps c.
func NewClient(c storage.Client) *Client {
	return &Client{Client: c, AuthGeneration: c.Generation, id: strconv.FormatInt(c.ID, 10), hashed: []byte(c.SecretHash)}
}

func (c *Client) GetID() string                      { return c.id }
func (c *Client) GetHashedSecret() []byte            { return c.hashed }
func (c *Client) GetRedirectURIs() []string          { return nil }
func (c *Client) GetGrantTypes() fosite.Arguments    { return c.GrantTypes }
func (c *Client) GetResponseTypes() fosite.Arguments { return nil }
func (c *Client) GetScopes() fosite.Arguments        { return c.Scopes }
func (c *Client) IsPublic() bool                     { return false }
func (c *Client) GetAudience() fosite.Arguments      { return nil }

// AuthenticatedClient returns the client behind an authenticated fosite
// client.
func AuthenticatedClient(c fosite.Client) (*Client, bool) {
	sc, ok := c.(*Client)
	return sc, ok && sc != nil
}

// ParseClientID parses a public client id: decimal digits only, no sign, no
// leading zero, fitting an int64.
func ParseClientID(s string) (int64, bool) { return storage.ParseID(s) }

// ClientStore adapts storage.Clients to fosite.Storage. A client that is
// unknown, disabled or expired is not found: it authenticates nowhere.
type ClientStore struct {
	clients storage.Clients
	now     func() time.Time
}

var _ fosite.Storage = (*ClientStore)(nil)

// NewClientStore returns a ClientStore reading from clients.
func NewClientStore(clients storage.Clients, now func() time.Time) *ClientStore {
	return &ClientStore{clients: clients, now: now}
}

// GetClient implements fosite.ClientManager.
func (s *ClientStore) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	cid, ok := ParseClientID(id)
	if !ok {
		return nil, fosite.ErrNotFound
	}
	c, err := s.clients.GetClient(ctx, cid)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fosite.ErrNotFound
	}
	if err != nil {
		return nil, RecordOutage(ctx, fmt.Errorf("get client: %w", err))
	}
	if !c.Usable(s.now()) {
		return nil, fosite.ErrNotFound
	}
	return NewClient(c), nil
}

// ClientAssertionJWTValid implements fosite.ClientManager. Tollgate does not
// accept JWT client assertions, so no jti is ever valid.
func (s *ClientStore) ClientAssertionJWTValid(context.Context, string) error {
	return fosite.ErrJTIKnown
}

// SetClientAssertionJWT implements fosite.ClientManager; see
// ClientAssertionJWTValid.
func (s *ClientStore) SetClientAssertionJWT(context.Context, string, time.Time) error {
	return errors.New("client assertions are not supported")
}

// Outage records the first backend failure seen while serving one request.
// fosite turns every storage error into a protocol error (a database outage
// becomes invalid_client); the HTTP layer checks the Outage before writing
// such an answer and replies 503 temporarily_unavailable instead.
type Outage struct {
	mu  sync.Mutex
	err error
}

type outageKey struct{}

// WithOutage returns a context carrying a fresh Outage for one request.
func WithOutage(ctx context.Context) (context.Context, *Outage) {
	o := &Outage{}
	return context.WithValue(ctx, outageKey{}, o), o
}

// RecordOutage notes err on the request's Outage, if any, and returns err.
func RecordOutage(ctx context.Context, err error) error {
	if o, ok := ctx.Value(outageKey{}).(*Outage); ok {
		o.mu.Lock()
		if o.err == nil {
			o.err = err
		}
		o.mu.Unlock()
	}
	return err
}

// Err returns the recorded failure, or nil.
func (o *Outage) Err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}
