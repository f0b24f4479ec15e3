package sweeper_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/sweeper"
	"github.com/tollgate/tollgate/storage"
	sqlstore "github.com/tollgate/tollgate/storage/sql"
	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

// A sweep disables the credentials unused for too long and those past
// their expiry, records why on each, and audits each once.
func TestSweepRecordsWhy(t *testing.T) {
	ctx := t.Context()
	s, err := sqlstore.Open(ctx, sqlstore.Options{URL: sqltest.SQLite(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	acc, err := s.CreateAccount(ctx, storage.Account{Name: "a", Status: storage.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Add(24 * time.Hour)
	const unusedFor = 90 * 24 * time.Hour
	mk := func(name string, lastUsed, expires time.Time, status storage.Status) storage.Client {
		t.Helper()
		c, err := s.CreateClient(ctx, storage.Client{AccountID: acc.ID, Kind: storage.KindKey, Name: name, SecretHash: "h",
			Status: status, LastUsedAt: lastUsed, ExpiresAt: expires})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	stale := now.Add(-unusedFor - time.Hour)
	tests := []struct {
		c      storage.Client
		status storage.Status
		reason storage.DisabledReason
		detail string
	}{
		{mk("unused", stale, time.Time{}, storage.StatusActive), storage.StatusDisabled, storage.DisabledUnused, "unused since "},
		{mk("expired", now.Add(-time.Hour), now.Add(-time.Minute), storage.StatusActive), storage.StatusDisabled, storage.DisabledExpired, "expired at "},
		{mk("both", stale, now.Add(-time.Minute), storage.StatusActive), storage.StatusDisabled, storage.DisabledExpired, "expired at "},
		{mk("in use", now.Add(-time.Hour), time.Time{}, storage.StatusActive), storage.StatusActive, "", ""},
	}
	sw := sweeper.New(s, unusedFor, slog.New(slog.DiscardHandler), func() time.Time { return now })
	n, err := sw.Sweep(ctx)
	if err != nil || n != 3 {
		t.Fatalf("Sweep = %d, %v; want 3", n, err)
	}
	events, err := s.ListAudit(ctx, storage.AuditFilter{AccountID: acc.ID}, storage.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		c, err := s.GetClient(ctx, tt.c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if c.Status != tt.status || c.DisabledReason != tt.reason {
			t.Errorf("%s: status %q, reason %q; want %q, %q", c.Name, c.Status, c.DisabledReason, tt.status, tt.reason)
		}
		var audited []string
		for _, e := range events {
			if e.TargetID == c.ID && e.Action == "key.auto_disable" {
				audited = append(audited, e.Detail)
			}
		}
		switch {
		case tt.detail == "" && len(audited) > 0:
			t.Errorf("%s: audited %q, want nothing", c.Name, audited)
		case tt.detail != "" && (len(audited) != 1 || !strings.HasPrefix(audited[0], tt.detail)):
			t.Errorf("%s: audited %q, want one event %q…", c.Name, audited, tt.detail)
		}
	}
	if n, err := sw.Sweep(ctx); err != nil || n != 0 {
		t.Errorf("second Sweep = %d, %v; want 0", n, err)
	}
}
