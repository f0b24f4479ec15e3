package meter_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/meter"
	"github.com/tollgate/tollgate/pkg/ratelimit"
	"github.com/tollgate/tollgate/storage"
)

// failingTokens is a TokenDecider whose every answer is err.
type failingTokens struct{ err error }

func (f failingTokens) DecideToken(context.Context, string, storage.TokenTerms, meter.Request) (storage.Token, meter.Decision, error) {
	return storage.Token{}, meter.Decision{}, f.err
}

// failingDecider is a Decider that always fails (Redis full or down).
type failingDecider struct{}

func (failingDecider) Decide(context.Context, meter.Request) (meter.Decision, error) {
	return meter.Decision{}, errors.New("OOM command not allowed when used memory > 'maxmemory'")
}

func (failingDecider) Spent(context.Context, int64, meter.Holder, storage.Quota, time.Time) (int64, error) {
	return 0, errors.New("down")
}

// records is a TokenReader over a map; a nil map fails every read.
type records map[string]storage.Token

func (r records) GetToken(_ context.Context, id string) (storage.Token, error) {
	if r == nil {
		return storage.Token{}, errors.New("connection refused")
	}
	t, ok := r[id]
	if !ok {
		return storage.Token{}, storage.ErrNotFound
	}
	return t, nil
}

// With rate_limits.fail_open, a token decision that failed (Redis refused
// the one script: full) is taken again from the record alone and fails
// open; a refusal or an unknown token stands, and so does a failure when
// the record cannot be read either.
func TestFailOpenTokens(t *testing.T) {
	now := time.Now()
	tok := storage.Token{Signature: "a1.sig", ClientID: 7, AccountID: 3, Generation: 1, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	terms := storage.TokenTerms{ClientID: 7, AccountID: 3, Generations: []int64{1}, IssuedAfter: now.Add(-time.Minute)}
	req := meter.Request{Root: 1, CredentialID: 7, Class: "default", Cost: 1, Rate: ratelimit.Limit{Rate: 10, Burst: 10}}
	scriptRefused := errors.New("OOM command not allowed when used memory > 'maxmemory'")
	open := meter.FailOpen(failingDecider{}, nil)

	tests := []struct {
		name       string
		first      error
		reader     records
		wantErr    error // nil: allowed, failed open
		wantAnyErr bool
	}{
		{"the script refused, the record read alone", scriptRefused, records{"a1.sig": tok}, nil, false},
		{"an unknown token stands", storage.ErrNotFound, records{"a1.sig": tok}, storage.ErrNotFound, false},
		{"a token whose record refuses the call stands", meter.ErrNotAdmitted, records{"a1.sig": tok}, meter.ErrNotAdmitted, false},
		{"the record cannot be read either", scriptRefused, nil, nil, true},
		{"the script refused and the token is gone", scriptRefused, records{}, storage.ErrNotFound, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			td := meter.FailOpenTokens(failingTokens{err: tt.first}, open, tt.reader)
			got, d, err := td.DecideToken(t.Context(), "a1.sig", terms, req)
			switch {
			case tt.wantAnyErr:
				if err == nil {
					t.Fatalf("DecideToken = %+v, nil; want an error", d)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("DecideToken error = %v, want %v", err, tt.wantErr)
				}
			default:
				if err != nil {
					t.Fatalf("DecideToken error = %v, want none", err)
				}
				if !d.Allowed || !d.FailedOpen || got.Signature != tok.Signature {
					t.Errorf("DecideToken = %+v, %+v; want the record and an allowed, failed-open decision", got, d)
				}
			}
		})
	}
}
