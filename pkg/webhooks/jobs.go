package webhooks

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/pkg/usage"
	"github.com/tollgate/tollgate/storage"
)

// quotaQueueSize bounds the quota events waiting for the outbox.
const quotaQueueSize = 1024

// QuotaEvents queues the quota thresholds the check endpoint reports and
// writes them to the outbox in the background (usage.QuotaEvents). The
// check never waits: when the queue is full the event is dropped and
// counted. Every instance may report the same threshold; the event id is
// one per credential (or account), percent and period, so the outbox keeps
// one.
type QuotaEvents struct {
	store   storage.Webhooks
	queue   chan usage.QuotaThreshold
	dropped atomic.Int64
	logger  *slog.Logger
	now     func() time.Time
}

var _ usage.QuotaEvents = (*QuotaEvents)(nil)

// NewQuotaEvents returns the queue; Run drains it.
func NewQuotaEvents(store storage.Webhooks, logger *slog.Logger, now func() time.Time) *QuotaEvents {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return &QuotaEvents{store: store, queue: make(chan usage.QuotaThreshold, quotaQueueSize), logger: logger, now: now}
}

// QuotaThreshold implements usage.QuotaEvents: it queues e and returns.
func (q *QuotaEvents) QuotaThreshold(_ context.Context, e usage.QuotaThreshold) {
	select {
	case q.queue <- e:
	default:
		q.dropped.Add(1)
	}
}

// Dropped returns how many events a full queue dropped.
func (q *QuotaEvents) Dropped() int64 { return q.dropped.Load() }

// Run writes queued events to the outbox until ctx is done. An event the
// database refuses is retried a few times, then dropped with a warning.
func (q *QuotaEvents) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-q.queue:
			for try := 0; ; try++ {
				err := q.Write(ctx, e)
				if err == nil || ctx.Err() != nil {
					break
				}
				if try == 4 {
					q.logger.WarnContext(ctx, "quota threshold event lost", "account_id", e.AccountID, "credential_id", e.CredentialID, "err", err)
					break
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Duration(1<<try) * time.Second):
				}
			}
		}
	}
}

// Write enqueues the deliveries of e.
func (q *QuotaEvents) Write(ctx context.Context, e usage.QuotaThreshold) error {
	data := Quota{
		AccountID: e.AccountID, CredentialID: e.CredentialID, Percent: e.Percent, Limit: e.Limit, Used: e.Used,
		Period: string(e.Period), PeriodStart: e.PeriodStart.UTC(),
	}
	now := q.now()
	body, err := payload(QuotaThreshold, now, data)
	if err != nil {
		return err
	}
	return enqueue(ctx, q.store, e.AccountID, QuotaThreshold, quotaEventID(data), body, now)
}

// Expiry warns of credentials about to expire: credential.expiring, once
// per credential and expiry date, Before ahead. On the same tick it prunes
// the delivery log: finished deliveries older than Retention go.
type Expiry struct {
	store      storage.Webhooks
	before     time.Duration
	retention  time.Duration
	pruneBatch int
	logger     *slog.Logger
	now        func() time.Time
}

// Defaults of ExpiryOptions.
const (
	// DefaultExpiringBefore is how long before its expiry a credential is
	// announced as expiring.
	DefaultExpiringBefore = 7 * 24 * time.Hour
	// DefaultDeliveryRetention is how long a finished delivery is kept.
	DefaultDeliveryRetention = 30 * 24 * time.Hour
	// DefaultPruneBatch bounds the deliveries one statement deletes, so
	// that a backlog never makes one long transaction or lock.
	DefaultPruneBatch = 1000
)

// maxPruneBatches bounds one run of Prune; what is left goes on the next.
const maxPruneBatches = 100

// ExpiryOptions configure the Expiry job.
type ExpiryOptions struct {
	Store storage.Webhooks
	// Before is how long ahead credential.expiring is sent;
	// DefaultExpiringBefore when 0.
	Before time.Duration
	// Retention is how long a delivered or failed delivery is kept, from
	// its creation; DefaultDeliveryRetention when 0. It must not be shorter
	// than Before: a credential.expiring event is queued once only while
	// its delivery is kept (config checks it).
	Retention time.Duration
	// PruneBatch is the most deliveries one statement deletes;
	// DefaultPruneBatch when 0.
	PruneBatch int
	Logger     *slog.Logger
	Now        func() time.Time
}

// NewExpiry returns the job o describes.
func NewExpiry(o ExpiryOptions) *Expiry {
	if o.Before <= 0 {
		o.Before = DefaultExpiringBefore
	}
	if o.Retention <= 0 {
		o.Retention = DefaultDeliveryRetention
	}
	if o.PruneBatch <= 0 {
		o.PruneBatch = DefaultPruneBatch
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Expiry{store: o.Store, before: o.Before, retention: o.Retention, pruneBatch: o.PruneBatch, logger: o.Logger, now: o.Now}
}

// Scan enqueues the warning of every active credential expiring within
// Before; a warning already queued is not queued again (its id is
// deterministic). It returns how many credentials it looked at.
func (x *Expiry) Scan(ctx context.Context) (int, error) {
	now := x.now()
	cs, err := x.store.ClientsExpiringBetween(ctx, now, now.Add(x.before))
	if err != nil {
		return 0, err
	}
	for _, c := range cs {
		body, err := payload(CredentialExpiring, now, CredentialData(c))
		if err != nil {
			return 0, err
		}
		if err := enqueue(ctx, x.store, c.AccountID, CredentialExpiring, expiringEventID(c.ID, c.ExpiresAt), body, now); err != nil {
			return 0, err
		}
	}
	return len(cs), nil
}

// Prune deletes the finished deliveries (delivered or failed, never
// pending) created more than Retention ago, PruneBatch at a time, at most
// maxPruneBatches batches; it returns how many it deleted.
func (x *Expiry) Prune(ctx context.Context) (int64, error) {
	before := x.now().Add(-x.retention)
	var total int64
	for range maxPruneBatches {
		n, err := x.store.PruneDeliveries(ctx, before, x.pruneBatch)
		total += n
		if err != nil {
			return total, err
		}
		if n < int64(x.pruneBatch) {
			break
		}
	}
	return total, nil
}

// Run scans and prunes at once and then every interval until ctx is done.
func (x *Expiry) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := x.Scan(ctx); err != nil && ctx.Err() == nil {
			x.logger.WarnContext(ctx, "scan expiring credentials; will retry", "err", err)
		}
		n, err := x.Prune(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			x.logger.WarnContext(ctx, "prune webhook deliveries; will retry", "err", err, "deleted", n)
		case n > 0:
			x.logger.DebugContext(ctx, "pruned webhook deliveries", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// TestDelivery returns the delivery of a webhook.test event to webhook w,
// with a fresh id.
func TestDelivery(w storage.Webhook, eventID string, now time.Time) (storage.WebhookDelivery, error) {
	body, err := payload(Test, now, map[string]any{"webhook_id": w.ID, "account_id": w.AccountID})
	if err != nil {
		return storage.WebhookDelivery{}, err
	}
	return storage.WebhookDelivery{WebhookID: w.ID, EventID: eventID, EventType: Test, Payload: body, NextAttemptAt: now, CreatedAt: now}, nil
}
