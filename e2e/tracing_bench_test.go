package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/tollgate/tollgate/internal/otlpsink"
	"github.com/tollgate/tollgate/pkg/tracing"
)

// tracingBlock is how many requests run in a row in one mode.
const tracingBlock = 500

// BenchmarkTokenTracing measures what tracing costs the token path (POST
// /oauth/token, client_credentials, form body) on PostgreSQL + Redis: off,
// as by default, and on at 100% sampling exporting over OTLP/HTTP to a
// receiver in the process that discards. Each mode has its own application,
// built as serve builds it in that mode (with tracing on, Redis and SQL are
// instrumented), and the two alternate in blocks of tracingBlock requests;
// every block with tracing on ends by flushing its spans, so the export is
// counted where it belongs. It reports the allocations per request and the process's CPU time per request
// in each mode (user + system: the batch exporter, the receiver and the
// requests' own goroutines) and their ratio, "cpu-on/off": on a CPU-bound
// server the throughput lost to tracing is 1 - 1/ratio. Alternating makes a
// shared machine's load fall on both modes alike.
//
//	go test -run '^$' -bench TokenTracing -benchtime 10000x -count 3 ./e2e/
func BenchmarkTokenTracing(b *testing.B) {
	sink := httptest.NewServer(&otlpsink.Receiver{})
	b.Cleanup(sink.Close)
	off := newBenchApp(b, "postgres+redis") // built with tracing off: nothing instrumented
	b.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	b.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	b.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", sink.URL+otlpsink.PathTraces)
	b.Setenv("OTEL_TRACES_SAMPLER", "always_on")
	shutdown, err := tracing.Setup(b.Context(), tracing.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = shutdown(context.Background()) })
	tp, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider)
	if !ok {
		b.Fatal("tracing.Setup installed no SDK tracer provider")
	}
	on := newBenchApp(b, "postgres+redis")
	noopTP := noop.NewTracerProvider()

	request := func(ba *benchApp, basic string) {
		ba.serve(b, http.MethodPost, "/oauth/token", formCT, "grant_type=client_credentials", "Authorization", basic)
	}
	offBasic, onBasic := off.basic(), on.basic()
	// Warm both: caches filled, connections open.
	otel.SetTracerProvider(noopTP)
	for range tracingBlock {
		request(off, offBasic)
	}
	otel.SetTracerProvider(tp)
	for range tracingBlock {
		request(on, onBasic)
	}
	_ = tp.ForceFlush(b.Context())

	var cpu, wall [2]time.Duration
	var allocs, bytes [2]uint64
	var ms runtime.MemStats
	var n [2]int
	var perBlock [2][]float64 // CPU µs per request of each block
	b.ResetTimer()
	for i := 0; i < b.N; {
		for mode := range 2 {
			ba, basic := off, offBasic
			if mode == 1 {
				ba, basic = on, onBasic
			}
			if mode == 1 {
				otel.SetTracerProvider(tp)
			} else {
				otel.SetTracerProvider(noopTP)
			}
			runtime.ReadMemStats(&ms)
			a0, by0 := ms.Mallocs, ms.TotalAlloc
			c0, t0 := cpuTime(b), time.Now()
			k := 0
			for ; k < tracingBlock && i < b.N; k++ {
				request(ba, basic)
				i++
			}
			if mode == 1 {
				if err := tp.ForceFlush(b.Context()); err != nil {
					b.Fatalf("flush: %v", err)
				}
			}
			dc := cpuTime(b) - c0
			cpu[mode] += dc
			wall[mode] += time.Since(t0)
			runtime.ReadMemStats(&ms)
			allocs[mode] += ms.Mallocs - a0
			bytes[mode] += ms.TotalAlloc - by0
			n[mode] += k
			if k > 0 {
				perBlock[mode] = append(perBlock[mode], float64(dc.Microseconds())/float64(k))
			}
		}
	}
	b.StopTimer()
	otel.SetTracerProvider(tp) // for the shutdown
	if n[0] == 0 || n[1] == 0 {
		return
	}
	perReq := func(d time.Duration, k int) float64 { return float64(d.Microseconds()) / float64(k) }
	offCPU, onCPU := perReq(cpu[0], n[0]), perReq(cpu[1], n[1])
	b.ReportMetric(offCPU, "cpu-µs/req-off")
	b.ReportMetric(onCPU, "cpu-µs/req-on")
	b.ReportMetric(onCPU/offCPU, "cpu-on/off")
	b.ReportMetric(float64(allocs[0])/float64(n[0]), "allocs/req-off")
	b.ReportMetric(float64(allocs[1])/float64(n[1]), "allocs/req-on")
	b.ReportMetric(float64(bytes[0])/float64(n[0]), "B/req-off")
	b.ReportMetric(float64(bytes[1])/float64(n[1]), "B/req-on")
	b.ReportMetric(perReq(wall[0], n[0]), "wall-µs/req-off")
	b.ReportMetric(perReq(wall[1], n[1]), "wall-µs/req-on")
	if len(perBlock[0]) > 1 && len(perBlock[1]) > 1 {
		median := func(s []float64) float64 { slices.Sort(s); return s[len(s)/2] }
		b.ReportMetric(median(perBlock[1])/median(perBlock[0]), "median-cpu-on/off")
	}
}

// cpuTime returns the CPU time (user + system) the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
