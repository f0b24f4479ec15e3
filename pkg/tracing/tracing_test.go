package tracing

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gorilla/mux"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestOn(t *testing.T) {
	for _, tt := range []struct {
		name     string
		exporter string
		disabled string
		want     bool
	}{
		{"nothing set", "", "", false},
		{"none", "none", "", false},
		{"otlp", "otlp", "", true},
		{"console", "console", "", true},
		{"otlp, SDK disabled", "otlp", "true", false},
		{"otlp, SDK disabled in capitals", "otlp", "TRUE", false},
		{"otlp, SDK not disabled", "otlp", "false", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{EnvExporter: tt.exporter, EnvSDKDisabled: tt.disabled}
			if got := On(func(k string) string { return env[k] }); got != tt.want {
				t.Errorf("On = %v, want %v", got, tt.want)
			}
		})
	}
}

// countExporters makes Setup count the exporters it builds, building them
// as it does.
func countExporters(t *testing.T) *int {
	t.Helper()
	n := 0
	orig := newSpanExporter
	newSpanExporter = func(ctx context.Context, opts ...autoexport.SpanOption) (sdktrace.SpanExporter, error) {
		n++
		return orig(ctx, opts...)
	}
	t.Cleanup(func() { newSpanExporter = orig })
	return &n
}

func TestSetupOffBuildsNoExporter(t *testing.T) {
	for _, tt := range []struct{ name, exporter, disabled string }{
		{"unset", "", ""},
		{"none", "none", ""},
		{"SDK disabled", "otlp", "true"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := countExporters(t)
			t.Setenv(EnvExporter, tt.exporter)
			t.Setenv(EnvSDKDisabled, tt.disabled)
			shutdown, err := Setup(t.Context(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if *n != 0 {
				t.Errorf("Setup built %d exporters with tracing off", *n)
			}
			if Enabled() {
				t.Error("Enabled with tracing off")
			}
			if _, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider); ok {
				t.Error("an SDK tracer provider is installed with tracing off")
			}
			if err := shutdown(t.Context()); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestSetupOn(t *testing.T) {
	n := countExporters(t)
	t.Setenv(EnvExporter, "otlp")
	t.Setenv(EnvSDKDisabled, "")
	// Nothing listens there; nothing is sent before shutdown, which is
	// given no time.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
	shutdown, err := Setup(t.Context(), Options{ServiceVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if *n != 1 || !Enabled() {
		t.Errorf("exporters built %d, Enabled %v: want 1, true", *n, Enabled())
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_ = shutdown(ctx) // nothing to flush
	if Enabled() {
		t.Error("Enabled after shutdown")
	}
}

// withRecorder installs a tracer provider recording into memory for the
// test.
func withRecorder(t *testing.T) *tracetest.SpanRecorder {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev); _ = tp.Shutdown(context.Background()) })
	return rec
}

func TestMiddlewareNamesSpansByRoute(t *testing.T) {
	rec := withRecorder(t)
	inner := mux.NewRouter()
	inner.Use(NameRoute)
	inner.HandleFunc("/api/users/{id:[0-9]+}", func(w http.ResponseWriter, r *http.Request) {
		Answer(trace.SpanFromContext(r.Context()), http.StatusTeapot, "admin", "ok", "", 7, "rid")
	})
	outer := mux.NewRouter()
	outer.Use(NameRoute)
	outer.PathPrefix("/api/").Handler(inner)
	outer.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		Inject(r.Context(), w.Header())
	})
	h := Middleware(outer)

	for _, tt := range []struct {
		method, path, want, route string
	}{
		{http.MethodGet, "/api/users/42", "GET /api/users/{id}", "/api/users/{id}"},
		{http.MethodGet, "/api/nothing/42", "GET /api/", "/api/"},
		{http.MethodPost, "/token", "POST /token", "/token"},
		{"BREW", "/token", "_OTHER /token", "/token"},
		{http.MethodGet, "/elsewhere/42", "GET", ""},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec.Reset()
			r := httptest.NewRequest(tt.method, tt.path, nil)
			r.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			spans := rec.Ended()
			if len(spans) != 1 {
				t.Fatalf("%d spans, want 1", len(spans))
			}
			s := spans[0]
			if s.Name() != tt.want {
				t.Errorf("span name %q, want %q", s.Name(), tt.want)
			}
			if s.SpanKind() != trace.SpanKindServer {
				t.Errorf("span kind %v, want server", s.SpanKind())
			}
			if got := s.Parent().SpanID().String(); got != "00f067aa0ba902b7" {
				t.Errorf("parent %s, want the caller's span", got)
			}
			var route string
			for _, kv := range s.Attributes() {
				if kv.Key == "http.route" {
					route = kv.Value.AsString()
				}
			}
			if route != tt.route {
				t.Errorf("http.route %q, want %q", route, tt.route)
			}
			if tt.path == "/token" {
				want := "00-4bf92f3577b34da6a3ce929d0e0e4736-" + s.SpanContext().SpanID().String() + "-01"
				if got := w.Header().Get("traceparent"); got != want {
					t.Errorf("traceparent %q, want %q", got, want)
				}
			}
		})
	}
}

func TestMiddlewareOff(t *testing.T) {
	if Enabled() {
		t.Fatal("tracing on at the start of the test")
	}
	var got *http.Request
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	w := httptest.NewRecorder()
	Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		Inject(r.Context(), w.Header())
	})).ServeHTTP(w, r)
	if got != r {
		t.Error("the request was replaced with tracing off")
	}
	if v := w.Header().Get("traceparent"); v != "" {
		t.Errorf("traceparent %q answered with tracing off", v)
	}
	if allocs := testing.AllocsPerRun(100, func() {
		_, span := Start(t.Context(), "step")
		span.End()
	}); allocs != 0 {
		t.Errorf("Start with tracing off allocates %v times", allocs)
	}
}

func TestBareTemplate(t *testing.T) {
	for in, want := range map[string]string{
		"/oauth/token":                   "/oauth/token",
		"/users/{id:[0-9]+}":             "/users/{id}",
		"/users/{id:[0-9]+}/password":    "/users/{id}/password",
		"/a/{x:[a-z]{2,3}}/b/{y}":        "/a/{x}/b/{y}",
		"/console/clients/{id:[0-9]+}/k": "/console/clients/{id}/k",
	} {
		if got := bareTemplate(in); got != want {
			t.Errorf("bareTemplate(%q) = %q, want %q", in, got, want)
		}
	}
}
