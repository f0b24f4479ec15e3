package sql

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

// TestInTxTimeout checks that the query timeout bounds the whole of InTx:
// each call inside is quick, yet the transaction as a whole runs out.
func TestInTxTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	for _, b := range testBackends {
		t.Run(b.name, func(t *testing.T) {
			s := openWith(t, Options{URL: b.url(t), QueryTimeout: timeout})
			if _, err := s.Migrate(t.Context()); err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			ctx := t.Context()
			var created storage.Account
			start := time.Now()
			err := s.InTx(ctx, func(tx storage.Store) error {
				var err error
				created, err = tx.CreateAccount(ctx, storage.Account{Name: "slow", Status: storage.StatusActive})
				if err != nil {
					t.Errorf("CreateAccount inside InTx: %v", err)
					return err
				}
				// Work that outlasts the timeout, then another quick call.
				time.Sleep(timeout + 100*time.Millisecond)
				_, err = tx.GetAccount(ctx, created.ID)
				return err
			})
			if err == nil {
				t.Fatalf("InTx outlasting the query timeout succeeded, want an error")
			}
			if elapsed := time.Since(start); elapsed > timeout+2*time.Second {
				t.Errorf("InTx took %v, want about %v", elapsed, timeout)
			}
			if _, err := s.GetAccount(ctx, created.ID); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("GetAccount(%d) written by a timed out transaction: got error %v, want %v", created.ID, err, storage.ErrNotFound)
			}
		})
	}
}

// TestBoundStoreRefusesPoolCalls checks that the Store InTx hands to fn
// refuses the calls that would take a connection of their own.
func TestBoundStoreRefusesPoolCalls(t *testing.T) {
	s := openWith(t, Options{URL: sqltest.SQLite(t)})
	if _, err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	err := s.InTx(t.Context(), func(tx storage.Store) error {
		bound := tx.(*Store)
		for name, call := range map[string]func() error{
			"Ping":  func() error { return bound.Ping(t.Context()) },
			"Close": bound.Close,
			"Migrate": func() error {
				_, err := bound.Migrate(t.Context())
				return err
			},
			"PendingMigrations": func() error {
				_, err := bound.PendingMigrations(t.Context())
				return err
			},
		} {
			if err := call(); !errors.Is(err, errBoundToTx) {
				t.Errorf("%s on a bound store: got error %v, want %v", name, err, errBoundToTx)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Errorf("Ping after InTx: %v", err)
	}
}

func TestCut(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"", 3, ""},
		{"abc", 3, "abc"},
		{"abcd", 3, "abc"},
		{"äöüß", 2, "äö"},
		{"a\xffb", 5, "a\uFFFDb"},
		{"abc", 0, ""},
	}
	for _, tt := range tests {
		if got := cut(tt.in, tt.n); got != tt.want {
			t.Errorf("cut(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}
