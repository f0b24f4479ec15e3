package sql

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// Migration 0007 makes usernames unique regardless of case. Of existing
// names that differ only by case, the oldest user keeps the name; each
// later one is disabled, its tokens revoked, renamed to
// <lower-cased name>~<id> and audited.
func TestMigrationResolvesUsernameCaseCollisions(t *testing.T) {
	for _, b := range testBackends {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			s := openUnmigrated(t, b.url(t))
			all := s.migrations
			s.migrations = all[:6] // up to 0006_disabled_reason
			if _, err := s.Migrate(ctx); err != nil {
				t.Fatalf("migrate to 0006: %v", err)
			}
			// Raw rows: the row types already know the columns 0007 adds.
			now := dbTime(time.Now())
			var accID int64
			if err := s.db.WithContext(ctx).Raw(`INSERT INTO accounts (name, status, version, created_at, updated_at) VALUES ('a', 'active', 1, ?, ?) RETURNING id`,
				now, now).Scan(&accID).Error; err != nil || accID == 0 {
				t.Fatalf("insert account: %d, %v", accID, err)
			}
			acc := storage.Account{ID: accID}
			names := []string{"adminA", "ADMINA", "bob", "admina", "Carol"}
			ids := map[string]int64{}
			for _, n := range names {
				var id int64
				if err := s.db.WithContext(ctx).Raw(`INSERT INTO users (account_id, username, password_hash, role, status, version, created_at, updated_at)
VALUES (?, ?, 'h', 'admin', 'active', 1, ?, ?) RETURNING id`, accID, n, now, now).Scan(&id).Error; err != nil || id == 0 {
					t.Fatalf("insert user %q before 0007: %d, %v", n, id, err)
				}
				ids[n] = id
			}
			before := time.Now().Add(-time.Second)

			s.migrations = all
			if applied, err := s.Migrate(ctx); err != nil || len(applied) == 0 || applied[0] != "0007_security_review" {
				t.Fatalf("migrate from 0006: applied %q, %v", applied, err)
			}
			tests := []struct {
				name       string
				wantName   string
				wantStatus storage.Status
				wantCut    bool
			}{
				{"adminA", "adminA", storage.StatusActive, false},
				{"ADMINA", fmt.Sprintf("admina~%d", ids["ADMINA"]), storage.StatusDisabled, true},
				{"admina", fmt.Sprintf("admina~%d", ids["admina"]), storage.StatusDisabled, true},
				{"bob", "bob", storage.StatusActive, false},
				{"Carol", "Carol", storage.StatusActive, false},
			}
			for _, tt := range tests {
				u, err := s.GetUser(ctx, ids[tt.name])
				if err != nil {
					t.Fatal(err)
				}
				if u.Username != tt.wantName || u.Status != tt.wantStatus {
					t.Errorf("%s: got %q %s, want %q %s", tt.name, u.Username, u.Status, tt.wantName, tt.wantStatus)
				}
				if got := !u.TokensValidAfter.IsZero(); got != tt.wantCut {
					t.Errorf("%s: tokens revoked %t (%v), want %t", tt.name, got, u.TokensValidAfter, tt.wantCut)
				}
				if tt.wantCut && u.TokensValidAfter.Before(before) {
					t.Errorf("%s: tokens revoked up to %v, want about now", tt.name, u.TokensValidAfter)
				}
			}
			if u, err := s.GetUserByUsername(ctx, "ADMINA"); err != nil || u.ID != ids["adminA"] {
				t.Errorf("GetUserByUsername(ADMINA) = %d, %v; want the oldest, %d", u.ID, err, ids["adminA"])
			}
			events, err := s.ListAudit(ctx, storage.AuditFilter{AccountID: acc.ID}, storage.Page{Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			got := map[int64]string{}
			for _, e := range events {
				if e.Action == "user.case_collision" {
					got[e.TargetID] = e.Detail
				}
			}
			if len(got) != 2 || !strings.Contains(got[ids["ADMINA"]], "ADMINA") || !strings.Contains(got[ids["admina"]], fmt.Sprintf("user %d", ids["adminA"])) {
				t.Errorf("collision audit events = %v, want one for each renamed user naming the one kept", got)
			}
		})
	}
}
