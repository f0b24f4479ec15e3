package manage_test

import (
	"testing"

	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/pkg/manage"
	"github.com/tollgate/tollgate/storage"
)

// ReportLeaked acts only on a working key, per the account's policy, and
// audits every true positive; RevokeByHolder and HolderOfDisabled serve the
// key's holder.
func TestReportLeakedAndRevokeByHolder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		a := f.a
		newKey := func(account int64) (storage.Client, string) {
			t.Helper()
			c, sec, err := f.svc.CreateClient(ctx, a.asAdmin, storage.KindKey, manage.ClientInput{Name: ptr("k"), AccountID: &account})
			if err != nil {
				t.Fatal(err)
			}
			key, err := apikey.Format(c.ID, sec)
			if err != nil {
				t.Fatal(err)
			}
			return c, key
		}
		notify := storage.LeakedKeyNotify
		if _, err := f.svc.UpdateAccount(ctx, a.asAdmin, a.child.ID, 0, manage.AccountInput{Policies: &manage.PoliciesInput{
			LeakedKeyAction: manage.Optional[storage.LeakedKeyAction]{Set: true, Value: &notify}}}); err != nil {
			t.Fatal(err)
		}
		disabled, disabledKey := newKey(a.account.ID)
		kept, keptKey := newKey(a.child.ID)
		other, otherKey := newKey(a.account.ID)
		wrong, _ := apikey.Format(other.ID, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
		for _, c := range []struct {
			key  string
			want manage.LeakLabel
		}{
			{disabledKey, manage.TruePositive}, {disabledKey, manage.TruePositive}, {keptKey, manage.TruePositive},
			{wrong, manage.FalsePositive}, {typo(otherKey), manage.FalsePositive}, {"tgk_999999_x", manage.FalsePositive},
		} {
			got, err := f.svc.ReportLeaked(ctx, manage.LeakReport{Key: c.key, Source: "https://github.com/a/b", Partner: "test"})
			if err != nil || got != c.want {
				t.Errorf("ReportLeaked = %q, %v; want %q", got, err, c.want)
			}
		}
		for _, c := range []struct {
			id     int64
			status storage.Status
			reason storage.DisabledReason
		}{{disabled.ID, storage.StatusDisabled, storage.DisabledLeaked}, {kept.ID, storage.StatusActive, ""}, {other.ID, storage.StatusActive, ""}} {
			got, err := f.store.GetClient(ctx, c.id)
			if err != nil || got.Status != c.status || got.DisabledReason != c.reason {
				t.Errorf("key %d: %s %q, %v; want %s %q", c.id, got.Status, got.DisabledReason, err, c.status, c.reason)
			}
		}
		events, err := f.store.ListAudit(ctx, storage.AuditFilter{AccountID: a.account.ID, Subtree: true}, storage.Page{Limit: 200})
		if err != nil {
			t.Fatal(err)
		}
		count := map[int64]int{}
		for _, e := range events {
			if e.Action == "key.leaked" {
				count[e.TargetID]++
				if e.ActorUserID != 0 || e.ActorClientID != 0 {
					t.Errorf("leaked event by %d/%d, want the system", e.ActorUserID, e.ActorClientID)
				}
			}
		}
		if count[disabled.ID] != 2 || count[kept.ID] != 1 || count[other.ID] != 0 {
			t.Errorf("key.leaked events = %v, want 2, 1 and 0", count)
		}

		// The holder switches a key off; then only its right secret is
		// recognised as the holder's.
		if err := f.svc.RevokeByHolder(ctx, other.ID, "192.0.2.9"); err != nil {
			t.Fatal(err)
		}
		if got, _ := f.store.GetClient(ctx, other.ID); got.Status != storage.StatusDisabled || got.DisabledReason != storage.DisabledByHolder {
			t.Errorf("after RevokeByHolder: %s %q", got.Status, got.DisabledReason)
		}
		_, otherSecret, _ := apikey.Parse(otherKey)
		_, keptSecret, _ := apikey.Parse(keptKey)
		for _, c := range []struct {
			id     int64
			secret string
			want   bool
		}{{other.ID, otherSecret, true}, {other.ID, keptSecret, false}, {kept.ID, keptSecret, false}, {1 << 40, otherSecret, false}} {
			if got, err := f.svc.HolderOfDisabled(ctx, c.id, c.secret); err != nil || got != c.want {
				t.Errorf("HolderOfDisabled(%d) = %v, %v; want %v", c.id, got, err, c.want)
			}
		}
	})
}

// typo changes the last character of s to another one.
func typo(s string) string {
	last := "x"
	if s[len(s)-1] == 'x' {
		last = "y"
	}
	return s[:len(s)-1] + last
}
