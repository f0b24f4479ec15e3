package webhooks

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/tollgate/tollgate/pkg/egress"
	"github.com/tollgate/tollgate/storage"
)

// Backoff is the wait after each failed attempt (the first failure waits
// Backoff[0]); after the last one the delivery is failed. About 24 hours
// in all.
var Backoff = []time.Duration{
	5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour, 8 * time.Hour,
}

// Defaults of DelivererOptions.
const (
	DefaultTimeout      = 10 * time.Second
	DefaultPollInterval = time.Second
	DefaultBatch        = 16
	DefaultWorkers      = 8
)

// Outcomes of an attempt, the label of Metrics.Delivery.
const (
	OutcomeDelivered = "delivered"
	OutcomeRetry     = "retry"
	OutcomeFailed    = "failed"
)

// Error classes of an attempt (WebhookDelivery.LastError): what the
// delivery log shows instead of the receiver's answer.
const (
	ErrorRefused    = "refused"    // the URL or its address is not allowed
	ErrorTimeout    = "timeout"    // no answer in time
	ErrorConnection = "connection" // no connection, TLS failure, reset
	ErrorStatus     = "status"     // an answer other than 2xx
	ErrorSecret     = "secret"     // the secret does not open (the key-encryption key changed)
)

// Metrics counts delivery attempts; the label values are bounded.
type Metrics interface {
	WebhookDelivery(outcome, errorClass string, d time.Duration)
}

type noMetrics struct{}

func (noMetrics) WebhookDelivery(string, string, time.Duration) {}

// Poster sends a request (*egress.Client).
type Poster interface {
	Post(ctx context.Context, url string, header http.Header, body []byte) (int, error)
}

// DelivererOptions configure a Deliverer.
type DelivererOptions struct {
	Store   storage.Webhooks
	Secrets *Secrets
	Poster  Poster
	// Timeout bounds an attempt; DefaultTimeout when 0.
	Timeout time.Duration
	// PollInterval is how often due deliveries are looked for;
	// DefaultPollInterval when 0.
	PollInterval time.Duration
	Metrics      Metrics
	Logger       *slog.Logger
	Now          func() time.Time
}

// Deliverer claims due deliveries and attempts them; every instance runs
// one. Deliveries are at least once: the receiver de-duplicates by
// webhook-id.
type Deliverer struct {
	opts DelivererOptions
}

// NewDeliverer returns a Deliverer.
func NewDeliverer(opts DelivererOptions) *Deliverer {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.Metrics == nil {
		opts.Metrics = noMetrics{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Deliverer{opts: opts}
}

// lease is how long a claimed delivery is kept from other instances: an
// attempt's timeout and room to record its outcome. An instance that dies
// meanwhile leaves it to be claimed again after the lease.
func (d *Deliverer) lease() time.Duration { return 2*d.opts.Timeout + 30*time.Second }

// Run delivers until ctx is done. A database that cannot be reached is
// waited for (with back-off up to a minute); nothing is lost, as the
// outbox is the database.
func (d *Deliverer) Run(ctx context.Context) {
	wait := d.opts.PollInterval
	for {
		n, err := d.DeliverDue(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			d.opts.Logger.WarnContext(ctx, "claim webhook deliveries; will retry", "err", err)
			wait = min(2*wait, time.Minute)
		case n == DefaultBatch:
			wait = 0 // more are due
		default:
			wait = d.opts.PollInterval
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// DeliverDue claims one batch of due deliveries, attempts them (in
// parallel, bounded) and returns how many it claimed.
func (d *Deliverer) DeliverDue(ctx context.Context) (int, error) {
	due, err := d.opts.Store.ClaimDeliveries(ctx, d.opts.Now(), d.lease(), DefaultBatch)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, DefaultWorkers)
	for _, del := range due {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			d.attempt(ctx, del)
		}()
	}
	wg.Wait()
	return len(due), nil
}

// attempt sends del once and records the outcome.
func (d *Deliverer) attempt(ctx context.Context, del storage.WebhookDelivery) {
	start := time.Now()
	status, class := d.send(ctx, del)
	now := d.opts.Now()
	del.Attempts++
	del.LastStatus, del.LastError = status, class
	outcome := OutcomeDelivered
	switch {
	case class == "":
		del.Status, del.DeliveredAt, del.NextAttemptAt = storage.DeliveryDelivered, now, time.Time{}
	case del.Attempts > len(Backoff):
		del.Status, del.NextAttemptAt = storage.DeliveryFailed, time.Time{}
		outcome = OutcomeFailed
	default:
		del.NextAttemptAt = now.Add(jitter(Backoff[del.Attempts-1]))
		outcome = OutcomeRetry
	}
	d.opts.Metrics.WebhookDelivery(outcome, class, time.Since(start))
	// The outcome is recorded even when ctx ended during the attempt.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := d.opts.Store.FinishAttempt(rctx, del); err != nil {
		// The lease runs out and the delivery is attempted again.
		d.opts.Logger.WarnContext(ctx, "record webhook delivery", "delivery_id", del.ID, "err", err)
	}
}

// jitter returns d ± 20%, so that deliveries failing together do not
// retry together.
func jitter(d time.Duration) time.Duration {
	return d - d/5 + time.Duration(rand.Int64N(int64(d/5)*2+1)) // #nosec G404 -- spreading retries, not a secret
}

// send POSTs del to its webhook and returns the status and the error
// class ("" for a 2xx).
func (d *Deliverer) send(ctx context.Context, del storage.WebhookDelivery) (int, string) {
	w, err := d.opts.Store.GetWebhook(ctx, del.WebhookID)
	if err != nil {
		return 0, ErrorConnection
	}
	secret, err := d.opts.Secrets.Open(w.ID, w.SecretSealed)
	if err != nil {
		d.opts.Logger.ErrorContext(ctx, "open webhook secret", "webhook_id", w.ID, "err", err)
		return 0, ErrorSecret
	}
	ts := d.opts.Now().Unix()
	sig, err := Sign(secret, del.EventID, ts, del.Payload)
	if err != nil {
		return 0, ErrorSecret
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "Tollgate-Webhooks")
	h.Set("webhook-id", del.EventID)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", sig)
	actx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	status, err := d.opts.Poster.Post(actx, w.URL, h, del.Payload)
	switch {
	case err != nil:
		return 0, errorClass(err)
	case status < 200 || status > 299:
		return status, ErrorStatus
	}
	return status, ""
}

func errorClass(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, egress.ErrRefused):
		return ErrorRefused
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return ErrorTimeout
	}
	return ErrorConnection
}
