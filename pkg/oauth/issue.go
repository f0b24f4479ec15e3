package oauth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/ory/fosite"

	"github.com/tollgate/tollgate/pkg/token"
	"github.com/tollgate/tollgate/storage"
)

// Issuer mints access tokens: the one step every grant shares once it has
// decided who the token is for and what it may do.
type Issuer struct {
	strategy *token.Strategy
	tokens   storage.Tokens
	now      func() time.Time
}

// NewIssuer returns an Issuer storing tokens in tokens.
func NewIssuer(strategy *token.Strategy, tokens storage.Tokens, now func() time.Time) *Issuer {
	return &Issuer{strategy: strategy, tokens: tokens, now: now}
}

// Now returns the issuer's clock reading.
func (i *Issuer) Now() time.Time { return i.now() }

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
	sess.ExpiresAt = i.now().Truncate(time.Second).Add(lifetime)
	*target = sess
	return nil
}

// Issue mints the token the grant prepared in ar's *Session, stores its
// record and fills resp.
func (i *Issuer) Issue(ctx context.Context, ar fosite.AccessRequester, resp fosite.AccessResponder) error {
	sess, ok := ar.GetSession().(*Session)
	if !ok || sess.ClientID == 0 || sess.ExpiresAt.IsZero() {
		return fosite.ErrServerError.WithDebug("token request has no prepared session")
	}
	now := i.now().Truncate(time.Second)
	tok, rec, err := i.Mint(ctx, ar.GetID(), *sess, ar.GetGrantedScopes(), ar.GetGrantedAudience())
	if err != nil {
		return RecordOutage(ctx, err)
	}
	resp.SetAccessToken(tok)
	resp.SetTokenType("bearer")
	resp.SetExpiresIn(rec.ExpiresAt.Sub(now).Round(time.Second))
	resp.SetScopes(rec.Scopes)
	return nil
}

// Mint generates and stores a token for sess outside a fosite request (the
// management API's client tokens, API key sessions). requestID may be empty:
// a fresh one is made.
func (i *Issuer) Mint(ctx context.Context, requestID string, sess Session, scopes, audience []string) (string, storage.Token, error) {
	if requestID == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", storage.Token{}, fmt.Errorf("request id: %w", err)
		}
		requestID = hex.EncodeToString(b[:])
	}
	tok, sig, err := i.strategy.Generate(ctx)
	if err != nil {
		return "", storage.Token{}, err
	}
	rec := storage.Token{
		Signature:  sig,
		RequestID:  requestID,
		ClientID:   sess.ClientID,
		Generation: sess.Generation,
		AccountID:  sess.AccountID,
		Subject:    sess.Subject,
		Username:   sess.Username,
		GrantType:  sess.GrantType,
		Scopes:     slices.Clone(scopes),
		Audience:   slices.Clone(audience),
		IssuedAt:   i.now().Truncate(time.Second),
		ExpiresAt:  sess.ExpiresAt.Truncate(time.Second),
	}
	if err := i.tokens.CreateToken(ctx, rec); err != nil {
		return "", storage.Token{}, fmt.Errorf("store token: %w", err)
	}
	return tok, rec, nil
}
