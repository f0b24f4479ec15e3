// Package eskimidsp implements the eskimi_dsp grant: a password-style grant
// in which a client authenticates itself and a user of its account subtree,
// and gets a token acting as that user. The grant's name is configuration.
package eskimidsp

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/ory/fosite"

	"github.com/tollgate/tollgate/grants"
	"github.com/tollgate/tollgate/pkg/authn"
	"github.com/tollgate/tollgate/pkg/bruteforce"
	"github.com/tollgate/tollgate/pkg/oauth"
	"github.com/tollgate/tollgate/storage"
)

// DefaultGrantType is the grant_type value used unless configured otherwise.
const DefaultGrantType = "eskimi_dsp"

// Settings are the configuration values the grant reads.
type Settings interface {
	// EskimiDSPGrantName is the grant_type value of this grant.
	EskimiDSPGrantName() string
	// EskimiDSPLifetime is the token lifetime for clients without their own.
	EskimiDSPLifetime() time.Duration
}

// Store is the storage the grant reads.
type Store interface {
	GetUserByUsername(ctx context.Context, username string) (storage.User, error)
	AccountInSubtree(ctx context.Context, rootID, id int64) (bool, error)
	AccountActive(ctx context.Context, id int64) (bool, error)
}

// Passwords verifies user passwords.
type Passwords interface {
	Verify(hash, password string) (bool, error)
	VerifyDummy(password string)
}

// Guard holds back usernames (per source) and sources with too many wrong
// passwords (*bruteforce.Guard of kind user).
type Guard interface {
	Begin(ctx context.Context, id, source string) (bruteforce.Attempt, error)
}

// Handler is the eskimi_dsp grant.
type Handler struct {
	settings  Settings
	store     Store
	passwords Passwords
	guard     Guard
}

var _ grants.Grant = (*Handler)(nil)

// New returns the grant. guard may be nil: no brute-force protection.
func New(settings Settings, store Store, passwords Passwords, guard Guard) *Handler {
	return &Handler{settings: settings, store: store, passwords: passwords, guard: guard}
}

// errBadCredentials is the one answer for an unknown user, a wrong password,
// a disabled user, a user of a disabled account and a user outside the
// client's accounts: the caller must not learn which it was. It replaces
// fosite's invalid_grant description, which speaks of authorization codes
// and redirection URIs this grant has none of.
var errBadCredentials = fosite.ErrInvalidGrant.WithDescription("The username or password is wrong.")

// Name implements grants.Grant: the configured grant name.
func (h *Handler) Name() string { return h.settings.EskimiDSPGrantName() }

// Policy implements grants.Grant: the client's own token lifetime, else the
// configured one.
func (h *Handler) Policy() grants.Policy {
	return grants.Policy{Lifetime: h.settings.EskimiDSPLifetime()}
}

// Check implements grants.Grant: the username and password are required.
func (h *Handler) Check(form url.Values) error {
	if form.Get("username") == "" || form.Get("password") == "" {
		return fosite.ErrInvalidRequest.WithHint("The username and password parameters are required.")
	}
	return nil
}

// Authorize implements grants.Grant: it authenticates the user and checks
// they belong to the client's account subtree; the token acts for them.
func (h *Handler) Authorize(ctx context.Context, client storage.Client, form url.Values) (grants.Subject, error) {
	user, err := h.authenticate(ctx, client, form.Get("username"), form.Get("password"))
	if err != nil {
		return grants.Subject{}, err
	}
	return grants.Subject{
		AccountID: user.AccountID,
		Subject:   strconv.FormatInt(user.ID, 10),
		Username:  user.Username,
	}, nil
}

// authenticate checks the user's password (pkg/authn) and that the user
// belongs to the client's account subtree. Every refusal is
// errBadCredentials, counted as a failure of the username from the
// request's source, and of the source; after too many, attempts from that
// source answer a *bruteforce.BlockedError before the password is
// verified, the right password included. A backend failure counts nothing.
func (h *Handler) authenticate(ctx context.Context, client storage.Client, username, password string) (storage.User, error) {
	user, err := authn.New(h.store, h.passwords, h.guard).Authenticate(ctx, username, password, func(ctx context.Context, u storage.User) (bool, error) {
		within, err := h.store.AccountInSubtree(ctx, client.AccountID, u.AccountID)
		if err != nil {
			return false, fmt.Errorf("check account subtree: %w", err)
		}
		return within, nil
	})
	switch {
	case err == nil:
		return user, nil
	case errors.Is(err, authn.ErrBadCredentials):
		return storage.User{}, errBadCredentials
	case errors.Is(err, authn.ErrUnavailable):
		return storage.User{}, oauth.RecordOutage(ctx, err)
	case errors.As(err, new(*bruteforce.BlockedError)):
		return storage.User{}, err
	}
	return storage.User{}, fosite.ErrServerError.WithWrap(err)
}
