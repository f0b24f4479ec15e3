package oauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/ory/fosite"

	"github.com/tollgate/tollgate/pkg/token"
	"github.com/tollgate/tollgate/storage"
)

// touchInterval is the precision of a client's last-used time.
const touchInterval = time.Minute

// Issuer mints access tokens: the one step every grant shares once it has
// decided who the token is for and what it may do.
type Issuer struct {
	strategy *token.Strategy
	tokens   storage.Tokens
	clients  storage.Clients
	logger   *slog.Logger
	now      func() time.Time
}

// NewIssuer returns an Issuer storing tokens in tokens and recording client
// use in clients.
func NewIssuer(strategy *token.Strategy, tokens storage.Tokens, clients storage.Clients, logger *slog.Logger, now func() time.Time) *Issuer {
	return &Issuer{strategy: strategy, tokens: tokens, clients: clients, logger: logger, now: now}
}

// Now returns the issuer's clock reading.
func (i *Issuer) Now() time.Time { return i.now() }

// Issue mints the token the grant prepared in ar's *Session, stores its
// record and fills resp.
func (i *Issuer) Issue(ctx context.Context, ar fosite.AccessRequester, resp fosite.AccessResponder) error {
	sess, ok := ar.GetSession().(*Session)
	if !ok || sess.ClientID == 0 || sess.ExpiresAt.IsZero() {
		return fosite.ErrServerError.WithDebug("token request has no prepared session")
	}
	now := i.now()
	tok, sig, err := i.strategy.Generate(ctx)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	rec := storage.Token{
		Signature:  sig,
		RequestID:  ar.GetID(),
		ClientID:   sess.ClientID,
		Generation: sess.Generation,
		AccountID:  sess.AccountID,
		Subject:    sess.Subject,
		Username:   sess.Username,
		GrantType:  sess.GrantType,
		Scopes:     slices.Clone(ar.GetGrantedScopes()),
		Audience:   slices.Clone(ar.GetGrantedAudience()),
		IssuedAt:   now.Truncate(time.Second),
		ExpiresAt:  sess.ExpiresAt.Truncate(time.Second),
	}
	if err := i.tokens.CreateToken(ctx, rec); err != nil {
		return RecordOutage(ctx, fmt.Errorf("store token: %w", err))
	}
	// Last use is kept to the minute, so most requests skip the write. A
	// failure here must not fail a token that is already stored.
	if now.Sub(sess.ClientLastUsedAt) >= touchInterval {
		if err := i.clients.TouchClient(ctx, sess.ClientID, now); err != nil && !errors.Is(err, storage.ErrNotFound) {
			i.logger.WarnContext(ctx, "record client use", "client_id", sess.ClientID, "err", err)
		}
	}
	resp.SetAccessToken(tok)
	resp.SetTokenType("bearer")
	resp.SetExpiresIn(rec.ExpiresAt.Sub(now).Round(time.Second))
	resp.SetScopes(rec.Scopes)
	return nil
}
