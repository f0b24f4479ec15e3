//go:build faults

// The fault-injection suite: real `tollgate serve` processes on a private
// PostgreSQL and private Redis servers that the suite stops, restarts and
// fills while a load runs. Run it with `make test-faults`.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/fleet"
)

// faultEnv is what every scenario shares: the binary and a private
// PostgreSQL server.
type faultEnv struct {
	bin string
	pg  *fleet.Postgres
}

// TestFaults runs the scenarios in turn on one private PostgreSQL server;
// each has a database, a Redis server and three instances of its own.
func TestFaults(t *testing.T) {
	ctx := t.Context()
	start := time.Now()
	bin, err := fleet.Build(ctx, "../..", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pg, err := fleet.StartPostgres(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pg.Close(); err != nil {
			t.Errorf("stop the private PostgreSQL: %v", err)
		}
	})
	t.Logf("built the binary and started PostgreSQL on port %d in %v", pg.Port, time.Since(start).Round(time.Millisecond))
	e := &faultEnv{bin: bin, pg: pg}
	for _, s := range []struct {
		name string
		run  func(t *testing.T, e *faultEnv)
	}{
		{"redis_outage", faultRedisOutage},
		{"postgres_outage", faultPostgresOutage},
	} {
		if !t.Run(s.name, func(t *testing.T) { s.run(t, e) }) && testing.Verbose() {
			t.Logf("%s failed", s.name)
		}
	}
}

// cluster is one scenario's deployment: three instances behind a proxy on
// a database and a Redis server of the scenario's own.
type cluster struct {
	t         *testing.T
	e         *faultEnv
	db        string
	redis     *fleet.Redis
	env       fleet.Env
	instances []*fleet.Instance
	proxy     *fleet.Proxy
	creds     fleet.Credentials
	seed      string // a token issued at start
}

// newCluster starts a scenario's deployment; redisArgs configure its
// Redis server.
func newCluster(t *testing.T, e *faultEnv, env fleet.Env, redisArgs ...string) *cluster {
	t.Helper()
	ctx := t.Context()
	c := &cluster{t: t, e: e, db: "faults_" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "_"))}
	if err := e.pg.CreateDatabase(ctx, c.db); err != nil {
		t.Fatal(err)
	}
	r, err := fleet.StartRedis(ctx, redisArgs...)
	if err != nil {
		t.Fatal(err)
	}
	c.redis = r
	t.Cleanup(func() { _ = r.Close() })
	dataDir := t.TempDir()
	c.env = fleet.Env{
		"TOLLGATE_DATA_DIR":     dataDir,
		"TOLLGATE_DATABASE_URL": e.pg.URL(c.db),
		"TOLLGATE_REDIS_URL":    r.URL(),
		"TOLLGATE_TOKEN_SECRET": "fault-suite-token-secret-0123456789abcdef",
		"TOLLGATE_PEPPER":       "fault-suite-pepper-0123456789abcdef-xyz",
		// The load comes from one client and one key: limits far above it,
		// so that the limiter still runs (and writes to Redis) on every call.
		"TOLLGATE_TOKEN_RATE_LIMIT": "100000",
		"TOLLGATE_RATE_CLASSES":     "default=100000",
		"TOLLGATE_LOG_LEVEL":        "info",
	}.With(flatten(env)...)
	b, err := fleet.Prepare(ctx, e.bin, c.env)
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for i := range 3 {
		in, err := fleet.NewInstance(fmt.Sprintf("tollgate-%d", i+1), e.bin, c.env, dataDir)
		if err != nil {
			t.Fatal(err)
		}
		if err := in.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := in.Stop(20 * time.Second); err != nil {
				t.Errorf("%s: %v", in.Name, err)
			}
			if t.Failed() {
				t.Logf("%s log tail:\n%s", in.Name, in.LogTail(3000))
			}
		})
		c.instances = append(c.instances, in)
		addrs = append(addrs, in.Public)
	}
	p, err := fleet.NewProxy(addrs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	c.proxy = p
	if c.creds, err = fleet.NewCredentials(ctx, p.URL(), b); err != nil {
		t.Fatal(err)
	}
	c.seed = c.token()
	return c
}

func flatten(env fleet.Env) []string {
	var out []string
	for k, v := range env {
		out = append(out, k, v)
	}
	return out
}

// token issues a token through the proxy.
func (c *cluster) token() string {
	c.t.Helper()
	l := fleet.StartLoad(fleet.LoadOptions{Target: c.proxy.URL(), Creds: c.creds, Workers: 1, Mix: []fleet.Kind{fleet.KindToken},
		KeepTokens: true}, "")
	deadline := time.Now().Add(10 * time.Second)
	for len(l.Tokens()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	l.Stop()
	toks := l.Tokens()
	if len(toks) == 0 {
		c.t.Fatal("no token issued")
	}
	return toks[0]
}

// load starts the scenario load: six workers, 150 requests a second in all,
// every answer recorded.
func (c *cluster) load() *fleet.Load {
	return fleet.StartLoad(fleet.LoadOptions{Target: c.proxy.URL(), Creds: c.creds, Workers: 6, Rate: 150,
		Timeout: 10 * time.Second, Record: true, KeepTokens: true}, c.seed)
}

// vitals are the resource figures of the whole deployment, read while no
// request is in flight and no client connection is open.
type vitals struct {
	instances    []fleet.Vitals
	redisClients int
	pgSessions   int64
}

func (v vitals) String() string {
	var b strings.Builder
	for i, in := range v.instances {
		fmt.Fprintf(&b, "instance %d: %v; ", i+1, in)
	}
	fmt.Fprintf(&b, "Redis connections %d, PostgreSQL sessions %d", v.redisClients, v.pgSessions)
	return b.String()
}

// quiet waits for the connections the load left to close and reads the
// figures.
func (c *cluster) vitals() vitals {
	c.t.Helper()
	ctx := c.t.Context()
	c.proxy.CloseIdle()
	time.Sleep(500 * time.Millisecond)
	var v vitals
	for _, in := range c.instances {
		iv, err := in.Vitals(ctx)
		if err != nil {
			c.t.Fatalf("%s vitals: %v", in.Name, err)
		}
		v.instances = append(v.instances, iv)
	}
	var err error
	if v.redisClients, err = c.redis.Clients(ctx); err != nil {
		c.t.Fatalf("redis CLIENT LIST: %v", err)
	}
	if v.pgSessions, err = fleet.Sessions(ctx, c.e.pg.URL("postgres"), c.db); err != nil {
		c.t.Fatalf("pg_stat_activity: %v", err)
	}
	return v
}

// noLeak compares the figures before and after a fault: the goroutines of
// every instance are back to within a few of what they were, and the
// connections to Redis and PostgreSQL within their pools' bounds.
func (c *cluster) noLeak(before, after vitals) {
	c.t.Helper()
	c.t.Logf("before: %v", before)
	c.t.Logf("after:  %v", after)
	for i := range before.instances {
		if b, a := before.instances[i].Goroutines, after.instances[i].Goroutines; a > b+5 {
			c.t.Errorf("instance %d: %d goroutines after the fault, %d before: a leak", i+1, a, b)
		}
		if b, a := before.instances[i].FDs, after.instances[i].FDs; a > b+10 {
			c.t.Errorf("instance %d: %d open files after the fault, %d before: a leak", i+1, a, b)
		}
	}
	// Each instance holds at most one Redis connection per concurrent
	// request (six workers) plus the invalidation subscription and
	// background work; the idle pool keeps what the peak needed.
	if limit := len(c.instances) * (6 + 3); after.redisClients > max(before.redisClients, limit) {
		c.t.Errorf("%d Redis connections after the fault (%d before, bound %d): a leak", after.redisClients, before.redisClients, limit)
	}
	// database.max_idle_conns (10) per instance stay open when idle.
	if limit := int64(len(c.instances) * 10); after.pgSessions > max(before.pgSessions, limit) {
		c.t.Errorf("%d PostgreSQL sessions after the fault (%d before, bound %d): a leak", after.pgSessions, before.pgSessions, limit)
	}
}

// window is a stretch of the run: requests that started in it.
type window struct{ from, to time.Time }

func (w window) has(r fleet.Result) bool { return !r.Start.Before(w.from) && r.Start.Before(w.to) }

// answersBounded fails on a request that got no answer, took longer than
// bound, or got an answer other than a success or a 503.
func answersBounded(t *testing.T, results []fleet.Result, bound time.Duration) {
	t.Helper()
	bad := 0
	for _, r := range results {
		switch {
		case r.Status == 0:
			t.Errorf("no answer: %v", r)
		case r.Latency > bound:
			t.Errorf("answer after %v, want within %v: %v", r.Latency.Round(time.Millisecond), bound, r)
		case r.Status == 503 || r.OK():
			continue
		default:
			t.Errorf("want a success or 503: %v", r)
		}
		if bad++; bad == 10 {
			t.Fatal("too many failures")
		}
	}
}

// unavailable checks r is the 503 of a backend outage in its endpoint's
// format: an RFC 6749 error on /oauth/* and the check endpoint, an RFC 9457
// problem on /api/v1.
func unavailable(r fleet.Result) bool {
	if r.Status != 503 {
		return false
	}
	switch r.Kind {
	case fleet.KindAPIRead, fleet.KindAPIWrite:
		return r.Code == "problem"
	}
	return r.Code == "temporarily_unavailable" && strings.HasPrefix(r.ContentType, "application/json")
}

// recovery answers how long after up the last failed request started
// (0 when none failed after up), and fails if any failed later than bound.
func recovery(t *testing.T, results []fleet.Result, up time.Time, bound time.Duration) time.Duration {
	t.Helper()
	var last time.Duration
	for _, r := range results {
		if r.Start.Before(up) || r.OK() {
			continue
		}
		if d := r.Start.Sub(up); d > last {
			last = d
		}
		if r.Start.Sub(up) > bound {
			t.Errorf("still failing %v after the backend came back: %v", r.Start.Sub(up).Round(time.Millisecond), r)
		}
	}
	return last
}

func countKinds(results []fleet.Result, keep func(fleet.Result) bool) map[fleet.Kind]int {
	out := map[fleet.Kind]int{}
	for _, r := range results {
		if keep(r) {
			out[r.Kind]++
		}
	}
	return out
}

// samePIDs checks that no instance was restarted.
func (c *cluster) samePIDs(pids []int) {
	c.t.Helper()
	for i, in := range c.instances {
		select {
		case <-in.Done():
			c.t.Errorf("%s exited: %v", in.Name, in.ExitErr())
		default:
		}
		if in.PID() != pids[i] {
			c.t.Errorf("%s was restarted", in.Name)
		}
	}
}

func (c *cluster) pids() []int {
	var out []int
	for _, in := range c.instances {
		out = append(out, in.PID())
	}
	return out
}

func (c *cluster) report(stats map[fleet.Kind]*fleet.KindStats) {
	var b strings.Builder
	fleet.Report(&b, stats)
	c.t.Logf("load:\n%s", b.String())
}

// faultRedisOutage stops Redis under load for five seconds, then starts it
// again. During the outage every request needing Redis (all of them:
// tokens, the limiter, the management caller's token) answers 503
// temporarily_unavailable quickly; afterwards everything recovers without
// a restart, and no goroutine or connection is left behind.
func faultRedisOutage(t *testing.T, e *faultEnv) {
	// Tokens live only in Redis: without persistence a restart loses every
	// one of them. Production's setting, as docs/operations.md asks.
	c := newCluster(t, e, nil, "--appendonly", "yes", "--appendfsync", "everysec")
	pids := c.pids()
	warm := c.load()
	time.Sleep(3 * time.Second)
	warm.Stop()
	before := c.vitals()

	l := c.load()
	time.Sleep(2 * time.Second)
	if err := c.redis.Stop(); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	time.Sleep(5 * time.Second)
	restart := time.Now()
	if err := c.redis.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	time.Sleep(8 * time.Second)
	l.Stop()
	results := l.Results()
	c.report(l.Stats())

	answersBounded(t, results, 2*time.Second)
	outage := window{down, restart}
	during := 0
	for _, r := range results {
		if !outage.has(r) {
			continue
		}
		during++
		if !unavailable(r) {
			t.Errorf("during the Redis outage: %v, want 503 temporarily_unavailable", r)
		}
	}
	if during < 100 {
		t.Errorf("only %d requests during the outage", during)
	}
	t.Logf("during the outage: %v", countKinds(results, outage.has))
	rec := recovery(t, results, up, 3*time.Second)
	t.Logf("Redis down %v; the last failure started %v after it answered PING again", restart.Sub(down).Round(time.Millisecond), rec.Round(time.Millisecond))
	c.samePIDs(pids)
	c.noLeak(before, c.vitals())
}

// faultPostgresOutage crashes PostgreSQL (pg_ctl stop -m immediate) under
// load for ten seconds, then starts it again. Management calls answer 503
// problems and write nothing; issuance, introspection and checks of the
// credentials in use are served from the in-process cache throughout;
// afterwards everything recovers without a restart, and no goroutine or
// connection is left behind.
func faultPostgresOutage(t *testing.T, e *faultEnv) {
	ctx := t.Context()
	c := newCluster(t, e, nil)
	pids := c.pids()
	warm := c.load()
	time.Sleep(3 * time.Second)
	warm.Stop()
	before := c.vitals()

	l := c.load()
	time.Sleep(2 * time.Second)
	stopping := time.Now()
	if err := e.pg.Stop(ctx, "immediate"); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	// Writes during the outage: each must be refused, and leave nothing.
	var refused []fleet.Result
	for i := range 5 {
		refused = append(refused,
			fleet.Send(ctx, fleet.KindAPIWrite, http.MethodPost, c.proxy.URL()+"/api/v1/keys", c.creds.AdminToken, "application/json",
				fmt.Sprintf(`{"name":"outage key %d","access_rights":"events"}`, i)),
			fleet.Send(ctx, fleet.KindAPIWrite, http.MethodPost, c.proxy.URL()+"/api/v1/clients", c.creds.AdminToken, "application/json",
				fmt.Sprintf(`{"name":"outage client %d"}`, i)))
		time.Sleep(time.Second)
	}
	time.Sleep(time.Until(down.Add(10 * time.Second)))
	restart := time.Now()
	if err := e.pg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	time.Sleep(8 * time.Second)
	l.Stop()
	results := l.Results()
	c.report(l.Stats())

	for _, r := range refused {
		if r.Status != http.StatusServiceUnavailable || r.Code != "problem" {
			t.Errorf("a management write during the outage: %v, want a 503 problem", r)
		}
	}
	answersBounded(t, results, 3*time.Second)
	// Ten seconds is twice the cache's TTL: the credentials in use are
	// served past it (cacheMaxStale), the management API needs the
	// database.
	outage := window{down, restart}
	for _, r := range results {
		if !outage.has(r) {
			continue
		}
		switch r.Kind {
		case fleet.KindAPIRead, fleet.KindAPIWrite:
			if !unavailable(r) {
				t.Errorf("during the PostgreSQL outage: %v, want a 503 problem", r)
			}
		default:
			if !r.OK() {
				t.Errorf("during the PostgreSQL outage: %v, want it served from the cache", r)
			}
		}
	}
	t.Logf("during the outage, successes: %v", countKinds(results, func(r fleet.Result) bool { return outage.has(r) && r.OK() }))
	t.Logf("during the outage, 503s: %v", countKinds(results, func(r fleet.Result) bool { return outage.has(r) && !r.OK() }))
	rec := recovery(t, results, up, 3*time.Second)
	t.Logf("PostgreSQL down %v; the last failure started %v after it accepted connections again",
		restart.Sub(down).Round(time.Millisecond), rec.Round(time.Millisecond))

	// Nothing half-written: no row and no audit event of a refused write.
	dbURL := e.pg.URL(c.db)
	if n, err := fleet.QueryInt(ctx, dbURL, "SELECT count(*) FROM clients WHERE name LIKE 'outage %'"); err != nil || n != 0 {
		t.Errorf("%d credentials of refused writes in the database (%v), want none", n, err)
	}
	if n, err := fleet.QueryInt(ctx, dbURL, "SELECT count(*) FROM audit_events WHERE detail LIKE '%outage %'"); err != nil || n != 0 {
		t.Errorf("%d audit events of refused writes (%v), want none", n, err)
	}
	// The load's writes are sequential: the description is the last one
	// answered 200, or one that was in flight when PostgreSQL went down.
	var last string
	possible := map[string]bool{}
	for _, r := range results {
		if r.Kind != fleet.KindAPIWrite {
			continue
		}
		if r.OK() {
			last = r.Written
			possible = map[string]bool{last: true}
		} else if r.Start.Before(down) && r.Start.Add(r.Latency).After(stopping) {
			possible[r.Written] = true
		}
	}
	var got struct {
		Description string `json:"description"`
	}
	if err := getJSON(ctx, c.proxy.URL()+"/api/v1/clients/"+strconv.FormatInt(c.creds.TargetID, 10), c.creds.AdminToken, &got); err != nil {
		t.Fatal(err)
	}
	if !possible[got.Description] {
		t.Errorf("the written client's description is %q; the last write answered 200 wrote %q", got.Description, last)
	}
	c.samePIDs(pids)
	c.noLeak(before, c.vitals())
}

func getJSON(ctx context.Context, url, bearer string, out any) error {
	r := fleet.Send(ctx, fleet.KindAPIRead, http.MethodGet, url, bearer, "", "")
	if r.Status != http.StatusOK {
		return fmt.Errorf("GET %s: %v", url, r)
	}
	return json.Unmarshal([]byte(r.Raw), out)
}
