// Package grants holds what every grant shares, and each grant in its own
// sub-package: clientcredentials (RFC 6749 §4.4), eskimidsp (the
// password-style grant platforms already use) and apikeysession (an API key
// exchanged for a key token at POST /auth/access/session).
//
// A grant is a Grant: the settings the shared steps read (its Policy), a
// check of its own parameters, and the decision of whom the token acts for.
// The steps every grant shares run once, in Admit: is the client allowed
// the grant, the token's lifetime (the credential's own, the grant's
// default and cap), the scope policy (requested ∩ allowed), and the claims
// the token is minted with. Client authentication (and with it the status
// of the client's account) runs before, in pkg/oauth; the token is minted
// by pkg/tokens. Handler serves a Grant at the token endpoint through
// fosite; Registry names the grants the wiring may enable.
package grants

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/tollgate/tollgate/pkg/oauth"
	"github.com/tollgate/tollgate/pkg/scope"
	"github.com/tollgate/tollgate/pkg/tokens"
	"github.com/tollgate/tollgate/pkg/tracing"
	"github.com/tollgate/tollgate/storage"
)

// Grant is one way of obtaining an access token.
type Grant interface {
	// Name is the grant_type value, also what a client's grant types list
	// to be allowed it.
	Name() string
	// Policy returns the settings the shared steps read.
	Policy() Policy
	// Check validates the grant's own parameters. It runs once the client
	// is known to be allowed the grant, before the scope policy, and
	// returns the error to answer (a fosite error at the token endpoint).
	Check(form url.Values) error
	// Authorize decides whom the token acts for: the authenticated client
	// itself, or a user it signs in. It runs last, after the scope policy.
	Authorize(ctx context.Context, client storage.Client, form url.Values) (Subject, error)
}

// Policy are the settings of a grant the shared steps read.
type Policy struct {
	// Lifetime is the lifetime of the grant's tokens: for credentials
	// without one of their own, or when the caller asks for none.
	Lifetime time.Duration
	// MaxLifetime, when positive, lets the caller ask for a lifetime up to
	// it, and makes the credential's own token lifetime a cap (of the
	// default and of what may be asked) instead of the lifetime itself: a
	// credential limited to short tokens cannot step around its limit.
	MaxLifetime time.Duration
	// Implicit, when set, allows the grant to the credentials it reports
	// true for even when their grant types do not list it.
	Implicit func(storage.Client) bool
	// Universal allows the grant to every client: a client's grant types
	// never list it (Set.Assignable leaves it out).
	Universal bool
	// Reuse honours the client's ReuseTokens setting (storage.Client).
	Reuse bool
}

// Subject is whom a token acts for.
type Subject struct {
	AccountID int64
	// Subject and Username are the user's, for a user token; empty for
	// the client's own.
	Subject  string
	Username string
	// Within, when set, bounds the token by another the client holds: a
	// token obtained in exchange for another (RFC 8693) never gets more
	// than the token it was exchanged for.
	Within *Bounds
	// Audience is the token's audience (a JWT's aud), when the grant sets
	// one: an exchanged token's target account.
	Audience []string
}

// Bounds are what a token may not exceed: those of the token it was
// exchanged for.
type Bounds struct {
	// Scopes are the only scopes the token may get; none of them left
	// among the client's is ErrNoScope.
	Scopes []string
	// ExpiresAt is when the token expires at the latest.
	ExpiresAt time.Time
	// Generation is the client generation the token stands on, so that it
	// dies with the secret the other token was minted under.
	Generation int64
	// JKT is the DPoP key the other token is bound to (RFC 9449), if any:
	// the token is bound to the same key, and the request must prove it.
	JKT string
}

// Request is a token request as the shared steps see it.
type Request struct {
	// Client is the authenticated client.
	Client *oauth.Client
	// Scopes are the requested scopes; none asks for every allowed one.
	Scopes []string
	// Lifetime is the lifetime the caller asked for; 0 for none.
	Lifetime time.Duration
	// Form holds the request's parameters, for the grant's own.
	Form url.Values
}

// Admission is a request admitted by the shared steps: the claims of the
// token to mint and its scopes.
type Admission struct {
	Claims   tokens.Claims
	Scopes   []string
	Audience []string
}

// ErrNotAllowed is returned when the client may not use the grant.
var ErrNotAllowed = errors.New("client not allowed the grant")

// ErrNoScope is returned when none of the requested scopes is allowed to
// the client.
var ErrNoScope = errors.New("no requested scope allowed")

// LifetimeError is returned for a lifetime asked beyond the credential's
// cap.
type LifetimeError struct {
	// Max is the longest lifetime the credential may get.
	Max time.Duration
}

func (e *LifetimeError) Error() string {
	return fmt.Sprintf("lifetime beyond the maximum of %s", e.Max)
}

// Admit runs the steps every grant shares for req, at now: the client must
// be allowed g (ErrNotAllowed), g checks its own parameters, the lifetime
// is settled (a *LifetimeError), the scopes granted (ErrNoScope), and g
// decides whom the token acts for. Errors of g's own are returned as they
// are. When traced, the steps run in a span "grant <name>", so the grant's
// own work (a password verified, a database read) is its child.
func Admit(ctx context.Context, g Grant, req Request, now time.Time) (Admission, error) {
	if !tracing.Enabled() {
		return admit(ctx, g, req, now)
	}
	ctx, span := tracing.Start(ctx, "grant "+g.Name(), tracing.KeyGrantType.String(g.Name()))
	defer span.End()
	adm, err := admit(ctx, g, req, now)
	switch {
	case err == nil:
	case errors.Is(err, ErrNotAllowed):
		tracing.Fail(span, "grant not allowed")
	case errors.Is(err, ErrNoScope):
		tracing.Fail(span, "no scope")
	default:
		tracing.Fail(span, "refused")
	}
	return adm, err
}

func admit(ctx context.Context, g Grant, req Request, now time.Time) (Admission, error) {
	p, client := g.Policy(), req.Client.Client
	if !Allowed(g.Name(), p, client) {
		return Admission{}, ErrNotAllowed
	}
	if err := g.Check(req.Form); err != nil {
		return Admission{}, err
	}
	life, err := Lifetime(p, client, req.Lifetime)
	if err != nil {
		return Admission{}, err
	}
	granted, err := scope.Grant(req.Scopes, client.Scopes)
	if err != nil {
		return Admission{}, ErrNoScope
	}
	sub, err := g.Authorize(ctx, client, req.Form)
	if err != nil {
		return Admission{}, err
	}
	now = now.Truncate(time.Second)
	claims := tokens.Claims{
		ClientID:   client.ID,
		Generation: req.Client.AuthGeneration,
		AccountID:  sub.AccountID,
		Subject:    sub.Subject,
		Username:   sub.Username,
		GrantType:  g.Name(),
		ExpiresAt:  now.Add(life),
		Format:     client.AccessTokenStrategy,
		Reuse:      p.Reuse && client.ReuseTokens,
	}
	if b := sub.Within; b != nil {
		// Never reused: a reused token's expiry is its reuse window's,
		// which may end after the other token's.
		claims.Reuse = false
		claims.Generation = b.Generation
		claims.JKT = b.JKT
		if claims.ExpiresAt.After(b.ExpiresAt) {
			claims.ExpiresAt = b.ExpiresAt
		}
		granted = slices.DeleteFunc(granted, func(s string) bool { return !slices.Contains(b.Scopes, s) })
		if len(granted) == 0 && len(b.Scopes) > 0 {
			return Admission{}, ErrNoScope
		}
	}
	if claims.Reuse {
		// A reused token lives from the start of its reuse window: the
		// requests of the window's first half-lifetime get it, each with
		// at least half of its life left.
		claims.ExpiresAt = reuseWindowStart(now, life).Add(life)
	}
	return Admission{Claims: claims, Scopes: granted, Audience: sub.Audience}, nil
}

// Allowed reports whether c may use the grant named name with policy p:
// the grant is universal, c's grant types list it, or the grant allows it
// implicitly.
func Allowed(name string, p Policy, c storage.Client) bool {
	return p.Universal || c.HasGrantType(name) || (p.Implicit != nil && p.Implicit(c))
}

// Lifetime returns the lifetime of a token of policy p for c, asked being
// the lifetime the caller asked for (0: none). Without a MaxLifetime the
// credential's own token lifetime, else the grant's; with one, asked or
// the grant's lifetime, capped by the credential's (see Policy).
func Lifetime(p Policy, c storage.Client, asked time.Duration) (time.Duration, error) {
	if p.MaxLifetime <= 0 {
		if c.TokenLifetime > 0 {
			return c.TokenLifetime, nil
		}
		return p.Lifetime, nil
	}
	longest := lifetimeCap(c, p.MaxLifetime)
	if asked == 0 {
		return min(p.Lifetime, longest), nil
	}
	if asked > longest {
		return 0, &LifetimeError{Max: longest}
	}
	return asked, nil
}

// lifetimeCap is the longest token c may get: the configured maximum, or
// the credential's own token lifetime when it is shorter.
func lifetimeCap(c storage.Client, configured time.Duration) time.Duration {
	if c.TokenLifetime > 0 && c.TokenLifetime < configured {
		return c.TokenLifetime
	}
	return configured
}

// reuseWindowStart returns the start of the reuse window now falls in:
// windows are half a token lifetime long (a whole second at least), counted
// from the Unix epoch, so that every instance agrees on them.
func reuseWindowStart(now time.Time, lifetime time.Duration) time.Time {
	window := max((lifetime / 2).Truncate(time.Second), time.Second)
	return time.Unix(0, 0).Add(now.Sub(time.Unix(0, 0)).Truncate(window))
}
