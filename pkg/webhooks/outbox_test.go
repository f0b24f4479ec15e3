package webhooks_test

import (
	"errors"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/usage"
	"github.com/tollgate/tollgate/pkg/webhooks"
	"github.com/tollgate/tollgate/storage"
	sqlstore "github.com/tollgate/tollgate/storage/sql"
	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

var backends = []struct {
	name string
	url  func(t *testing.T) string
}{
	{"sqlite", sqltest.SQLite},
	{"postgres", sqltest.Postgres},
}

// world is a database with root ── child, a key in child, and webhooks of
// both accounts (the root's hears of its subtree, or not).
type world struct {
	store       *sqlstore.Store
	root, child storage.Account
	key         storage.Client
	rootHook    storage.Webhook
	childHook   storage.Webhook
	now         time.Time
}

func newWorld(t *testing.T, url string, rootSubtree bool) *world {
	t.Helper()
	ctx := t.Context()
	store, err := sqlstore.Open(ctx, sqlstore.Options{URL: url, QueryTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if _, err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	w := &world{store: store, now: time.Now().UTC().Truncate(time.Second)}
	if w.root, err = store.CreateAccount(ctx, storage.Account{Name: "root", Status: storage.StatusActive}); err != nil {
		t.Fatal(err)
	}
	if w.child, err = store.CreateAccount(ctx, storage.Account{Name: "child", ParentID: w.root.ID, Status: storage.StatusActive}); err != nil {
		t.Fatal(err)
	}
	if w.key, err = store.CreateClient(ctx, storage.Client{AccountID: w.child.ID, Kind: storage.KindKey, Name: "k", SecretHash: "h", Status: storage.StatusActive,
		GrantTypes: []string{"client_credentials"}, ExpiresAt: w.now.Add(48 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	all := append([]string(nil), webhooks.EventTypes...)
	if w.rootHook, err = store.CreateWebhook(ctx, storage.Webhook{AccountID: w.root.ID, URL: "https://hooks.example.com/root", Events: all, IncludeSubtree: rootSubtree, Enabled: true, SecretSealed: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	if w.childHook, err = store.CreateWebhook(ctx, storage.Webhook{AccountID: w.child.ID, URL: "https://hooks.example.com/child", Events: []string{webhooks.CredentialDisabled}, IncludeSubtree: false, Enabled: true, SecretSealed: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) deliveries(t *testing.T, hook storage.Webhook) []storage.WebhookDelivery {
	t.Helper()
	ds, err := w.store.ListDeliveries(t.Context(), hook.ID, storage.Page{})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// disable disables the key through the outbox, as pkg/manage does, and
// fails the transaction after the audit event when fail is set.
func (w *world) disable(t *testing.T, o *webhooks.Outbox, fail bool) error {
	return o.InTx(t.Context(), func(tx storage.Store) error {
		c, err := tx.UpdateClient(t.Context(), w.key.ID, func(c *storage.Client) error { c.Disable(storage.DisabledManually); return nil })
		if err != nil {
			return err
		}
		if _, err := tx.AppendAudit(t.Context(), storage.AuditEvent{AccountID: c.AccountID, Action: "key.update", TargetType: "key", TargetID: c.ID, Outcome: "success"}); err != nil {
			return err
		}
		if fail {
			return errors.New("a later step failed")
		}
		return nil
	})
}

// TestOutboxInTheTransaction: the deliveries of an audited change are
// written with it — none when it rolls back, one per subscription hearing
// of it when it commits (the account's own, an ancestor's that includes
// its subtree).
func TestOutboxInTheTransaction(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			w := newWorld(t, b.url(t), true)
			o := webhooks.NewOutbox(w.store, func() time.Time { return w.now })
			if err := w.disable(t, o, true); err == nil {
				t.Fatal("the failing transaction did not fail")
			}
			if got := len(w.deliveries(t, w.rootHook)) + len(w.deliveries(t, w.childHook)); got != 0 {
				t.Fatalf("a rolled-back change queued %d deliveries", got)
			}
			if err := w.disable(t, o, false); err != nil {
				t.Fatal(err)
			}
			for _, h := range []storage.Webhook{w.rootHook, w.childHook} {
				ds := w.deliveries(t, h)
				if len(ds) != 1 || ds[0].EventType != webhooks.CredentialDisabled || ds[0].Status != storage.DeliveryPending {
					t.Errorf("webhook %s: %+v", h.URL, ds)
				}
			}
			// An update that changes no status tells of nothing.
			err := o.InTx(t.Context(), func(tx storage.Store) error {
				c, err := tx.UpdateClient(t.Context(), w.key.ID, func(c *storage.Client) error { c.Name = "renamed"; return nil })
				if err != nil {
					return err
				}
				_, err = tx.AppendAudit(t.Context(), storage.AuditEvent{AccountID: c.AccountID, Action: "key.update", TargetType: "key", TargetID: c.ID, Outcome: "success"})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if ds := w.deliveries(t, w.rootHook); len(ds) != 1 {
				t.Errorf("a rename queued %d deliveries in all, want still 1", len(ds))
			}
		})
	}
}

// TestOutboxLeakedAndSubtree: an audit event <kind>.leaked appended by
// another part of the server becomes credential.leaked; a webhook that
// does not include its subtree hears only of its own account.
func TestOutboxLeakedAndSubtree(t *testing.T) {
	w := newWorld(t, sqltest.SQLite(t), false)
	o := webhooks.NewOutbox(w.store, func() time.Time { return w.now })
	err := o.InTx(t.Context(), func(tx storage.Store) error {
		_, err := tx.AppendAudit(t.Context(), storage.AuditEvent{AccountID: w.child.ID, Action: "key.leaked", TargetType: "key", TargetID: w.key.ID, Outcome: "success"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if ds := w.deliveries(t, w.rootHook); len(ds) != 0 {
		t.Errorf("the root's webhook without its subtree heard %+v", ds)
	}
	if err := w.store.DeleteWebhook(t.Context(), w.childHook.ID); err != nil {
		t.Fatal(err)
	}
	leakHook, err := w.store.CreateWebhook(t.Context(), storage.Webhook{AccountID: w.child.ID, URL: "https://hooks.example.com/x", Events: []string{webhooks.CredentialLeaked}, Enabled: true, SecretSealed: []byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	// Outside a transaction, AppendAudit makes one.
	if _, err := o.AppendAudit(t.Context(), storage.AuditEvent{AccountID: w.child.ID, Action: "key.leaked", TargetType: "key", TargetID: w.key.ID, Outcome: "success"}); err != nil {
		t.Fatal(err)
	}
	if ds := w.deliveries(t, leakHook); len(ds) != 1 || ds[0].EventType != webhooks.CredentialLeaked {
		t.Errorf("leaked: %+v", ds)
	}
}

// TestQuotaAndExpiryEventsCollapse: the same quota threshold reported
// twice (two instances) and the same expiry scanned twice are delivered
// once each.
func TestQuotaAndExpiryEventsCollapse(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			w := newWorld(t, b.url(t), true)
			now := func() time.Time { return w.now }
			q := webhooks.NewQuotaEvents(w.store, nil, now)
			e := usage.QuotaThreshold{AccountID: w.child.ID, CredentialID: w.key.ID, Percent: 80, Limit: 100, Used: 80, Period: storage.QuotaDay, PeriodStart: w.now.Truncate(24 * time.Hour)}
			for range 2 {
				if err := q.Write(t.Context(), e); err != nil {
					t.Fatal(err)
				}
			}
			x := webhooks.NewExpiry(webhooks.ExpiryOptions{Store: w.store, Before: 7 * 24 * time.Hour, Now: now})
			for range 2 {
				if n, err := x.Scan(t.Context()); err != nil || n != 1 {
					t.Fatalf("Scan = %d, %v", n, err)
				}
			}
			types := map[string]int{}
			for _, d := range w.deliveries(t, w.rootHook) {
				types[d.EventType]++
			}
			if types[webhooks.QuotaThreshold] != 1 || types[webhooks.CredentialExpiring] != 1 {
				t.Errorf("deliveries by type %v, want one quota.threshold and one credential.expiring", types)
			}
		})
	}
}
