package app

import (
	"context"
	"errors"

	"github.com/tollgate/tollgate/pkg/meter"
	redismeter "github.com/tollgate/tollgate/pkg/meter/redis"
	"github.com/tollgate/tollgate/storage"
	tgredis "github.com/tollgate/tollgate/storage/redis"
)

// redisTokenMeter is the check's meter.TokenDecider on Redis: for a token
// whose record lives under its root account's hash tag (ADR 0013), one
// script reads the record and, only when it is live, takes the decision
// (the meter's script body behind the token store's gate): one round trip.
// Any other token is read, then decided: two.
type redisTokenMeter struct {
	tokens  *tgredis.Store
	decider *redismeter.Decider
	gated   *tgredis.Gated
	twoStep meter.TokenDecider
}

var _ meter.TokenDecider = (*redisTokenMeter)(nil)

func newRedisTokenMeter(tokens *tgredis.Store, decider *redismeter.Decider) *redisTokenMeter {
	return &redisTokenMeter{tokens: tokens, decider: decider, gated: tgredis.NewGated(redismeter.DecideLua),
		twoStep: meter.WithTokens(decider, tokens)}
}

// DecideToken implements meter.TokenDecider.
func (m *redisTokenMeter) DecideToken(ctx context.Context, id string, terms storage.TokenTerms, req meter.Request) (storage.Token, meter.Decision, error) {
	root, _, ok := storage.SplitRooted(id)
	if !ok {
		return m.twoStep.DecideToken(ctx, id, terms, req)
	}
	if root != req.Root {
		return storage.Token{}, meter.Decision{}, errors.New("token meter: the request's root is not the token's")
	}
	plan, err := m.decider.Plan(req)
	if err != nil {
		return storage.Token{}, meter.Decision{}, err
	}
	tok, out, err := m.tokens.GetTokenThen(ctx, id, terms, m.gated, plan.Keys, plan.Args...)
	if errors.Is(err, tgredis.ErrTermsRefused) {
		return tok, meter.Decision{}, meter.ErrNotAdmitted
	}
	if err != nil {
		return storage.Token{}, meter.Decision{}, err
	}
	d, err := plan.Decision(out)
	if err != nil {
		return storage.Token{}, meter.Decision{}, err
	}
	return tok, d, nil
}
