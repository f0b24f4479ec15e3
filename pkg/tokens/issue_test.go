package tokens_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/token"
	"github.com/tollgate/tollgate/pkg/tokens"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/memory"
)

// retriedStore stores a token and then answers as a retried write does
// when the first attempt landed but its answer was lost: ErrAlreadyExists.
type retriedStore struct{ *memory.Store }

func (s retriedStore) CreateToken(ctx context.Context, t storage.Token) error {
	if err := s.Store.CreateToken(ctx, t); err != nil {
		return err
	}
	return storage.ErrAlreadyExists
}

func TestIssueSurvivesARetriedWrite(t *testing.T) {
	now := func() time.Time { return time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC) }
	store := retriedStore{memory.New(memory.Options{Now: now})}
	secret := bytes.Repeat([]byte{'k'}, 32)
	format, err := tokens.NewOpaque(secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	strategy, err := token.NewStrategy(secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := tokens.New(tokens.Options{Format: format, Tokens: store, Now: now})
	tok, rec, err := svc.Issue(t.Context(), "", tokens.Claims{ClientID: 7, GrantType: "client_credentials",
		ExpiresAt: now().Add(time.Hour)}, []string{"read"}, nil)
	if err != nil {
		t.Fatalf("Issue with a write that landed but answered ErrAlreadyExists: %v", err)
	}
	sig, err := strategy.Signature(t.Context(), tok)
	if err != nil || sig != rec.Signature {
		t.Fatalf("Signature(minted) = %q, %v; want %q", sig, err, rec.Signature)
	}
	if got, err := store.GetToken(t.Context(), sig); err != nil || got.ClientID != 7 {
		t.Fatalf("GetToken(minted) = %+v, %v", got, err)
	}
}
