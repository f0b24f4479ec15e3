// Package storage owns Tollgate's domain types (accounts, users, clients and
// issued tokens), the sentinel errors every backend returns, and the narrow
// contracts the backends implement. Backends live in sub-packages:
// storage/sql (GORM on PostgreSQL and SQLite), storage/redis and
// storage/memory (issued tokens). storage/conformance holds the one test
// suite per contract that every backend runs.
package storage

import (
	"context"
	"errors"
	"slices"
	"time"
)

// Sentinel errors. Backends translate driver errors into these in one place
// and wrap everything else with %w; callers check them with errors.Is. Any
// other error means the backend failed and is answered as an outage (503).
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	ErrConflict      = errors.New("conflict")
)

// Status is the life state of an account, a user or a client.
type Status string

const (
	StatusActive   Status = "active"
	StatusDisabled Status = "disabled"
)

// Valid reports whether s is a known status.
func (s Status) Valid() bool { return s == StatusActive || s == StatusDisabled }

// Role is what a user may manage inside their account subtree.
type Role string

const (
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleMember }

// Account is a node of the tenant tree. A credential of an account acts on it
// and on every descendant, never on an ancestor or a sibling.
type Account struct {
	ID        int64
	ParentID  int64 // 0 for a root account
	Name      string
	Status    Status
	CreatedAt time.Time
	UpdatedAt time.Time
}

// User is a person who signs in with a username and password.
type User struct {
	ID           int64
	AccountID    int64
	Username     string // unique across the installation
	PasswordHash string // argon2id (or bcrypt) in PHC string format
	Role         Role
	Status       Status
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Client is THE credential: an OAuth 2.0 client and an API key are the same
// record. Its secret is stored only as a hash.
type Client struct {
	ID            int64 // the public, numeric client_id
	AccountID     int64
	OwnerID       int64 // the user who owns it; 0 for none
	Name          string
	Description   string
	SecretHash    string
	GrantTypes    []string
	Scopes        []string
	MayIntrospect bool
	// TokenLifetime overrides the configured lifetime of the tokens this
	// client obtains; 0 means the configured default of the grant.
	TokenLifetime time.Duration
	Status        Status
	// Generation is carried by every token minted for the client. Bumping it
	// revokes all of them at once without scanning the token store.
	Generation int64
	ExpiresAt  time.Time // zero: never expires
	LastUsedAt time.Time // zero: never used
	CreatedBy  int64     // user id; 0 when created by the system
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Usable reports whether the client may authenticate at time now: it is
// active and has not expired.
func (c Client) Usable(now time.Time) bool {
	if c.Status != StatusActive {
		return false
	}
	return c.ExpiresAt.IsZero() || now.Before(c.ExpiresAt)
}

// HasGrantType reports whether the client may use grant type gt.
func (c Client) HasGrantType(gt string) bool { return slices.Contains(c.GrantTypes, gt) }

// Token is the compact record of an issued access token. The raw token never
// reaches storage: records are keyed by the token's HMAC signature.
type Token struct {
	Signature  string
	RequestID  string
	ClientID   int64
	Generation int64 // the client's generation when the token was minted
	AccountID  int64
	Subject    string // the user id for user tokens, empty for client tokens
	Username   string
	GrantType  string
	Scopes     []string
	Audience   []string
	IssuedAt   time.Time
	ExpiresAt  time.Time
}

// Accounts stores the account tree.
type Accounts interface {
	CreateAccount(ctx context.Context, a Account) (Account, error)
	GetAccount(ctx context.Context, id int64) (Account, error)
	// AccountInSubtree reports whether account id is rootID or one of its
	// descendants. Unknown ids answer false, not an error.
	AccountInSubtree(ctx context.Context, rootID, id int64) (bool, error)
}

// Users stores users.
type Users interface {
	// CreateUser answers ErrAlreadyExists when the username is taken.
	CreateUser(ctx context.Context, u User) (User, error)
	GetUser(ctx context.Context, id int64) (User, error)
	GetUserByUsername(ctx context.Context, username string) (User, error)
	// UpdateUser loads user id, applies update and stores the result in one
	// transaction, like UpdateClient. ID, AccountID and CreatedAt cannot be
	// changed; a taken username answers ErrAlreadyExists.
	UpdateUser(ctx context.Context, id int64, update func(*User) error) (User, error)
}

// Clients stores credentials.
type Clients interface {
	CreateClient(ctx context.Context, c Client) (Client, error)
	GetClient(ctx context.Context, id int64) (Client, error)
	// UpdateClient loads client id, applies update and stores the result in
	// one transaction. An error from update aborts the change and is returned
	// as is. ID, AccountID and CreatedAt cannot be changed.
	UpdateClient(ctx context.Context, id int64, update func(*Client) error) (Client, error)
	DeleteClient(ctx context.Context, id int64) error
	// TouchClient records that the client was used at t. Backends may skip
	// the write when the stored value is less than a minute older than t.
	TouchClient(ctx context.Context, id int64, t time.Time) error
}

// Tokens stores issued tokens until they expire.
type Tokens interface {
	// CreateToken stores t until t.ExpiresAt. It answers ErrAlreadyExists
	// when the signature is taken.
	CreateToken(ctx context.Context, t Token) error
	// GetToken answers ErrNotFound for an unknown, expired or revoked token.
	GetToken(ctx context.Context, signature string) (Token, error)
	// DeleteToken removes the token; deleting an unknown token is no error.
	DeleteToken(ctx context.Context, signature string) error
	// RevokeRequest removes every token of the request id; an unknown
	// request id is no error.
	RevokeRequest(ctx context.Context, requestID string) error
}

// Pinger reports whether a backend can be reached.
type Pinger interface {
	Ping(ctx context.Context) error
}
