package ratelimit_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/pkg/ratelimit"
	"github.com/tollgate/tollgate/pkg/ratelimit/memory"
	"github.com/tollgate/tollgate/pkg/ratelimit/redis"
)

// TestFailOpenPassesDecisions: a working limiter's decisions go through
// unchanged, refusals included, and nothing is logged.
func TestFailOpenPassesDecisions(t *testing.T) {
	var logs bytes.Buffer
	l := ratelimit.FailOpen(memory.New(memory.Options{}), slog.New(slog.NewJSONHandler(&logs, nil)))
	limit := ratelimit.Limit{Rate: 1, Burst: 2}
	for i, want := range []bool{true, true, false} {
		res, err := l.Allow(t.Context(), "k", limit)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if res.Allowed != want || res.FailedOpen {
			t.Errorf("request %d: allowed %v, failed open %v; want allowed %v, not failed open", i, res.Allowed, res.FailedOpen, want)
		}
	}
	if logs.Len() != 0 {
		t.Errorf("logged %q, want nothing", logs.String())
	}
}

// TestFailOpenOnOutage: a limiter whose Redis cannot be reached lets every
// request through, with the whole burst remaining, and logs each failure.
func TestFailOpenOnOutage(t *testing.T) {
	// Nothing listens on port 1: every call fails at once.
	client := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", DialTimeout: time.Second, MaxRetries: -1})
	t.Cleanup(func() { client.Close() })
	backend := redis.New(client, redis.Options{KeyPrefix: "failopen-test:"})
	limit := ratelimit.Limit{Rate: 1, Burst: 5}
	if _, err := backend.Allow(t.Context(), "k", limit); err == nil {
		t.Fatal("the unreachable backend decided; the test proves nothing")
	}

	var logs bytes.Buffer
	l := ratelimit.FailOpen(backend, slog.New(slog.NewJSONHandler(&logs, nil)))
	for i := range 3 {
		res, err := l.Allow(t.Context(), "k", limit)
		if err != nil {
			t.Fatalf("request %d: %v, want no error", i, err)
		}
		if want := (ratelimit.Result{Allowed: true, Limit: limit, Remaining: 5, FailedOpen: true}); res != want {
			t.Errorf("request %d: %+v, want %+v", i, res, want)
		}
	}
	if got := strings.Count(logs.String(), `"msg":"rate limiter unavailable; failing open"`); got != 3 {
		t.Errorf("logged %d failures, want 3:\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), `"level":"WARN"`) {
		t.Errorf("failures not logged at level Warn:\n%s", logs.String())
	}
}
