package webhooks_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/egress"
	"github.com/tollgate/tollgate/pkg/usage"
	"github.com/tollgate/tollgate/pkg/webhooks"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

// downFirst is the database unreachable for its first calls of
// ClaimDeliveries (a failover), then back.
type downFirst struct {
	storage.Webhooks
	down atomic.Int32
}

func (d *downFirst) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]storage.WebhookDelivery, error) {
	if d.down.Add(-1) >= 0 {
		return nil, errors.New("connect: connection refused")
	}
	return d.Webhooks.ClaimDeliveries(ctx, now, lease, limit)
}

// TestDelivererWaitsForTheDatabase: while the database cannot be reached
// the deliverer keeps trying; when it is back the queued event is
// delivered — nothing was lost, as the outbox is the database.
func TestDelivererWaitsForTheDatabase(t *testing.T) {
	w := newWorld(t, sqltest.SQLite(t), true)
	var got atomic.Int32
	recv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		got.Add(1)
		rw.WriteHeader(http.StatusOK)
	}))
	defer recv.Close()
	kek := []byte("0123456789abcdef0123456789abcdef")
	secrets, _ := webhooks.NewSecrets(kek)
	secret, _ := webhooks.NewSecret()
	sealed, _ := secrets.Seal(w.rootHook.ID, secret)
	if _, err := w.store.UpdateWebhook(t.Context(), w.rootHook.ID, func(h *storage.Webhook) error {
		h.URL, h.SecretSealed = recv.URL, sealed
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	o := webhooks.NewOutbox(w.store, nil)
	if err := w.disable(t, o, false); err != nil {
		t.Fatal(err)
	}
	store := &downFirst{Webhooks: w.store}
	store.down.Store(3)
	d := webhooks.NewDeliverer(webhooks.DelivererOptions{Store: store, Secrets: secrets,
		Poster: egress.New(egress.Options{AllowInsecure: true}), PollInterval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	// Until the receiver got it and the deliverer recorded it (a cancel
	// between the two would leave the delivery pending).
	deadline := time.Now().Add(10 * time.Second)
	var ds []storage.WebhookDelivery
	for time.Now().Before(deadline) {
		if ds = w.deliveries(t, w.rootHook); got.Load() > 0 && len(ds) == 1 && ds[0].Status == storage.DeliveryDelivered {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if got.Load() != 1 || store.down.Load() >= 0 {
		t.Fatalf("delivered %d times after %d failed claims, want 1 after 3", got.Load(), 3-max(store.down.Load(), 0))
	}
	if len(ds) != 1 || ds[0].Status != storage.DeliveryDelivered {
		t.Errorf("deliveries %+v", ds)
	}
}

// TestQuotaEventsNeverBlock: with nobody draining the queue, reporting
// thresholds returns at once, dropping (and counting) what does not fit.
func TestQuotaEventsNeverBlock(t *testing.T) {
	q := webhooks.NewQuotaEvents(nil, nil, nil)
	start := time.Now()
	for i := range 5000 {
		q.QuotaThreshold(t.Context(), usage.QuotaThreshold{AccountID: 1, Percent: 80, Used: int64(i)})
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("5000 reports took %s", d)
	}
	if q.Dropped() == 0 {
		t.Error("a full queue dropped nothing")
	}
}
