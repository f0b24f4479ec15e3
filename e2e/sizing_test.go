package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tollgate/tollgate/storage"
)

// TestPostgresConnectionsUnderLoad measures what one instance takes of
// PostgreSQL's max_connections while it serves token and introspection
// requests from 32 concurrent callers, with the pool at its default limit:
// the connections pg_stat_activity shows for the instance's database,
// sampled every 5 ms. First for 3 s with a warm client cache (the same
// client again and again), then while 3,000 clients each ask for their
// first token (every request a cache miss). A measurement for the sizing
// notes (docs/operations.md), run on request: TOLLGATE_TEST_SIZING=1.
func TestPostgresConnectionsUnderLoad(t *testing.T) {
	if os.Getenv("TOLLGATE_TEST_SIZING") == "" {
		t.Skip("set TOLLGATE_TEST_SIZING=1 to measure PostgreSQL connections under load")
	}
	f := newFixture(t, "postgres+redis")
	conn, err := pgx.Connect(t.Context(), f.cfg.Database.URL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	const callers = 32

	// load runs next from callers goroutines until it answers false or ctx
	// ends, sampling the connections meanwhile.
	load := func(name string, ctx context.Context, next func(ctx context.Context) (requests int, ok, more bool)) {
		t.Helper()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var (
			requests, failures atomic.Int64
			wg                 sync.WaitGroup
		)
		start := time.Now()
		for range callers {
			wg.Go(func() {
				for ctx.Err() == nil {
					n, ok, more := next(ctx)
					if !more || ctx.Err() != nil {
						return
					}
					requests.Add(int64(n))
					if !ok {
						failures.Add(1)
					}
				}
			})
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		var peak, total, samples int
	sample:
		for {
			var n int
			err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&n)
			if err != nil {
				t.Fatalf("pg_stat_activity: %v", err)
			}
			peak, total, samples = max(peak, n), total+n, samples+1
			select {
			case <-done:
				break sample
			case <-time.After(5 * time.Millisecond):
			}
		}
		took := time.Since(start)
		if failures.Load() > 0 {
			t.Errorf("%s: %d failed requests", name, failures.Load())
		}
		t.Logf("%s: %d requests in %s (%.0f/s) from %d callers; PostgreSQL connections of the instance: peak %d, mean %.1f (%d samples)",
			name, requests.Load(), took.Round(time.Millisecond), float64(requests.Load())/took.Seconds(), callers,
			peak, float64(total)/float64(samples), samples)
	}

	client := f.srv.Client()
	post := func(ctx context.Context, path, body string, id int64) (string, bool) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", formCT)
		req.Header.Set("Authorization", basic(id, f.secretOf[id]))
		res, err := client.Do(req)
		if err != nil {
			return "", false
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK && ctx.Err() == nil {
			t.Logf("%s: %d %s", path, res.StatusCode, b)
		}
		return string(b), res.StatusCode == http.StatusOK
	}
	tokenAndIntrospect := func(ctx context.Context, id int64) (int, bool) {
		body, ok := post(ctx, "/oauth/token", form("grant_type", "client_credentials"), id)
		if !ok {
			return 1, false
		}
		const field = `"access_token":"`
		tok := body[strings.Index(body, field)+len(field):]
		tok = tok[:strings.IndexByte(tok, '"')]
		_, ok = post(ctx, "/oauth/introspect", form("token", tok), f.rs.ID)
		return 2, ok
	}

	f.active(f.tokenCC(f.cc)) // warms the cache
	warm, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	load("warm cache", warm, func(ctx context.Context) (int, bool, bool) {
		n, ok := tokenAndIntrospect(ctx, f.cc.ID)
		return n, ok, true
	})

	const clients = 3000
	ids := make([]int64, clients)
	for i := range ids {
		ids[i] = f.client(storage.Client{AccountID: f.root.ID, Name: "first use " + strconv.Itoa(i),
			GrantTypes: []string{"client_credentials"}}).ID
	}
	var next atomic.Int64
	load("first use of 3000 clients", t.Context(), func(ctx context.Context) (int, bool, bool) {
		i := next.Add(1) - 1
		if i >= clients {
			return 0, true, false
		}
		n, ok := tokenAndIntrospect(ctx, ids[i])
		return n, ok, true
	})
}
