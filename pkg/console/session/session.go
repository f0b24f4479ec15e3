// Package session owns the web console's server-side sessions: what one
// holds and the Store contract its backends implement. session/memory keeps
// them in process (the embedded default); session/redis shares them among
// every Tollgate instance. Both pass session/conformance.
//
// A Store never sees the cookie a browser holds: the console stores each
// session under a hash of it (Key), so that reading the store does not give
// anyone a session.
package session

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"
)

// ErrNotFound answers an unknown or expired session.
var ErrNotFound = errors.New("session not found")

// Session is one signed-in browser.
type Session struct {
	UserID int64 `json:"u"`
	// AccountID is the account the console shows: the user's own, or for
	// an admin one of its sub-accounts.
	AccountID int64 `json:"a"`
	// CSRF is the token every form of the session carries.
	CSRF      string    `json:"c"`
	CreatedAt time.Time `json:"t"`
	// LastSeen is the time of the session's last request, for the idle
	// timeout.
	LastSeen time.Time `json:"s"`
	// Sent is the form id of the last form that made a secret or a token
	// (a new client or key, a client token), so that sending that form
	// again, as a reload does, makes nothing twice.
	Sent string `json:"f,omitempty"`
}

// Store keeps sessions until they expire. Keys are Key(cookie value).
type Store interface {
	// Create stores s under key for ttl; a key that exists is replaced.
	Create(ctx context.Context, key string, s Session, ttl time.Duration) error
	// Get answers the session under key, or ErrNotFound.
	Get(ctx context.Context, key string) (Session, error)
	// Update stores s under key for ttl, only when key exists (ErrNotFound
	// otherwise), so that a session deleted meanwhile stays deleted.
	Update(ctx context.Context, key string, s Session, ttl time.Duration) error
	// Delete removes key; an unknown key is no error.
	Delete(ctx context.Context, key string) error
}

// Key answers the key a session is stored under: the hex SHA-256 of the
// cookie value.
func Key(cookie string) string {
	sum := sha256.Sum256([]byte(cookie))
	return hex.EncodeToString(sum[:])
}
