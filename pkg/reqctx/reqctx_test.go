package reqctx

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// serve runs one request through the Middleware and returns the context
// the handler saw and the answer's X-Request-Id.
func serve(t *testing.T, trusted []netip.Prefix, r *http.Request) (context.Context, string) {
	t.Helper()
	var ctx context.Context
	w := httptest.NewRecorder()
	Middleware(trusted, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { ctx = r.Context() })).ServeHTTP(w, r)
	return ctx, w.Header().Get(HeaderRequestID)
}

func TestRequestID(t *testing.T) {
	for _, tt := range []struct {
		name, sent string
		kept       bool
	}{
		{"safe", "abc-DEF_1.2", true},
		{"64 characters", strings.Repeat("a", 64), true},
		{"65 characters", strings.Repeat("a", 65), false},
		{"a space", "a b", false},
		{"a header injection", "x\r\nSet-Cookie: y", false},
		{"none", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.sent != "" {
				r.Header.Set(HeaderRequestID, tt.sent)
			}
			ctx, answered := serve(t, nil, r)
			got := ID(ctx)
			if answered != got {
				t.Errorf("answered X-Request-Id %q, context has %q", answered, got)
			}
			if tt.kept && got != tt.sent {
				t.Errorf("ID = %q, want the caller's %q", got, tt.sent)
			}
			if !tt.kept && (got == tt.sent || len(got) != 24 || !safeID(got)) {
				t.Errorf("ID = %q, want a new 24-character id", got)
			}
		})
	}
	a, _ := serve(t, nil, httptest.NewRequest(http.MethodGet, "/", nil))
	b, _ := serve(t, nil, httptest.NewRequest(http.MethodGet, "/", nil))
	if ID(a) == ID(b) {
		t.Errorf("two requests got the same new id %q", ID(a))
	}
}

// FuzzRequestID: the request id put in answers and logs is always a short
// run of safe characters, whatever the caller sent.
func FuzzRequestID(f *testing.F) {
	for _, seed := range []string{"abc-123", "", "a b", "x\r\nSet-Cookie: y", "\x00", "ü", string(make([]byte, 100))} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, sent string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["X-Request-Id"] = []string{sent}
		id := requestID(r)
		if id == "" || len(id) > 64 || !safeID(id) {
			t.Fatalf("requestID(%q) = %q", sent, id)
		}
	})
}

func TestAddressThroughTrustedProxies(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, tt := range []struct {
		name, peer, xff string
		trusted         []netip.Prefix
		addr, source    string
		forwarded, via  bool
	}{
		{"direct", "192.0.2.7:4000", "", trusted, "192.0.2.7", "192.0.2.7", false, false},
		{"forged header from an untrusted peer", "192.0.2.7:4000", "198.51.100.1", trusted, "192.0.2.7", "192.0.2.7", false, false},
		{"through a trusted proxy", "10.1.2.3:4000", "198.51.100.1", trusted, "198.51.100.1", "198.51.100.1", true, true},
		{"a trusted proxy forwarding nothing", "10.1.2.3:4000", "", trusted, "10.1.2.3", "10.1.2.3", false, true},
		{"no trusted proxies", "10.1.2.3:4000", "198.51.100.1", nil, "10.1.2.3", "10.1.2.3", false, false},
		{"IPv6 counted by its /64", "[2001:db8::1]:4000", "", trusted, "2001:db8::1", "2001:db8::/64", false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.peer
			if tt.xff != "" {
				r.Header.Set("X-Forwarded-For", tt.xff)
			}
			ctx, _ := serve(t, tt.trusted, r)
			if got := Addr(ctx); got != tt.addr {
				t.Errorf("Addr = %q, want %q", got, tt.addr)
			}
			if got := Source(ctx); got != tt.source {
				t.Errorf("Source = %q, want %q", got, tt.source)
			}
			if got := Forwarded(ctx); got != tt.forwarded {
				t.Errorf("Forwarded = %v, want %v", got, tt.forwarded)
			}
			if got := ViaTrustedProxy(ctx); got != tt.via {
				t.Errorf("ViaTrustedProxy = %v, want %v", got, tt.via)
			}
			if got := Source(WithSource(ctx, "")); got != "" {
				t.Errorf("Source after WithSource(\"\") = %q, want \"\"", got)
			}
		})
	}
}

func TestOutsideTheMiddleware(t *testing.T) {
	ctx := t.Context()
	SetPrincipal(ctx, Principal{ClientID: 7})
	if ID(ctx) != "" || Addr(ctx) != "" || Source(ctx) != "" || Forwarded(ctx) || ViaTrustedProxy(ctx) || PrincipalOf(ctx) != (Principal{}) {
		t.Errorf("a context without the Middleware answers something")
	}
}

func TestPrincipal(t *testing.T) {
	ctx, _ := serve(t, nil, httptest.NewRequest(http.MethodGet, "/", nil))
	if got := PrincipalOf(ctx); got != (Principal{}) {
		t.Errorf("PrincipalOf before SetPrincipal = %+v, want zero", got)
	}
	SetPrincipal(ctx, Principal{ClientID: 7, UserID: 9})
	if got, want := PrincipalOf(ctx), (Principal{ClientID: 7, UserID: 9}); got != want {
		t.Errorf("PrincipalOf = %+v, want %+v", got, want)
	}
}

// logLines decodes JSON log lines.
func logLines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(NewLogHandler(slog.NewJSONHandler(&buf, nil)))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set(HeaderRequestID, "req-1")
	ctx, _ := serve(t, nil, r)

	logger.InfoContext(t.Context(), "no request")
	logger.InfoContext(ctx, "before authentication", "k", "v")
	SetPrincipal(ctx, Principal{ClientID: 42})
	logger.WarnContext(ctx, "after authentication")
	logger.InfoContext(ctx, "carries its own", "request_id", "req-1", "client_id", 42)
	logger.With("request_id", "req-1").InfoContext(ctx, "preset")
	logger.Info("no context")

	raw := strings.Split(strings.TrimSpace(buf.String()), "\n")
	lines := logLines(t, &buf)
	if len(lines) != 6 {
		t.Fatalf("got %d lines, want 6", len(lines))
	}
	for i, want := range []struct {
		id     any
		client any
	}{
		{nil, nil},
		{"req-1", nil},
		{"req-1", float64(42)},
		{"req-1", float64(42)},
		{"req-1", float64(42)},
		{nil, nil},
	} {
		line := lines[i]
		if got := line["request_id"]; got != want.id {
			t.Errorf("line %d (%v): request_id = %v, want %v", i, line["msg"], got, want.id)
		}
		if got := line["client_id"]; got != want.client {
			t.Errorf("line %d (%v): client_id = %v, want %v", i, line["msg"], got, want.client)
		}
		if line["msg"] == "before authentication" && line["k"] != "v" {
			t.Errorf("line %d lost its own attribute: %v", i, line)
		}
		if strings.Count(raw[i], `"request_id":`) > 1 || strings.Count(raw[i], `"client_id":`) > 1 {
			t.Errorf("line %d repeats an attribute: %s", i, raw[i])
		}
	}
}

func TestLogHandlerTraceIDs(t *testing.T) {
	tp := sdktrace.NewTracerProvider() // samples every span, exports nowhere
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	recording, span := tp.Tracer("test").Start(t.Context(), "request")
	defer span.End()
	remote := trace.ContextWithRemoteSpanContext(t.Context(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}}))
	reqCtx, _ := serve(t, nil, httptest.NewRequest(http.MethodGet, "/", nil))
	for _, tt := range []struct {
		name    string
		ctx     context.Context
		want    bool
		traceID string
	}{
		{"a recording span", recording, true, span.SpanContext().TraceID().String()},
		{"a recording span in a request", trace.ContextWithSpan(reqCtx, span), true, span.SpanContext().TraceID().String()},
		{"a recording span's context past a library", trace.ContextWithSpanContext(t.Context(), span.SpanContext()), true, span.SpanContext().TraceID().String()},
		{"a caller's span context only", remote, false, ""},
		{"no span", reqCtx, false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			slog.New(NewLogHandler(slog.NewJSONHandler(&buf, nil))).InfoContext(tt.ctx, "line")
			var m map[string]any
			if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
				t.Fatal(err)
			}
			_, hasTrace := m[KeyTraceID]
			_, hasSpan := m[KeySpanID]
			if hasTrace != tt.want || hasSpan != tt.want {
				t.Fatalf("line %s: trace_id and span_id present %v %v, want %v", buf.Bytes(), hasTrace, hasSpan, tt.want)
			}
			if tt.want {
				if m[KeyTraceID] != tt.traceID || m[KeySpanID] != span.SpanContext().SpanID().String() {
					t.Errorf("line %s: want trace_id %s span_id %s", buf.Bytes(), tt.traceID, span.SpanContext().SpanID())
				}
			}
		})
	}
}
