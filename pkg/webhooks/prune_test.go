package webhooks_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/webhooks"
	"github.com/tollgate/tollgate/storage"
)

// seedRow is a delivery to seed: its status and how long ago it was created.
type seedRow struct {
	status string
	age    time.Duration
}

// seedDeliveries queues one delivery to hook per entry of rows, each
// created at the time its age puts before w.now, and finishes it with its
// status; it returns their event ids by name.
func (w *world) seedDeliveries(t *testing.T, hook storage.Webhook, rows map[string]seedRow) map[string]string {
	t.Helper()
	ctx := t.Context()
	ids := map[string]string{}
	for name, r := range rows {
		created := w.now.Add(-r.age)
		id := "msg_prune_" + name
		ids[name] = id
		if err := w.store.EnqueueDeliveries(ctx, []storage.WebhookDelivery{{WebhookID: hook.ID, EventID: id, EventType: webhooks.Test,
			Payload: []byte(`{}`), NextAttemptAt: created, CreatedAt: created}}); err != nil {
			t.Fatal(err)
		}
		if r.status == storage.DeliveryPending {
			continue
		}
		d := w.delivery(t, hook, id)
		d.Status, d.Attempts, d.NextAttemptAt = r.status, 1, time.Time{}
		if r.status == storage.DeliveryDelivered {
			d.LastStatus, d.DeliveredAt = 200, created.Add(time.Second)
		} else {
			d.LastStatus, d.LastError = 500, "status"
		}
		if err := w.store.FinishAttempt(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// delivery returns hook's delivery of event id.
func (w *world) delivery(t *testing.T, hook storage.Webhook, id string) storage.WebhookDelivery {
	t.Helper()
	for _, d := range w.deliveries(t, hook) {
		if d.EventID == id {
			return d
		}
	}
	t.Fatalf("no delivery %s", id)
	return storage.WebhookDelivery{}
}

// eventIDs returns the event ids of hook's deliveries, sorted.
func (w *world) eventIDs(t *testing.T, hook storage.Webhook) []string {
	t.Helper()
	var ids []string
	for _, d := range w.deliveries(t, hook) {
		ids = append(ids, d.EventID)
	}
	slices.Sort(ids)
	return ids
}

// TestPruneDeliveries: the expiry job deletes the delivered and failed
// deliveries created before the retention, and keeps the pending ones
// (however old) and the recent ones, on both databases.
func TestPruneDeliveries(t *testing.T) {
	const retention = 30 * 24 * time.Hour
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			w := newWorld(t, b.url(t), true)
			ids := w.seedDeliveries(t, w.rootHook, map[string]seedRow{
				"old_delivered":    {storage.DeliveryDelivered, retention + time.Hour},
				"old_failed":       {storage.DeliveryFailed, 90 * 24 * time.Hour},
				"old_pending":      {storage.DeliveryPending, 90 * 24 * time.Hour},
				"recent_delivered": {storage.DeliveryDelivered, retention - time.Hour},
				"recent_failed":    {storage.DeliveryFailed, time.Hour},
				"recent_pending":   {storage.DeliveryPending, time.Minute},
			})
			other := w.seedDeliveries(t, w.childHook, map[string]seedRow{
				"child_old": {storage.DeliveryDelivered, retention + time.Minute},
				"child_new": {storage.DeliveryDelivered, retention - time.Minute},
			})
			x := webhooks.NewExpiry(webhooks.ExpiryOptions{Store: w.store, Retention: retention, Now: func() time.Time { return w.now }})
			n, err := x.Prune(t.Context())
			if err != nil || n != 3 {
				t.Fatalf("Prune = %d, %v; want 3 deleted", n, err)
			}
			want := []string{ids["old_pending"], ids["recent_delivered"], ids["recent_failed"], ids["recent_pending"]}
			slices.Sort(want)
			if got := w.eventIDs(t, w.rootHook); !slices.Equal(got, want) {
				t.Errorf("root hook's deliveries after Prune = %q, want %q", got, want)
			}
			if got := w.eventIDs(t, w.childHook); !slices.Equal(got, []string{other["child_new"]}) {
				t.Errorf("child hook's deliveries after Prune = %q, want %q", got, []string{other["child_new"]})
			}
			if n, err := x.Prune(t.Context()); err != nil || n != 0 {
				t.Errorf("second Prune = %d, %v; want nothing left to delete", n, err)
			}

			// A pending delivery that finishes is pruned once old enough.
			d := w.delivery(t, w.rootHook, ids["old_pending"])
			d.Status, d.NextAttemptAt = storage.DeliveryFailed, time.Time{}
			if err := w.store.FinishAttempt(t.Context(), d); err != nil {
				t.Fatal(err)
			}
			if n, err := x.Prune(t.Context()); err != nil || n != 1 {
				t.Errorf("Prune after the old pending delivery failed = %d, %v; want 1", n, err)
			}
		})
	}
}

// TestPruneDeliveriesBatches: one statement deletes at most the batch, the
// oldest first; Prune goes on batch after batch until nothing is left.
func TestPruneDeliveriesBatches(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			w := newWorld(t, b.url(t), true)
			rows := map[string]seedRow{"pending": {storage.DeliveryPending, 100 * 24 * time.Hour}}
			for i := range 7 {
				rows[fmt.Sprint(i)] = seedRow{storage.DeliveryDelivered, time.Duration(40+i) * 24 * time.Hour}
			}
			ids := w.seedDeliveries(t, w.rootHook, rows)
			cutoff := w.now.Add(-30 * 24 * time.Hour)

			n, err := w.store.PruneDeliveries(t.Context(), cutoff, 2)
			if err != nil || n != 2 {
				t.Fatalf("PruneDeliveries(limit 2) = %d, %v; want 2", n, err)
			}
			left := w.eventIDs(t, w.rootHook)
			for _, oldest := range []string{ids["6"], ids["5"]} {
				if slices.Contains(left, oldest) {
					t.Errorf("the oldest deliveries go first: %s is left", oldest)
				}
			}
			if len(left) != 6 {
				t.Errorf("%d deliveries left after one batch of 2, want 6", len(left))
			}
			if n, err := w.store.PruneDeliveries(t.Context(), cutoff, 0); err != nil || n != 0 {
				t.Errorf("PruneDeliveries(limit 0) = %d, %v; want nothing deleted", n, err)
			}

			x := webhooks.NewExpiry(webhooks.ExpiryOptions{Store: w.store, Retention: 30 * 24 * time.Hour, PruneBatch: 2,
				Now: func() time.Time { return w.now }})
			if n, err := x.Prune(t.Context()); err != nil || n != 5 {
				t.Fatalf("Prune in batches of 2 = %d, %v; want the 5 finished deliveries left", n, err)
			}
			if got := w.eventIDs(t, w.rootHook); !slices.Equal(got, []string{ids["pending"]}) {
				t.Errorf("deliveries after Prune = %q, want only the pending one", got)
			}
		})
	}
}
