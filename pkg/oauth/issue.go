package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
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
	now := i.now().Truncate(time.Second)
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

// reuseWindowStart answers the start of the reuse window now falls in:
// windows are half a token lifetime long (a whole second at least), counted
// from the Unix epoch, so that every instance agrees on them.
func reuseWindowStart(now time.Time, lifetime time.Duration) time.Time {
	window := max((lifetime / 2).Truncate(time.Second), time.Second)
	return time.Unix(0, 0).Add(now.Sub(time.Unix(0, 0)).Truncate(window))
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
	if sess.Reuse {
		return i.mintReused(ctx, requestID, sess, scopes, audience)
	}
	return i.mintNew(ctx, requestID, sess, scopes, audience)
}

// mintNew generates a random token for sess and stores it.
func (i *Issuer) mintNew(ctx context.Context, requestID string, sess Session, scopes, audience []string) (string, storage.Token, error) {
	tok, sig, err := i.strategy.Generate(ctx)
	if err != nil {
		return "", storage.Token{}, err
	}
	rec := i.record(sig, requestID, sess, scopes, audience)
	// A random 256-bit signature is never taken by another token: taken,
	// it is this one, stored by an attempt the client retried after a
	// timeout (the write landed, its answer did not).
	if err := i.tokens.CreateToken(ctx, rec); err != nil && !errors.Is(err, storage.ErrAlreadyExists) {
		return "", storage.Token{}, fmt.Errorf("store token: %w", err)
	}
	return tok, rec, nil
}

// mintReused answers the token derived from what sess asks for (client,
// secret generation, account, grant, scopes, audience, lifetime and reuse
// window): the stored one when another request of the window stored it,
// else it stores it. Deriving rather than remembering keeps the store free
// of usable tokens, as for every other token, and needs no index: one
// GetToken when the token exists, which is the point of reuse. A derived
// token that was revoked is never stored again (CreateTokenOnce): the
// request gets a new random token instead.
func (i *Issuer) mintReused(ctx context.Context, requestID string, sess Session, scopes, audience []string) (string, storage.Token, error) {
	tok, sig := i.strategy.Derive(reuseSeed(sess, scopes, audience))
	// The request id is derived too, so that revoking the token by its
	// request is the same on every instance.
	rid := sha256.Sum256([]byte("request\x00" + sig))
	rec := i.record(sig, hex.EncodeToString(rid[:16]), sess, scopes, audience)
	for range 2 {
		stored, err := i.tokens.GetToken(ctx, sig)
		if err == nil {
			return tok, stored, nil
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return "", storage.Token{}, fmt.Errorf("get reused token: %w", err)
		}
		err = i.tokens.CreateTokenOnce(ctx, rec)
		if err == nil {
			return tok, rec, nil
		}
		if !errors.Is(err, storage.ErrAlreadyExists) {
			return "", storage.Token{}, fmt.Errorf("store token: %w", err)
		}
		// Another request stored it meanwhile (read it again), or it was
		// revoked.
	}
	return i.mintNew(ctx, requestID, sess, scopes, audience)
}

// reuseSeed answers what a reused token is derived from: everything that
// tells two tokens apart, so that a token is only ever reused for the same
// thing. Scopes and audience are sorted: their order means nothing.
func reuseSeed(sess Session, scopes, audience []string) []byte {
	scopes, audience = slices.Sorted(slices.Values(scopes)), slices.Sorted(slices.Values(audience))
	b := fmt.Appendf(nil, "tollgate reuse v1\x00%d\x00%d\x00%d\x00%s\x00%s\x00%s\x00%d\x00",
		sess.ClientID, sess.Generation, sess.AccountID, sess.Subject, sess.Username, sess.GrantType, sess.ExpiresAt.Unix())
	b = append(b, strings.Join(scopes, " ")...)
	b = append(b, 0)
	return append(b, strings.Join(audience, " ")...)
}

// record answers the stored record of a token for sess.
func (i *Issuer) record(sig, requestID string, sess Session, scopes, audience []string) storage.Token {
	return storage.Token{
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
}
