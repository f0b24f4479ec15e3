// Package clientcredentials implements the client_credentials grant
// (RFC 6749 §4.4): a client obtains a token for itself.
package clientcredentials

import (
	"context"
	"net/url"
	"time"

	"github.com/tollgate/tollgate/grants"
	"github.com/tollgate/tollgate/storage"
)

// GrantType is the grant_type value of this grant.
const GrantType = "client_credentials"

// Settings are the configuration values the grant reads.
type Settings interface {
	// ClientCredentialsLifetime is the token lifetime for clients without
	// their own.
	ClientCredentialsLifetime() time.Duration
}

// Grant is the client_credentials grant.
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

// Policy implements grants.Grant: the client's own token lifetime, else the
// configured one; a client may ask for its tokens to be reused.
func (g *Grant) Policy() grants.Policy {
	return grants.Policy{Lifetime: g.settings.ClientCredentialsLifetime(), Reuse: true}
}

// Check implements grants.Grant: the grant has no parameters of its own.
func (g *Grant) Check(url.Values) error { return nil }

// Authorize implements grants.Grant: the token acts for the client, in its
// own account.
func (g *Grant) Authorize(_ context.Context, client storage.Client, _ url.Values) (grants.Subject, error) {
	return grants.Subject{AccountID: client.AccountID}, nil
}
