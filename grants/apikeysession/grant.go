// Package apikeysession implements the key session grant: an API key (or a
// client allowed the grant) is exchanged for a key token at
// POST /auth/access/session, for a lifetime the caller may choose up to a
// cap. The token acts for the credential and dies with it.
package apikeysession

import (
	"context"
	"net/url"
	"time"

	"github.com/tollgate/tollgate/grants"
	"github.com/tollgate/tollgate/storage"
)

// GrantType labels the tokens of this grant, and is what a plain client's
// grant types list to be allowed it.
const GrantType = "api_key_session"

// Settings are the configuration values the grant reads.
type Settings interface {
	// KeySessionLifetime is the lifetime of a key token when the caller
	// asks for none.
	KeySessionLifetime() time.Duration
	// KeySessionMaxLifetime is the longest lifetime a caller may ask for.
	KeySessionMaxLifetime() time.Duration
}

// Grant is the key session grant.
type Grant struct {
	settings Settings
}

var _ grants.Grant = (*Grant)(nil)

// New returns the grant.
func New(settings Settings) *Grant {
	return &Grant{settings: settings}
}

// Name implements grants.Grant.
func (g *Grant) Name() string { return GrantType }

// Policy implements grants.Grant: the caller may choose the lifetime up to
// the configured maximum, the credential's own token lifetime capping both;
// API keys are allowed the grant without listing it.
func (g *Grant) Policy() grants.Policy {
	return grants.Policy{
		Lifetime:    g.settings.KeySessionLifetime(),
		MaxLifetime: g.settings.KeySessionMaxLifetime(),
		Implicit:    isKey,
	}
}

// isKey reports whether c is an API key: exchanging a key for a key token
// is what keys are for; a plain client needs the grant in its grant types,
// as for every other grant.
func isKey(c storage.Client) bool {
	return c.Kind == storage.KindKey
}

// Check implements grants.Grant: the lifetime parameter is read by the
// endpoint, which knows its syntax; the grant has no other.
func (g *Grant) Check(url.Values) error { return nil }

// Authorize implements grants.Grant: the token acts for the credential, in
// its own account.
func (g *Grant) Authorize(_ context.Context, client storage.Client, _ url.Values) (grants.Subject, error) {
	return grants.Subject{AccountID: client.AccountID}, nil
}
