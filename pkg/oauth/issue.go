package oauth

import (
	"context"
	"time"

	"github.com/ory/fosite"

	"github.com/tollgate/tollgate/pkg/tokens"
)

// Issuer is the token endpoint's side of the token service: it fills a
// fosite request's session with what the grant decided and mints the token
// through the service — the one step every grant shares once it has
// decided who the token is for and what it may do.
type Issuer struct {
	tokens *tokens.Service
}

// NewIssuer returns an Issuer minting through svc.
func NewIssuer(svc *tokens.Service) *Issuer {
	return &Issuer{tokens: svc}
}

// Prepare is the last step every grant shares: it grants the scopes to ar
// and fills ar's session with sess (the grant's own fields: account,
// subject, username, grant type) plus the client, the generation of the
// secret it authenticated with, and the expiry — the client's own token
// lifetime, else fallback.
func (i *Issuer) Prepare(ar fosite.AccessRequester, authed *Client, granted []string, sess Session, fallback time.Duration) error {
	target, ok := ar.GetSession().(*Session)
	if !ok {
		return fosite.ErrServerError.WithDebug("unexpected session type")
	}
	for _, s := range granted {
		ar.GrantScope(s)
	}
	lifetime := authed.TokenLifetime
	if lifetime <= 0 {
		lifetime = fallback
	}
	sess.ClientID, sess.Generation = authed.ID, authed.AuthGeneration
	now := i.tokens.Now().Truncate(time.Second)
	sess.ExpiresAt = now.Add(lifetime)
	if sess.Reuse {
		// A reused token lives from the start of its reuse window: the
		// requests of the window's first half-lifetime get it, each with
		// at least half of its life left.
		sess.ExpiresAt = reuseWindowStart(now, lifetime).Add(lifetime)
	}
	*target = sess
	return nil
}

// reuseWindowStart returns the start of the reuse window now falls in:
// windows are half a token lifetime long (a whole second at least), counted
// from the Unix epoch, so that every instance agrees on them.
func reuseWindowStart(now time.Time, lifetime time.Duration) time.Time {
	window := max((lifetime / 2).Truncate(time.Second), time.Second)
	return time.Unix(0, 0).Add(now.Sub(time.Unix(0, 0)).Truncate(window))
}

// Issue mints the token the grant prepared in ar's *Session through the
// token service and fills resp.
func (i *Issuer) Issue(ctx context.Context, ar fosite.AccessRequester, resp fosite.AccessResponder) error {
	sess, ok := ar.GetSession().(*Session)
	if !ok || sess.ClientID == 0 || sess.ExpiresAt.IsZero() {
		return fosite.ErrServerError.WithDebug("token request has no prepared session")
	}
	now := i.tokens.Now().Truncate(time.Second)
	tok, rec, err := i.tokens.Issue(ctx, ar.GetID(), sess.Claims, ar.GetGrantedScopes(), ar.GetGrantedAudience())
	if err != nil {
		return RecordOutage(ctx, err)
	}
	resp.SetAccessToken(tok)
	resp.SetTokenType("bearer")
	resp.SetExpiresIn(rec.ExpiresAt.Sub(now).Round(time.Second))
	resp.SetScopes(rec.Scopes)
	return nil
}
