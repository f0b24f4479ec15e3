package e2e

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"

	"github.com/tollgate/tollgate/internal/leakcheck"
	"github.com/tollgate/tollgate/internal/otlpsink"
	"github.com/tollgate/tollgate/pkg/token"
	"github.com/tollgate/tollgate/pkg/tracing"
)

// A caller's trace context, as a gateway in front of Tollgate sends it.
const (
	callerTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpanID  = "00f067aa0ba902b7"
)

// rawID matches a path segment that is a number: a span name must hold the
// route's template instead.
var rawID = regexp.MustCompile(`/[0-9]+(/|$)`)

// otlpReceiver starts a receiver of the protocol (OTLP_EXPORTER_OTLP_PROTOCOL's
// values) and returns it and the endpoint to export to.
func otlpReceiver(t *testing.T, protocol string) (*otlpsink.Receiver, string) {
	t.Helper()
	rc := &otlpsink.Receiver{Keep: true}
	switch protocol {
	case "http/protobuf":
		srv := httptest.NewServer(rc)
		t.Cleanup(srv.Close)
		return rc, srv.URL + otlpsink.PathTraces
	case "grpc":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		gs := grpc.NewServer()
		coltracepb.RegisterTraceServiceServer(gs, rc)
		go func() { _ = gs.Serve(ln) }()
		t.Cleanup(gs.Stop)
		return rc, "http://" + ln.Addr().String()
	}
	t.Fatalf("unknown protocol %q", protocol)
	return nil, ""
}

// startTracing points the OTEL_* variables at endpoint and sets tracing up
// as serve does; the function it returns flushes the spans and turns
// tracing off again.
func startTracing(t *testing.T, protocol, endpoint string) func() {
	t.Helper()
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint)
	t.Setenv("OTEL_TRACES_SAMPLER", "parentbased_always_on")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
	shutdown, err := tracing.Setup(t.Context(), tracing.Options{ServiceVersion: "e2e"})
	if err != nil {
		t.Fatalf("tracing.Setup: %v", err)
	}
	done := false
	stop := func() {
		if done {
			return
		}
		done = true
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			t.Errorf("tracing shutdown: %v", err)
		}
	}
	t.Cleanup(stop)
	if !tracing.Enabled() {
		t.Fatal("tracing.Setup with OTEL_TRACES_EXPORTER=otlp left tracing off")
	}
	return stop
}

// TestTracesOverOTLP drives the wired application with tracing on, over
// OTLP/HTTP and OTLP/gRPC to a receiver of the test's own, and checks the
// spans: names, parents, attributes, the trace context in and out, and no
// secret anywhere in what was exported.
func TestTracesOverOTLP(t *testing.T) {
	for _, protocol := range []string{"http/protobuf", "grpc"} {
		t.Run(protocol, func(t *testing.T) {
			rc, endpoint := otlpReceiver(t, protocol)
			stop := startTracing(t, protocol, endpoint)
			// Built after Setup: the database and Redis are instrumented
			// only when tracing is on.
			f := newFixture(t, "postgres+redis")
			_, key := f.apiKey(f.alice, "events")

			tok := f.tokenCC(f.cc)
			if res := f.introspect(f.rs, tok); res.status != http.StatusOK {
				t.Fatalf("introspect: status %d", res.status)
			}
			checkToken := f.check(http.MethodGet, "Authorization", "Bearer "+tok,
				"traceparent", "00-"+callerTraceID+"-"+callerSpanID+"-01")
			if checkToken.status != http.StatusOK {
				t.Fatalf("check with a token: status %d, body %s", checkToken.status, checkToken.body)
			}
			if res := f.check(http.MethodGet, "X-API-Key", key); res.status != http.StatusOK {
				t.Fatalf("check with an API key: status %d, body %s", res.status, res.body)
			}
			if res := f.tokenWithSecret(f.cc, "not the secret"); res.status != http.StatusUnauthorized {
				t.Fatalf("token with a wrong secret: status %d, want 401", res.status)
			}
			if res := f.tokenWithPassword("alice", "not the password"); res.status == http.StatusOK {
				t.Fatal("eskimi_dsp with a wrong password: status 200")
			}
			dspTok := f.tokenDSP(f.dsp, "alice")
			admin := f.admUser("alice")
			if res := f.admDo(t, admin, http.MethodGet, "/users/"+strconv.FormatInt(f.bob.ID, 10), ""); res.status != http.StatusOK {
				t.Fatalf("get user: status %d, body %s", res.status, res.body)
			}
			stop() // flushes every span

			spans := rc.Spans()
			if len(spans) == 0 {
				t.Fatal("the receiver got no span")
			}
			byID := map[string]otlpsink.Span{}
			for _, s := range spans {
				byID[hex.EncodeToString(s.SpanId)] = s
				if got := s.Resource["service.name"]; got != tracing.DefaultServiceName {
					t.Errorf("span %q: service.name %q, want %q", s.Name, got, tracing.DefaultServiceName)
				}
			}
			parent := func(s otlpsink.Span) (otlpsink.Span, bool) {
				p, ok := byID[hex.EncodeToString(s.ParentSpanId)]
				return p, ok
			}
			// root returns the server span s descends from.
			root := func(s otlpsink.Span) (otlpsink.Span, bool) {
				for range 10 {
					if s.Kind == tracepb.Span_SPAN_KIND_SERVER {
						return s, true
					}
					p, ok := parent(s)
					if !ok {
						return otlpsink.Span{}, false
					}
					s = p
				}
				return otlpsink.Span{}, false
			}

			// Server spans: named by their route template, never by a path
			// with an id in it.
			servers := map[string][]otlpsink.Span{}
			for _, s := range spans {
				if s.Kind == tracepb.Span_SPAN_KIND_SERVER {
					servers[s.Name] = append(servers[s.Name], s)
				}
			}
			for _, name := range []string{"POST /oauth/token", "POST /oauth/introspect", "GET /auth/check", "GET /api/v1/users/{id}"} {
				if len(servers[name]) == 0 {
					t.Errorf("no server span %q; server spans: %v", name, keys(servers))
				}
			}
			for name, ss := range servers {
				if rawID.MatchString(name) {
					t.Errorf("server span %q has an id in its name: a raw path?", name)
				}
				for _, s := range ss {
					for _, k := range []string{"http.request.method", "http.route", "http.response.status_code", "tollgate.endpoint", "tollgate.outcome", "tollgate.request_id"} {
						if attr(s.Span, k) == nil {
							t.Errorf("server span %q lacks %s", name, k)
						}
					}
				}
			}
			if s := first(servers["GET /api/v1/users/{id}"]); s != nil {
				if got := attr(s.Span, "http.route").GetStringValue(); got != "/api/v1/users/{id}" {
					t.Errorf("http.route %q, want /api/v1/users/{id}", got)
				}
			}
			// The failed authentication is on its span.
			failed := false
			for _, s := range servers["POST /oauth/token"] {
				if attr(s.Span, "http.response.status_code").GetIntValue() == http.StatusUnauthorized &&
					attr(s.Span, "tollgate.outcome").GetStringValue() == "invalid_client" {
					failed = true
				}
			}
			if !failed {
				t.Error("no token server span with status 401 and outcome invalid_client")
			}

			// The caller's traceparent is the check's parent, and the answer
			// carries the check's own trace context.
			var checkSpan otlpsink.Span
			for _, s := range servers["GET /auth/check"] {
				if hex.EncodeToString(s.TraceId) == callerTraceID {
					checkSpan = s
				}
			}
			if checkSpan.Span == nil {
				t.Fatalf("no check span in the caller's trace %s", callerTraceID)
			}
			if got := hex.EncodeToString(checkSpan.ParentSpanId); got != callerSpanID {
				t.Errorf("check span's parent %s, want the caller's span %s", got, callerSpanID)
			}
			want := "00-" + callerTraceID + "-" + hex.EncodeToString(checkSpan.SpanId) + "-01"
			if got := checkToken.header.Get("traceparent"); got != want {
				t.Errorf("check answer's traceparent %q, want %q", got, want)
			}

			// The check's log lines lead to its trace.
			if !strings.Contains(f.logs.String(), `"trace_id":"`+callerTraceID+`"`) {
				t.Errorf("no log line carries the check's trace id %s", callerTraceID)
			}
			// fosite's own spans are left out (tracing.WithoutLibrarySpans).
			for _, s := range spans {
				if s.Scope == "github.com/ory/fosite" {
					t.Errorf("a fosite span %q was exported", s.Name)
				}
			}

			// Child spans, each under the request that made it.
			wantChild := func(what string, match func(otlpsink.Span) bool, under ...string) {
				t.Helper()
				n := 0
				for _, s := range spans {
					if !match(s) {
						continue
					}
					n++
					r, ok := root(s)
					if !ok {
						t.Errorf("%s span %q has no server span above it", what, s.Name)
						continue
					}
					if len(under) > 0 && !slices.Contains(under, r.Name) {
						t.Errorf("%s span %q is under %q, want one of %v", what, s.Name, r.Name, under)
					}
				}
				if n == 0 {
					t.Errorf("no %s span", what)
				}
			}
			named := func(name string) func(otlpsink.Span) bool {
				return func(s otlpsink.Span) bool { return s.Name == name }
			}
			wantChild("grant", named("grant client_credentials"), "POST /oauth/token")
			wantChild("grant", named("grant eskimi_dsp"), "POST /oauth/token")
			wantChild("check decision", named("check decision"), "GET /auth/check")
			wantChild("password hash", named("argon2id verify"), "POST /oauth/token")
			for _, s := range spans {
				if s.Name == "argon2id verify" {
					if p, ok := parent(s); !ok || p.Name != "grant eskimi_dsp" {
						t.Errorf("argon2id verify's parent is %q, want the grant's span", p.Name)
					}
				}
				if s.Name == "check decision" {
					if p, ok := parent(s); !ok || p.Name != "GET /auth/check" {
						t.Errorf("check decision's parent is %q, want the check's server span", p.Name)
					}
					switch attr(s.Span, "tollgate.check.credential").GetStringValue() {
					case "bearer", "api_key":
					default:
						t.Errorf("check decision without a credential kind: %v", s.Attributes)
					}
					if got := attr(s.Span, "tollgate.check.decision").GetStringValue(); got != "allow" {
						t.Errorf("check decision %q, want allow", got)
					}
				}
			}
			redisScope := func(s otlpsink.Span) bool {
				return strings.HasPrefix(s.Scope, "github.com/redis/go-redis") && s.Name != "redis.dial"
			}
			wantChild("Redis", redisScope)
			sqlScope := func(s otlpsink.Span) bool {
				return s.Scope == "gorm.io/plugin/opentelemetry" && s.ParentSpanId != nil
			}
			wantChild("SQL", sqlScope)
			// Statements carry their placeholders, never the values bound
			// to them (the user names looked up, the ids).
			placeholders := 0
			for _, s := range spans {
				if s.Scope != "gorm.io/plugin/opentelemetry" {
					continue
				}
				stmt := attr(s.Span, "db.statement").GetStringValue()
				if stmt == "" {
					t.Errorf("SQL span %q without db.statement", s.Name)
				}
				if strings.Contains(stmt, "$1") {
					placeholders++
				}
				if strings.Contains(stmt, "'alice'") || strings.Contains(stmt, "'bob'") {
					t.Errorf("SQL span's statement holds a bound value: %q", stmt)
				}
			}
			if placeholders == 0 {
				t.Error("no SQL statement with a placeholder")
			}

			// No secret in anything exported: the raw bytes as received and
			// every name and attribute.
			var m leakcheck.Matcher
			for id, s := range f.secretOf {
				m.Credential("a client secret", strconv.FormatInt(id, 10), s)
			}
			for _, s := range f.secrets {
				m.Secret("a secret or key the test handed out", s)
			}
			for _, tk := range []string{tok, dspTok, string(admin)} {
				m.Secret("a token", tk)
				sig := tk[strings.LastIndexByte(tk, '.')+1:]
				m.Secret("a token's signature", sig)
				if raw, err := base64.RawURLEncoding.DecodeString(sig); err == nil {
					m.Secret("a token's signature as stored", string(raw))
				}
			}
			m.Secret("the API key", key)
			m.Secret("the users' password", testPassword)
			m.Secret("the wrong password", "not the password")
			m.Secret("the wrong secret", "not the secret")
			m.Secret("the token secret", string(f.keys.TokenSecret))
			m.Secret("the pepper", string(f.keys.Pepper))
			m.Marker("a token", token.AccessPrefix)
			m.Marker("a secret hash", "tgh1$")
			m.Marker("a password hash", "$argon2id$")
			for i, raw := range rc.Raw() {
				for _, what := range m.Find(string(raw)) {
					t.Errorf("export %d holds %s", i, what)
				}
			}
			for _, s := range spans {
				text := s.Name + "\n" + attrText(s.Attributes)
				for _, ev := range s.Events {
					text += "\n" + ev.Name + "\n" + attrText(ev.Attributes)
				}
				text += "\n" + s.GetStatus().GetMessage()
				for _, what := range m.Find(text) {
					t.Errorf("span %q holds %s", s.Name, what)
				}
			}
		})
	}
}

// TestTracingOff checks that without OTEL_TRACES_EXPORTER nothing is
// traced: no span reaches a receiver the other variables point at, and the
// check's answer carries no traceparent.
func TestTracingOff(t *testing.T) {
	rc, endpoint := otlpReceiver(t, "http/protobuf")
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint)
	shutdown, err := tracing.Setup(t.Context(), tracing.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if tracing.Enabled() {
		t.Fatal("tracing on without OTEL_TRACES_EXPORTER")
	}
	f := newFixture(t, "postgres+redis")
	tok := f.tokenCC(f.cc)
	res := f.check(http.MethodGet, "Authorization", "Bearer "+tok, "traceparent", "00-"+callerTraceID+"-"+callerSpanID+"-01")
	if res.status != http.StatusOK {
		t.Fatalf("check: status %d", res.status)
	}
	if got := res.header.Get("traceparent"); got != "" {
		t.Errorf("check answer's traceparent %q with tracing off", got)
	}
	if err := shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n, _ := rc.Requests(); n != 0 {
		t.Errorf("the receiver got %d exports with tracing off", n)
	}
}

func attr(s *tracepb.Span, key string) *commonpb.AnyValue {
	for _, kv := range s.GetAttributes() {
		if kv.GetKey() == key {
			return kv.GetValue()
		}
	}
	return nil
}

// attrText is every attribute as key=value lines.
func attrText(kvs []*commonpb.KeyValue) string {
	var b strings.Builder
	for _, kv := range kvs {
		b.WriteString(kv.GetKey() + "=" + kv.GetValue().String() + "\n")
	}
	return b.String()
}

func first[T any](s []T) *T {
	if len(s) == 0 {
		return nil
	}
	return &s[0]
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
