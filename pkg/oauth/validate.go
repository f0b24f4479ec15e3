package oauth

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/tollgate/tollgate/pkg/token"
	"github.com/tollgate/tollgate/storage"
)

// ErrInactive is returned for a token that is not good, whatever the reason:
// callers must not learn, or tell, why.
var ErrInactive = errors.New("inactive token")

// ValidatorStore is what token validation reads besides the token store.
type ValidatorStore interface {
	GetClient(ctx context.Context, id int64) (storage.Client, error)
	GetUser(ctx context.Context, id int64) (storage.User, error)
	AccountStanding(ctx context.Context, id int64) (storage.Standing, error)
}

// Validator decides whether a presented access token is good. It is shared
// by introspection, the management API and every other bearer check.
type Validator struct {
	strategy *token.Strategy
	tokens   storage.Tokens
	store    ValidatorStore
	usage    UsageRecorder
	now      func() time.Time
}

// NewValidator returns a Validator. Every good token is a use of its
// client, noted with usage so that a credential used only through a
// long-lived token is not taken for unused; usage may be nil: no record.
func NewValidator(strategy *token.Strategy, tokens storage.Tokens, store ValidatorStore, usage UsageRecorder, now func() time.Time) *Validator {
	return &Validator{strategy: strategy, tokens: tokens, store: store, usage: usage, now: now}
}

// Valid is a good token with the records it stands on.
type Valid struct {
	Token  storage.Token
	Client storage.Client
	User   *storage.User // nil for a client's own token
}

// Validate checks tok: well-formed and signed, stored, not expired, its
// client present, usable and still on the generation the token was minted
// under, its account and the client's account (and their ancestors)
// active and not disabled or enabled again since the token was issued
// (storage.Account.TokensValidAfter), and its user, if any, active and not having revoked their tokens
// since the token was issued (storage.User.TokensValidAfter). It answers
// ErrInactive for anything not good and another error only when a backend
// failed. A good token is recorded as a use of its client.
func (v *Validator) Validate(ctx context.Context, tok string) (Valid, error) {
	now := v.now()
	valid, err := v.validate(ctx, tok, now)
	if err != nil {
		return Valid{}, err
	}
	if v.usage != nil {
		v.usage.Record(valid.Token.ClientID, now)
	}
	return valid, nil
}

func (v *Validator) validate(ctx context.Context, tok string, now time.Time) (Valid, error) {
	sig, err := v.strategy.Signature(ctx, tok)
	if err != nil {
		return Valid{}, ErrInactive
	}
	rec, err := v.tokens.GetToken(ctx, sig)
	if errors.Is(err, storage.ErrNotFound) {
		return Valid{}, ErrInactive
	}
	if err != nil {
		return Valid{}, fmt.Errorf("get token: %w", err)
	}
	if !now.Before(rec.ExpiresAt) {
		return Valid{}, ErrInactive
	}
	client, err := v.store.GetClient(ctx, rec.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		return Valid{}, ErrInactive
	}
	if err != nil {
		return Valid{}, fmt.Errorf("get client: %w", err)
	}
	if !client.Usable(now) || !client.TokenGenerationValid(rec.Generation, now) {
		return Valid{}, ErrInactive
	}
	accounts := []int64{rec.AccountID}
	if client.AccountID != rec.AccountID {
		accounts = append(accounts, client.AccountID)
	}
	for _, id := range accounts {
		standing, err := v.store.AccountStanding(ctx, id)
		if errors.Is(err, storage.ErrNotFound) {
			return Valid{}, ErrInactive
		}
		if err != nil {
			return Valid{}, fmt.Errorf("check account: %w", err)
		}
		// A token issued before its account (or an ancestor) was last
		// disabled or enabled again stays dead: re-enabling revives none.
		if !standing.Active || !standing.TokenIssuedValid(rec.IssuedAt) {
			return Valid{}, ErrInactive
		}
	}
	valid := Valid{Token: rec, Client: client}
	if rec.Subject == "" {
		return valid, nil
	}
	userID, err := strconv.ParseInt(rec.Subject, 10, 64)
	if err != nil {
		return Valid{}, ErrInactive
	}
	user, err := v.store.GetUser(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return Valid{}, ErrInactive
	}
	if err != nil {
		return Valid{}, fmt.Errorf("get user: %w", err)
	}
	// Issue times are whole seconds and the cut-off too: a token issued in
	// the second its user's tokens were revoked is inactive.
	if user.Status != storage.StatusActive || !user.TokenIssuedValid(rec.IssuedAt) {
		return Valid{}, ErrInactive
	}
	valid.User = &user
	return valid, nil
}
