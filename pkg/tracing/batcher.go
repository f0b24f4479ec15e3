package tracing

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// The batch span processor's settings, as the OpenTelemetry specification
// names them, and their defaults.
const (
	envScheduleDelay = "OTEL_BSP_SCHEDULE_DELAY"        // ms
	envExportTimeout = "OTEL_BSP_EXPORT_TIMEOUT"        // ms
	envMaxQueue      = "OTEL_BSP_MAX_QUEUE_SIZE"        // spans
	envMaxBatch      = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE" // spans

	defaultScheduleDelay = 5000 * time.Millisecond
	defaultExportTimeout = 30000 * time.Millisecond
	defaultMaxQueue      = 2048
	defaultMaxBatch      = 512
)

// batcher is a span processor that exports ended spans in batches, as the
// SDK's batch span processor does and with its OTEL_BSP_* settings, but
// takes each span under a mutex instead of through a channel: its export
// goroutine is woken once per batch (or schedule delay), not once per span.
// On the token path the SDK's processor woke it five times a request, and
// those wake-ups cost more CPU than the spans themselves
// (docs/performance.md). A full queue drops spans, never blocks a request.
type batcher struct {
	exp      sdktrace.SpanExporter
	delay    time.Duration
	timeout  time.Duration
	maxQueue int
	maxBatch int

	mu      sync.Mutex
	queue   []sdktrace.ReadOnlySpan
	dropped int

	wake     chan struct{} // a batch is full
	flushReq chan chan error
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

var _ sdktrace.SpanProcessor = (*batcher)(nil)

// newBatcher returns a batcher exporting to exp with the settings env
// (os.Getenv in production) gives, and starts its export goroutine, which
// Shutdown stops.
func newBatcher(exp sdktrace.SpanExporter, env func(string) string) *batcher {
	b := &batcher{
		exp:      exp,
		delay:    envMillis(env, envScheduleDelay, defaultScheduleDelay),
		timeout:  envMillis(env, envExportTimeout, defaultExportTimeout),
		maxQueue: envInt(env, envMaxQueue, defaultMaxQueue),
		maxBatch: envInt(env, envMaxBatch, defaultMaxBatch),
		wake:     make(chan struct{}, 1),
		flushReq: make(chan chan error),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	b.maxBatch = min(b.maxBatch, b.maxQueue)
	b.queue = make([]sdktrace.ReadOnlySpan, 0, b.maxBatch)
	go b.run()
	return b
}

// envMillis reads a positive number of milliseconds; def when unset or
// not one.
func envMillis(env func(string) string, key string, def time.Duration) time.Duration {
	if n := envInt(env, key, 0); n > 0 {
		return time.Duration(n) * time.Millisecond
	}
	return def
}

// envInt reads a positive integer; def when unset or not one.
func envInt(env func(string) string, key string, def int) int {
	n, err := strconv.Atoi(env(key))
	if err != nil || n <= 0 {
		return def
	}
	return n
}

// OnStart implements sdktrace.SpanProcessor: nothing to do.
func (b *batcher) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd implements sdktrace.SpanProcessor: a sampled span joins the queue,
// or is dropped when the queue is full.
func (b *batcher) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return
	}
	b.mu.Lock()
	if len(b.queue) >= b.maxQueue {
		b.dropped++
		b.mu.Unlock()
		return
	}
	b.queue = append(b.queue, s)
	full := len(b.queue) >= b.maxBatch
	b.mu.Unlock()
	if full {
		select {
		case b.wake <- struct{}{}:
		default: // woken already
		}
	}
}

// run exports the queue whenever a batch is full, the schedule delay has
// passed, or a flush asks, until Shutdown.
func (b *batcher) run() {
	defer close(b.done)
	timer := time.NewTimer(b.delay)
	defer timer.Stop()
	for {
		// export has handed its errors to OpenTelemetry's error handler
		// (logged); only a flush returns them to its caller.
		select {
		case <-b.wake:
			_ = b.export(false)
		case <-timer.C:
			_ = b.export(true)
		case reply := <-b.flushReq:
			reply <- b.export(true)
		case <-b.stop:
			_ = b.export(true)
			return
		}
		timer.Reset(b.delay)
	}
}

// export sends the queue in batches of at most maxBatch; all of it, or
// only full batches. Errors go to OpenTelemetry's error handler (logged)
// and are returned.
func (b *batcher) export(all bool) error {
	var errs []error
	for {
		b.mu.Lock()
		n := len(b.queue)
		if n == 0 || (!all && n < b.maxBatch) {
			dropped := b.dropped
			b.dropped = 0
			b.mu.Unlock()
			if dropped > 0 {
				err := fmt.Errorf("tracing: %d spans dropped: the export queue (%s=%d) was full", dropped, envMaxQueue, b.maxQueue)
				otel.Handle(err)
				errs = append(errs, err)
			}
			return errors.Join(errs...)
		}
		k := min(n, b.maxBatch)
		batch := make([]sdktrace.ReadOnlySpan, k)
		copy(batch, b.queue[:k])
		rest := copy(b.queue, b.queue[k:])
		clear(b.queue[rest:]) // the exported spans can be collected
		b.queue = b.queue[:rest]
		b.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
		if err := b.exp.ExportSpans(ctx, batch); err != nil {
			otel.Handle(err)
			errs = append(errs, err)
		}
		cancel()
	}
}

// ForceFlush implements sdktrace.SpanProcessor: it exports every span
// queued, and returns when they are sent or ctx is done.
func (b *batcher) ForceFlush(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case b.flushReq <- reply:
	case <-b.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown implements sdktrace.SpanProcessor: it exports what is queued,
// stops the export goroutine and shuts the exporter down.
func (b *batcher) Shutdown(ctx context.Context) error {
	b.stopOnce.Do(func() { close(b.stop) })
	select {
	case <-b.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := b.exp.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: exporter: %w", err)
	}
	return nil
}
