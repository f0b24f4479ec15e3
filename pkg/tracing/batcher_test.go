package tracing

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// batcherProvider returns a tracer provider on a batcher with env's
// settings, exporting into memory.
func batcherProvider(t *testing.T, env map[string]string) (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(newBatcher(exp, func(k string) string { return env[k] })))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, exp
}

// spans ends n spans of tp.
func spans(tp *sdktrace.TracerProvider, n int) {
	for i := range n {
		_, s := tp.Tracer("test").Start(context.Background(), "span "+strconv.Itoa(i))
		s.End()
	}
}

// eventually waits up to 10 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("after 10 s: %s", what)
}

func TestBatcherExportsFullBatchesAtOnce(t *testing.T) {
	// A schedule delay no test waits for: only a full batch is exported.
	tp, exp := batcherProvider(t, map[string]string{envMaxBatch: "10", envScheduleDelay: "3600000"})
	spans(tp, 25)
	eventually(t, "20 spans exported", func() bool { return len(exp.GetSpans()) == 20 })
	time.Sleep(50 * time.Millisecond)
	if got := len(exp.GetSpans()); got != 20 {
		t.Errorf("%d spans exported before a flush, want the two full batches of 10", got)
	}
	if err := tp.ForceFlush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := len(exp.GetSpans()); got != 25 {
		t.Errorf("%d spans exported after ForceFlush, want 25", got)
	}
}

func TestBatcherExportsAfterTheScheduleDelay(t *testing.T) {
	tp, exp := batcherProvider(t, map[string]string{envScheduleDelay: "20"})
	spans(tp, 3)
	eventually(t, "3 spans exported", func() bool { return len(exp.GetSpans()) == 3 })
}

// gatedExporter keeps what it exports (also after Shutdown, unlike
// tracetest's) and, while gate is open, waits for it on every export.
type gatedExporter struct {
	gate     chan struct{}
	mu       sync.Mutex
	exported int
}

func (e *gatedExporter) ExportSpans(ctx context.Context, s []sdktrace.ReadOnlySpan) error {
	if e.gate != nil {
		<-e.gate
	}
	e.mu.Lock()
	e.exported += len(s)
	e.mu.Unlock()
	return nil
}

func (e *gatedExporter) Shutdown(context.Context) error { return nil }

func (e *gatedExporter) count() int { e.mu.Lock(); defer e.mu.Unlock(); return e.exported }

func TestBatcherDropsWhenTheQueueIsFull(t *testing.T) {
	var mu sync.Mutex
	var handled []error
	prev := otel.GetErrorHandler()
	t.Cleanup(func() { otel.SetErrorHandler(prev) })
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { mu.Lock(); handled = append(handled, err); mu.Unlock() }))
	exp := &gatedExporter{gate: make(chan struct{})}
	b := newBatcher(exp, func(k string) string {
		return map[string]string{envMaxQueue: "5", envScheduleDelay: "3600000"}[k]
	})
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(b))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	spans(tp, 5) // a full batch: the export starts and waits at the gate
	eventually(t, "the first batch taken", func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.queue) == 0 })
	spans(tp, 8) // 5 queued, 3 dropped
	close(exp.gate)
	if err := tp.ForceFlush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := exp.count(); got != 10 {
		t.Errorf("%d spans exported, want 10 (3 dropped)", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(handled) != 1 || !strings.Contains(handled[0].Error(), "3 spans dropped") {
		t.Errorf("errors reported %v, want one saying 3 spans were dropped", handled)
	}
}

func TestBatcherShutdownExportsTheRest(t *testing.T) {
	exp := &gatedExporter{}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(newBatcher(exp, func(string) string { return "" })))
	spans(tp, 7)
	if err := tp.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := exp.count(); got != 7 {
		t.Errorf("%d spans exported at shutdown, want 7", got)
	}
}

func TestBatcherSettings(t *testing.T) {
	b := newBatcher(tracetest.NewInMemoryExporter(), func(k string) string {
		return map[string]string{envScheduleDelay: "250", envExportTimeout: "nonsense", envMaxQueue: "100", envMaxBatch: "500"}[k]
	})
	defer func() { _ = b.Shutdown(context.Background()) }()
	if b.delay != 250*time.Millisecond || b.timeout != defaultExportTimeout || b.maxQueue != 100 || b.maxBatch != 100 {
		t.Errorf("delay %s timeout %s queue %d batch %d; want 250ms, the default, 100, 100 (capped at the queue)",
			b.delay, b.timeout, b.maxQueue, b.maxBatch)
	}
}
