package meter

import (
	"context"
	"errors"

	"github.com/tollgate/tollgate/storage"
)

// TokenDecider takes the decision of a call made with an access token
// together with reading the token's record: the Bearer check in one step
// (one Redis round trip for a token whose format names its root account,
// ADR 0013).
type TokenDecider interface {
	// DecideToken reads the record of the token stored under id and, only
	// when it is live (stored, not expired, not revoked) and holds terms,
	// decides req as Decider.Decide does. A token that is not live
	// answers storage.ErrNotFound; one whose record does not hold terms
	// answers the token and ErrNotAdmitted: neither spends or counts
	// anything. req.Root must be the token's root account. Another error
	// means no decision was made.
	DecideToken(ctx context.Context, id string, terms storage.TokenTerms, req Request) (storage.Token, Decision, error)
}

// ErrNotAdmitted is returned by DecideToken, with the token, when its
// record does not hold the terms of the call.
var ErrNotAdmitted = errors.New("the token's record does not hold the call's terms")

// TokenReader reads token records.
type TokenReader interface {
	GetToken(ctx context.Context, id string) (storage.Token, error)
}

// WithTokens returns the TokenDecider of d over the records of tokens in
// two steps: GetToken, then, only for a live token, Decide. It is the
// embedded (in process) backend's, which has no round trip to save, and
// the fallback for tokens whose records no script can read with the
// decision.
func WithTokens(d Decider, tokens TokenReader) TokenDecider {
	return twoSteps{d: d, tokens: tokens}
}

type twoSteps struct {
	d      Decider
	tokens TokenReader
}

// DecideToken implements TokenDecider.
func (t twoSteps) DecideToken(ctx context.Context, id string, terms storage.TokenTerms, req Request) (storage.Token, Decision, error) {
	if err := req.Validate(); err != nil {
		return storage.Token{}, Decision{}, err
	}
	tok, err := t.tokens.GetToken(ctx, id)
	if err != nil {
		return storage.Token{}, Decision{}, err
	}
	if !terms.Hold(tok) {
		return tok, Decision{}, ErrNotAdmitted
	}
	d, err := t.d.Decide(ctx, req)
	if err != nil {
		return storage.Token{}, Decision{}, err
	}
	return tok, d, nil
}

// FailOpenTokens returns td that, when td fails (no decision was made: a
// Redis script refused or an error), decides the call again in two steps:
// the record read from tokens, then the decision of failOpen, which lets
// the call through when it fails. With rate_limits.fail_open a check of a
// good token then passes whenever its record can still be read — with
// Redis full, reads go on while every script that writes is refused — as
// it did before the record and the decision were one script. When the
// record cannot be read either (Redis down), the error stands.
func FailOpenTokens(td TokenDecider, failOpen Decider, tokens TokenReader) TokenDecider {
	return failOpenTokens{td: td, then: WithTokens(failOpen, tokens)}
}

type failOpenTokens struct {
	td, then TokenDecider
}

// DecideToken implements TokenDecider.
func (f failOpenTokens) DecideToken(ctx context.Context, id string, terms storage.TokenTerms, req Request) (storage.Token, Decision, error) {
	tok, d, err := f.td.DecideToken(ctx, id, terms, req)
	if err == nil || errors.Is(err, ErrNotAdmitted) || errors.Is(err, storage.ErrNotFound) || errors.Is(err, ErrInvalidRequest) {
		return tok, d, err
	}
	return f.then.DecideToken(ctx, id, terms, req)
}
