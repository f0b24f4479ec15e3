package sql

import (
	"testing"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// Migration 0006 gives the credentials disabled before it the reason of
// the last audit event that changed their status.
func TestMigrationBackfillsDisabledReason(t *testing.T) {
	for _, b := range testBackends {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			s := openUnmigrated(t, b.url(t))
			all := s.migrations
			s.migrations = all[:5] // up to 0005_token_reuse
			if _, err := s.Migrate(ctx); err != nil {
				t.Fatalf("migrate to 0005: %v", err)
			}
			now := dbTime(time.Now())
			// A raw row: the row type knows columns of later migrations.
			var acc storage.Account
			if err := s.db.WithContext(ctx).Raw(`INSERT INTO accounts (name, status, version, created_at, updated_at) VALUES ('a', 'active', 1, ?, ?) RETURNING id`,
				now, now).Scan(&acc.ID).Error; err != nil || acc.ID == 0 {
				t.Fatalf("insert account: %d, %v", acc.ID, err)
			}
			type event struct{ action, outcome, detail string }
			ok := func(action, detail string) event { return event{action, "success", detail} }
			tests := []struct {
				name   string
				kind   storage.Kind
				status storage.Status
				events []event
				want   storage.DisabledReason
			}{
				{"active", storage.KindKey, storage.StatusActive, []event{ok("key.auto_disable", "unused since 2020-01-01T00:00:00Z"), ok("key.update", "fields status")}, ""},
				{"unused", storage.KindKey, storage.StatusDisabled, []event{ok("key.create", `name "k"`), ok("key.auto_disable", "unused since 2020-01-01T00:00:00Z")}, storage.DisabledUnused},
				{"expired", storage.KindClient, storage.StatusDisabled, []event{ok("client.auto_disable", "expired at 2020-01-01T00:00:00Z")}, storage.DisabledExpired},
				{"owner disabled", storage.KindKey, storage.StatusDisabled, []event{ok("key.disable", "owner user 3 disabled")}, storage.DisabledUser},
				{"by hand", storage.KindClient, storage.StatusDisabled, []event{ok("client.update", "fields status")}, storage.DisabledManually},
				{"unused, enabled, expired", storage.KindClient, storage.StatusDisabled, []event{ok("client.auto_disable", "unused since 2020-01-01T00:00:00Z"),
					ok("client.update", "fields status"), ok("client.auto_disable", "expired at 2021-01-01T00:00:00Z")}, storage.DisabledExpired},
				{"unused, enabled, by hand", storage.KindKey, storage.StatusDisabled, []event{ok("key.auto_disable", "unused since 2020-01-01T00:00:00Z"),
					ok("key.update", "fields status"), ok("key.update", "fields name, status")}, storage.DisabledManually},
				{"unused, then renamed and a refused change", storage.KindKey, storage.StatusDisabled, []event{ok("key.auto_disable", "unused since 2020-01-01T00:00:00Z"),
					ok("key.update", "fields name"), {"key.update", "failure", "refused: 409 fields status"}}, storage.DisabledUnused},
				{"no event", storage.KindClient, storage.StatusDisabled, nil, storage.DisabledManually},
			}
			ids := make([]int64, len(tests))
			for i, tt := range tests {
				err := s.db.WithContext(ctx).Raw(`INSERT INTO clients (account_id, kind, name, secret_hash, status, created_at, updated_at)
VALUES (?, ?, ?, 'h', ?, ?, ?) RETURNING id`, acc.ID, string(tt.kind), tt.name, string(tt.status), now, now).Scan(&ids[i]).Error
				if err != nil || ids[i] == 0 {
					t.Fatalf("insert %s: id %d, %v", tt.name, ids[i], err)
				}
				for _, e := range tt.events {
					// The same events about another credential say nothing
					// about this one.
					for _, target := range []int64{ids[i], ids[i] + 1000} {
						if _, err := s.AppendAudit(ctx, storage.AuditEvent{AccountID: acc.ID, Action: e.action, TargetType: string(tt.kind),
							TargetID: target, Outcome: e.outcome, Detail: e.detail}); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			// A disabling event of a credential that is not this one's kind
			// is ignored too.
			if _, err := s.AppendAudit(ctx, storage.AuditEvent{AccountID: acc.ID, Action: "client.auto_disable", TargetType: "client",
				TargetID: ids[1], Outcome: "success", Detail: "expired at 2030-01-01T00:00:00Z"}); err != nil {
				t.Fatal(err)
			}

			s.migrations = all
			applied, err := s.Migrate(ctx)
			if err != nil || len(applied) == 0 || applied[0] != "0006_disabled_reason" {
				t.Fatalf("migrate from 0005: applied %q, %v", applied, err)
			}
			for i, tt := range tests {
				c, err := s.GetClient(ctx, ids[i])
				if err != nil {
					t.Fatal(err)
				}
				if c.DisabledReason != tt.want || c.Status != tt.status {
					t.Errorf("%s: status %q, reason %q; want %q, %q", tt.name, c.Status, c.DisabledReason, tt.status, tt.want)
				}
			}
		})
	}
}
