package metrics_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate/tollgate/pkg/metrics"
)

// scrape serves p's Handler once and returns the exposition text.
func scrape(t *testing.T, p *metrics.Prometheus) string {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/metrics", nil)
	rec := httptest.NewRecorder()
	p.Handler().ServeHTTP(rec, req)
	res := rec.Result()
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics status = %d, want %d", res.StatusCode, http.StatusOK)
	}
	if got := res.Header.Get("Content-Type"); !strings.HasPrefix(got, "text/plain") {
		t.Errorf("GET /metrics Content-Type = %q, want text/plain exposition format", got)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read /metrics body: %v", err)
	}
	return string(body)
}

func lines(body string) map[string]bool {
	m := map[string]bool{}
	for _, l := range strings.Split(body, "\n") {
		m[l] = true
	}
	return m
}

func TestNewUsesPrivateRegistry(t *testing.T) {
	t.Parallel()
	// Two instances in one process: MustRegister on a shared registry
	// would panic on the second.
	p1 := metrics.New("v1")
	p2 := metrics.New("v2")
	p1.ObserveRequest("token", "client_credentials", "ok", time.Millisecond)
	p2.ObserveRequest("token", "client_credentials", "ok", time.Millisecond)
	if p1.Registry() == p2.Registry() {
		t.Errorf("New() twice returned the same registry, want one each")
	}
	if p1.Registry() == prometheus.DefaultRegisterer {
		t.Errorf("Registry() is prometheus.DefaultRegisterer, want a private registry")
	}

	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatalf("DefaultGatherer.Gather() error = %v", err)
	}
	for _, mf := range families {
		if strings.HasPrefix(mf.GetName(), "tollgate_") {
			t.Errorf("default registry has %s, want no tollgate_ metric on the global registry", mf.GetName())
		}
	}

	mine, err := p1.Registry().Gather()
	if err != nil {
		t.Fatalf("Registry().Gather() error = %v", err)
	}
	names := map[string]bool{}
	for _, mf := range mine {
		names[mf.GetName()] = true
	}
	for _, want := range []string{
		"tollgate_http_requests_total",
		"tollgate_http_request_duration_seconds",
		"tollgate_build_info",
		"go_goroutines",
	} {
		if !names[want] {
			t.Errorf("Registry().Gather() has no %s", want)
		}
	}
}

func TestObserveRequest(t *testing.T) {
	t.Parallel()
	p := metrics.New("1.2.3")
	p.ObserveRequest("token", "client_credentials", "ok", 3*time.Millisecond)
	p.ObserveRequest("token", "client_credentials", "ok", 300*time.Millisecond)
	p.ObserveRequest("token", "client_credentials", "invalid_client", time.Millisecond)
	p.ObserveRequest("introspect", "", "ok", time.Millisecond)

	body := scrape(t, p)
	got := lines(body)
	for _, want := range []string{
		`tollgate_build_info{version="1.2.3"} 1`,
		`tollgate_http_requests_total{endpoint="token",grant_type="client_credentials",outcome="ok"} 2`,
		`tollgate_http_requests_total{endpoint="token",grant_type="client_credentials",outcome="invalid_client"} 1`,
		// An empty grant type is recorded as "none", never as an empty label.
		`tollgate_http_requests_total{endpoint="introspect",grant_type="none",outcome="ok"} 1`,
		`# TYPE tollgate_http_request_duration_seconds histogram`,
		`tollgate_http_request_duration_seconds_bucket{endpoint="token",le="0.0025"} 1`,
		`tollgate_http_request_duration_seconds_bucket{endpoint="token",le="0.005"} 2`,
		`tollgate_http_request_duration_seconds_bucket{endpoint="token",le="0.25"} 2`,
		`tollgate_http_request_duration_seconds_bucket{endpoint="token",le="0.5"} 3`,
		`tollgate_http_request_duration_seconds_bucket{endpoint="token",le="+Inf"} 3`,
		`tollgate_http_request_duration_seconds_count{endpoint="token"} 3`,
		`tollgate_http_request_duration_seconds_sum{endpoint="token"} 0.304`,
		`tollgate_http_request_duration_seconds_count{endpoint="introspect"} 1`,
	} {
		if !got[want] {
			t.Errorf("GET /metrics has no line %q; got:\n%s", want, grep(body, "tollgate_"))
		}
	}
	if strings.Contains(body, `grant_type=""`) {
		t.Errorf("GET /metrics has an empty grant_type label, want \"none\"")
	}
}

func grep(body, substr string) string {
	var b strings.Builder
	for _, l := range strings.Split(body, "\n") {
		if strings.Contains(l, substr) {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// watchAll gives every scrape-time source of p fixed, non-zero values.
func watchAll(p *metrics.Prometheus) {
	p.WatchDatabasePool(func() sql.DBStats {
		return sql.DBStats{MaxOpenConnections: 25, OpenConnections: 7, InUse: 4, Idle: 3, WaitCount: 9, WaitDuration: 1500 * time.Millisecond}
	})
	p.WatchRedisPool(func() metrics.RedisPoolStats {
		return metrics.RedisPoolStats{Hits: 100, Misses: 5, Timeouts: 2, WaitCount: 6, WaitDuration: 250 * time.Millisecond,
			TotalConns: 10, IdleConns: 8, StaleConns: 1}
	})
	p.WatchCache(func() metrics.CacheStats { return metrics.CacheStats{Hits: 40, Misses: 10, Stale: 3, Entries: 12} })
	p.WatchReadiness([]metrics.Probe{
		{Name: "database", Ping: func(context.Context) error { return nil }},
		{Name: "tokens", Ping: func(context.Context) error { return errors.New("dial tcp: connection refused") }},
	}, time.Second, nil)
}

// TestWatchedSources: each scrape-time source is read at the scrape and
// exported under its metric names, with the pool's in-use connections
// computed from the total and the idle ones.
func TestWatchedSources(t *testing.T) {
	t.Parallel()
	p := metrics.New("test")
	for _, l := range strings.Split(scrape(t, p), "\n") {
		for _, prefix := range []string{"tollgate_db_", "tollgate_redis_", "tollgate_cache_", "tollgate_ready", "tollgate_dependency_"} {
			if strings.HasPrefix(l, prefix) {
				t.Errorf("scrape before any Watch… has %q, want nothing from an unwired source", l)
			}
		}
	}
	watchAll(p)
	body := scrape(t, p)
	got := lines(body)
	for _, want := range []string{
		`tollgate_db_pool_connections{state="in_use"} 4`,
		`tollgate_db_pool_connections{state="idle"} 3`,
		`tollgate_db_pool_max_connections 25`,
		`tollgate_db_pool_waits_total 9`,
		`tollgate_db_pool_wait_seconds_total 1.5`,
		`tollgate_redis_pool_connections{state="in_use"} 2`,
		`tollgate_redis_pool_connections{state="idle"} 8`,
		`tollgate_redis_pool_hits_total 100`,
		`tollgate_redis_pool_misses_total 5`,
		`tollgate_redis_pool_timeouts_total 2`,
		`tollgate_redis_pool_waits_total 6`,
		`tollgate_redis_pool_wait_seconds_total 0.25`,
		`tollgate_redis_pool_stale_connections_total 1`,
		`tollgate_cache_lookups_total{result="hit"} 40`,
		`tollgate_cache_lookups_total{result="miss"} 10`,
		`tollgate_cache_lookups_total{result="stale"} 3`,
		`tollgate_cache_entries 12`,
		`tollgate_dependency_up{dependency="database"} 1`,
		`tollgate_dependency_up{dependency="tokens"} 0`,
		`tollgate_ready 0`,
	} {
		if !got[want] {
			t.Errorf("GET /metrics has no line %q; got:\n%s", want, grep(body, "tollgate_"))
		}
	}
	if strings.Contains(body, "connection refused") {
		t.Error("GET /metrics carries a probe's error text, want only its verdict")
	}
}

// TestReadinessFollowsProbesAndDraining: ready is 1 only when every probe
// answers and the instance is not draining.
func TestReadinessFollowsProbesAndDraining(t *testing.T) {
	t.Parallel()
	ok := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("down") }
	for _, tc := range []struct {
		name     string
		ping     func(context.Context) error
		draining bool
		want     string
	}{
		{"all up", ok, false, "tollgate_ready 1"},
		{"a dependency down", down, false, "tollgate_ready 0"},
		{"draining", ok, true, "tollgate_ready 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := metrics.New("test")
			p.WatchReadiness([]metrics.Probe{{Name: "database", Ping: ok}, {Name: "tokens", Ping: tc.ping}},
				time.Second, func() bool { return tc.draining })
			if body := scrape(t, p); !lines(body)[tc.want] {
				t.Errorf("scrape has no line %q; got:\n%s", tc.want, grep(body, "tollgate_ready"))
			}
		})
	}
}

// TestKnownSeriesStartAtZero: declared rate classes and brute-force
// dimensions are exported at 0 before any event.
func TestKnownSeriesStartAtZero(t *testing.T) {
	t.Parallel()
	p := metrics.New("test")
	p.KnownRateClasses("default", "partner")
	p.KnownBruteForce("client", "id")
	body := scrape(t, p)
	got := lines(body)
	for _, want := range []string{
		`tollgate_ratelimit_decisions_total{class="default",decision="allowed"} 0`,
		`tollgate_ratelimit_decisions_total{class="default",decision="limited"} 0`,
		`tollgate_ratelimit_decisions_total{class="partner",decision="limited"} 0`,
		`tollgate_bruteforce_blocks_total{dimension="id",kind="client"} 0`,
	} {
		if !got[want] {
			t.Errorf("GET /metrics has no line %q; got:\n%s", want, grep(body, "tollgate_"))
		}
	}
}
