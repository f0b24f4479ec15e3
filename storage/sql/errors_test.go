package sql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/tollgate/tollgate/storage"
)

var sentinels = []error{storage.ErrNotFound, storage.ErrAlreadyExists, storage.ErrConflict}

// isSentinel reports whether err is one of the storage sentinels.
func isSentinel(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func TestMapError(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name string
		err  error
		want error // a sentinel, or the error that must stay in the chain
	}{
		{"record not found", gorm.ErrRecordNotFound, storage.ErrNotFound},
		{"no rows", sql.ErrNoRows, storage.ErrNotFound},
		{"wrapped no rows", fmt.Errorf("scan: %w", sql.ErrNoRows), storage.ErrNotFound},
		{"postgres unique violation", &pgconn.PgError{Code: "23505"}, storage.ErrAlreadyExists},
		{"wrapped postgres unique violation", fmt.Errorf("insert: %w", &pgconn.PgError{Code: "23505"}), storage.ErrAlreadyExists},
		{"postgres foreign key violation", &pgconn.PgError{Code: "23503"}, storage.ErrConflict},
		{"postgres check violation", &pgconn.PgError{Code: "23514"}, nil},
		{"postgres undefined table", &pgconn.PgError{Code: "42P01"}, nil},
		{"deadline", context.DeadlineExceeded, context.DeadlineExceeded},
		{"other", errBoom, errBoom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mapError("do thing", tt.err)
			if got == nil {
				t.Fatalf("mapError(%v) = nil, want an error", tt.err)
			}
			if !strings.HasPrefix(got.Error(), "do thing: ") {
				t.Errorf("mapError(%v) = %q, want it prefixed with the operation", tt.err, got)
			}
			switch {
			case tt.want != nil && !errors.Is(got, tt.want):
				t.Errorf("mapError(%v) = %v, want errors.Is %v", tt.err, got, tt.want)
			case tt.want == nil && isSentinel(got):
				t.Errorf("mapError(%v) = %v, want no storage sentinel", tt.err, got)
			case tt.want == nil && !errors.Is(got, tt.err):
				t.Errorf("mapError(%v) = %v, want the driver error kept in the chain", tt.err, got)
			}
		})
	}
	if err := mapError("do thing", nil); err != nil {
		t.Errorf("mapError(nil) = %v, want nil", err)
	}
}

// TestDriverErrors provokes each kind of error on the real databases.
func TestDriverErrors(t *testing.T) {
	for _, b := range testBackends {
		t.Run(b.name, func(t *testing.T) {
			s := openUnmigrated(t, b.url(t))
			if _, err := s.Migrate(t.Context()); err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			ctx := t.Context()
			account, err := s.CreateAccount(ctx, storage.Account{Name: "a", Status: storage.StatusActive})
			if err != nil {
				t.Fatalf("CreateAccount: %v", err)
			}
			user, err := s.CreateUser(ctx, storage.User{AccountID: account.ID, Username: "secret-name", PasswordHash: "h", Role: storage.RoleMember, Status: storage.StatusActive})
			if err != nil {
				t.Fatalf("CreateUser: %v", err)
			}
			validClient := storage.Client{AccountID: account.ID, Name: "c", SecretHash: "h", Status: storage.StatusActive}
			withClient := func(modify func(*storage.Client)) storage.Client {
				c := validClient
				modify(&c)
				return c
			}
			cancelled, cancel := context.WithCancel(ctx)
			cancel()

			tests := []struct {
				name string
				call func() error
				want error // a sentinel or a context error; nil: any non-sentinel error
			}{
				{"duplicate username", func() error {
					_, err := s.CreateUser(ctx, storage.User{AccountID: account.ID, Username: user.Username, PasswordHash: "h", Role: storage.RoleMember, Status: storage.StatusActive})
					return err
				}, storage.ErrAlreadyExists},
				{"user of unknown account", func() error {
					_, err := s.CreateUser(ctx, storage.User{AccountID: 1 << 40, Username: "u2", PasswordHash: "h", Role: storage.RoleMember, Status: storage.StatusActive})
					return err
				}, storage.ErrConflict},
				{"client of unknown owner", func() error {
					_, err := s.CreateClient(ctx, withClient(func(c *storage.Client) { c.OwnerID = 1 << 40 }))
					return err
				}, storage.ErrConflict},
				{"account of unknown parent", func() error {
					_, err := s.CreateAccount(ctx, storage.Account{ParentID: 1 << 40, Name: "x", Status: storage.StatusActive})
					return err
				}, storage.ErrConflict},
				{"invalid status", func() error {
					_, err := s.CreateClient(ctx, withClient(func(c *storage.Client) { c.Status = "deleted" }))
					return err
				}, nil},
				{"invalid role", func() error {
					_, err := s.CreateUser(ctx, storage.User{AccountID: account.ID, Username: "u3", PasswordHash: "h", Role: "root", Status: storage.StatusActive})
					return err
				}, nil},
				{"scope with a space", func() error {
					_, err := s.CreateClient(ctx, withClient(func(c *storage.Client) { c.Scopes = []string{"read write"} }))
					return err
				}, nil},
				{"empty grant type", func() error {
					_, err := s.CreateClient(ctx, withClient(func(c *storage.Client) { c.GrantTypes = []string{""} }))
					return err
				}, nil},
				{"sub-second token lifetime", func() error {
					_, err := s.CreateClient(ctx, withClient(func(c *storage.Client) { c.TokenLifetime = 1500 * time.Millisecond }))
					return err
				}, nil},
				{"negative token lifetime", func() error {
					_, err := s.CreateClient(ctx, withClient(func(c *storage.Client) { c.TokenLifetime = -time.Second }))
					return err
				}, nil},
				{"touch at zero time", func() error {
					return s.TouchClient(ctx, 1, time.Time{})
				}, nil},
				{"cancelled context", func() error {
					_, err := s.GetAccount(cancelled, account.ID)
					return err
				}, context.Canceled},
			}
			for _, tt := range tests {
				err := tt.call()
				switch {
				case err == nil:
					t.Errorf("%s: got no error", tt.name)
				case tt.want != nil && !errors.Is(err, tt.want):
					t.Errorf("%s: got error %v, want %v", tt.name, err, tt.want)
				case tt.want == nil && isSentinel(err):
					t.Errorf("%s: got error %v, want no storage sentinel", tt.name, err)
				}
				if err != nil && strings.Contains(err.Error(), user.Username) {
					t.Errorf("%s: error %q quotes a stored value", tt.name, err)
				}
			}
		})
	}
}
