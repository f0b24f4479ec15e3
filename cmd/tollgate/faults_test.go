//go:build faults

// The fault-injection suite: real `tollgate serve` processes on a private
// PostgreSQL and private Redis servers that the suite stops, restarts and
// fills while a load runs. Run it with `make test-faults`.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/internal/fleet"
	"github.com/tollgate/tollgate/internal/leakcheck"
	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/pkg/token"
)

// shutdownDelay is the instances' http.shutdown_delay: ten times the
// proxy's readiness interval.
const shutdownDelay = time.Second

// sigtermPatience is the SIGTERM scenario's write, read and shutdown
// timeout: long enough that only a server which does not wait for its
// requests fails it, however slowly a loaded machine hashes.
const sigtermPatience = time.Minute

// patientBackends are the database and Redis timeouts of the scenarios that
// inject no backend fault (SIGTERM, rolling restart): there, every request
// must succeed, and a query that a starved machine (load average 30 on two
// cores) runs past the production 2 s, or a Redis reply past 500 ms, is
// not what they test — one api_read answered 503 that way before any
// restart began. The outage scenarios keep the production timeouts, which
// are part of what they test.
var patientBackends = fleet.Env{"TOLLGATE_DATABASE_QUERY_TIMEOUT": "30s",
	"TOLLGATE_REDIS_READ_TIMEOUT": "5s", "TOLLGATE_REDIS_WRITE_TIMEOUT": "5s"}

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
	// With the race detector: a race on a reconnection path fails the
	// instance's exit status.
	bin, err := fleet.Build(ctx, "../..", t.TempDir(), "-race")
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
		{"sigterm", faultSIGTERM},
		{"rolling_restart", faultRollingRestart},
		{"redis_full", faultRedisFull},
	} {
		t.Run(s.name, func(t *testing.T) { s.run(t, e) })
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
	boot      fleet.Bootstrap
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
		"TOLLGATE_DATA_DIR":           dataDir,
		"TOLLGATE_DATABASE_URL":       e.pg.URL(c.db),
		"TOLLGATE_REDIS_URL":          r.URL(),
		"TOLLGATE_TOKEN_SECRET":       "fault-suite-token-secret-0123456789abcdef",
		"TOLLGATE_PEPPER":             "fault-suite-pepper-0123456789abcdef-xyz",
		"TOLLGATE_KEY_ENCRYPTION_KEY": "4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b",
		// The load comes from one client and one key: limits far above it,
		// so that the limiter still runs (and writes to Redis) on every call.
		"TOLLGATE_TOKEN_RATE_LIMIT": "100000",
		"TOLLGATE_RATE_CLASSES":     "default=100000",
		"TOLLGATE_LOG_LEVEL":        "info",
		// On SIGTERM, a second in which the proxy sees /readyz fail.
		"TOLLGATE_HTTP_SHUTDOWN_DELAY": shutdownDelay.String(),
	}.With(flatten(env)...)
	b, err := fleet.Prepare(ctx, e.bin, c.env)
	if err != nil {
		t.Fatal(err)
	}
	c.boot = b
	// Runs once every instance has stopped: faults are where causes get
	// logged, and no secret may be among them.
	t.Cleanup(c.checkLogs)
	var backends []fleet.Backend
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
		backends = append(backends, fleet.Backend{Public: in.Public, Ops: in.Ops})
	}
	p, err := fleet.NewProxy(backends)
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

// checkLogs fails the test if a secret, password, token or key of the
// scenario, or the token secret and pepper the suite set, appears in an
// instance's log, in any encoding leakcheck knows.
func (c *cluster) checkLogs() {
	var m leakcheck.Matcher
	m.Credential("the client secret", strconv.FormatInt(c.boot.ClientID, 10), c.boot.ClientSecret)
	m.Secret("the admin password", c.boot.Password)
	m.Secret("the API key", c.creds.APIKey)
	m.Secret("the admin token", c.creds.AdminToken)
	m.Secret("the token secret", c.env["TOLLGATE_TOKEN_SECRET"])
	m.Secret("the pepper", c.env["TOLLGATE_PEPPER"])
	m.Marker("a token", token.AccessPrefix)
	m.Marker("a key", apikey.Prefix)
	for _, in := range c.instances {
		for _, what := range m.Find(in.Log()) {
			c.t.Errorf("%s logged %s", in.Name, what)
		}
	}
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
	if r.Status != 503 || r.RetryAfter == "" {
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
	// A client nobody has used: no instance has it in its cache.
	var cold struct {
		ID     int64  `json:"id"`
		Secret string `json:"client_secret"`
	}
	if r := fleet.Send(ctx, fleet.KindAPIWrite, http.MethodPost, c.proxy.URL()+"/api/v1/clients", c.creds.AdminToken,
		"application/json", `{"name":"cold client"}`); r.Status != http.StatusCreated || json.Unmarshal([]byte(r.Raw), &cold) != nil {
		t.Fatalf("create a client: %v", r)
	}
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
	// The next scenarios need it, whatever happens to this one (a
	// second start fails harmlessly).
	t.Cleanup(func() { _ = e.pg.Start(context.Background()) })
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
	// What the cache cannot answer: a user looked up by name (the
	// password grant), and a client no instance has read.
	userBody, _ := json.Marshal(map[string]any{"grant_type": "eskimi_dsp", "username": c.boot.Username, "password": c.boot.Password,
		"client_id": c.boot.ClientID, "client_secret": c.boot.ClientSecret})
	uncached := []fleet.Result{
		fleet.Send(ctx, fleet.KindToken, http.MethodPost, c.proxy.URL()+"/oauth/token", "", "application/json", string(userBody)),
		fleet.Send(ctx, fleet.KindToken, http.MethodPost, c.proxy.URL()+"/oauth/token", "", "application/json",
			fmt.Sprintf(`{"grant_type":"client_credentials","client_id":%d,"client_secret":%q}`, cold.ID, cold.Secret)),
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
		if !unavailable(r) {
			t.Errorf("a management write during the outage: %v, want a 503 problem", r)
		}
	}
	for _, r := range uncached {
		if !unavailable(r) {
			t.Errorf("a request the cache cannot answer, during the outage: %v, want 503 temporarily_unavailable", r)
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

// allOK fails on every result that is not a success.
func allOK(t *testing.T, results []fleet.Result) {
	t.Helper()
	bad := 0
	for _, r := range results {
		if r.OK() {
			continue
		}
		t.Errorf("failed: %v", r)
		if bad++; bad == 10 {
			t.Fatal("too many failures")
		}
	}
}

// faultSIGTERM stops one of three instances with SIGTERM under load. For
// http.shutdown_delay it goes on serving while its /readyz fails, and the
// proxy moves the load to the other two; then its listeners close, and the
// requests it is still working on finish (slow ones, read by it before the
// signal and completed only after the listeners closed, are in flight then);
// it exits cleanly; no request fails.
func faultSIGTERM(t *testing.T, e *faultEnv) {
	// Concurrent logins of one user from one address are held back by the
	// brute-force protection (each reserves an attempt): off here.
	//
	// The parked requests' write deadline (http.write_timeout) starts when
	// their headers are read, before the signal, and a hash each on a loaded
	// machine can take seconds: with the default 10 s, the last answers were
	// written after their deadline and the client saw the connection close
	// (a 1.5 s write timeout reproduces it at once). That is the write
	// timeout at work, not the drain, so here it, the read timeout and the
	// shutdown timeout are a minute: what this scenario checks is that
	// Shutdown waits for every request it has read and answers it.
	c := newCluster(t, e, patientBackends.With("TOLLGATE_BRUTEFORCE_ENABLED", "false",
		"TOLLGATE_HTTP_WRITE_TIMEOUT", sigtermPatience.String(), "TOLLGATE_HTTP_READ_TIMEOUT", sigtermPatience.String(),
		"TOLLGATE_HTTP_SHUTDOWN_TIMEOUT", sigtermPatience.String()))
	l := c.load()
	time.Sleep(2 * time.Second)

	victim := c.instances[1]
	// Sixteen user-token requests (a password hash each) are under way when
	// the listeners close: their headers and half their bodies reach the
	// victim before the signal, so the server has read them (its
	// connections are active, not waiting in the accept queue, where a
	// closing listener would drop them whatever the server does), and the
	// rest of each body is sent only once the listeners are closed. Shutdown
	// must wait for every one and answer it.
	body, _ := json.Marshal(map[string]any{"grant_type": "eskimi_dsp", "username": c.boot.Username, "password": c.boot.Password,
		"client_id": c.boot.ClientID, "client_secret": c.boot.ClientSecret})
	half := len(body) / 2
	type parked struct {
		conn  net.Conn
		start time.Time
	}
	slow := make([]parked, 16)
	for i := range slow {
		conn, err := net.DialTimeout("tcp", victim.Public, 5*time.Second)
		if err != nil {
			t.Fatalf("slow request %d: %v", i, err)
		}
		defer conn.Close()
		head := fmt.Sprintf("POST /oauth/token HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", victim.Public, len(body))
		if _, err := conn.Write(append([]byte(head), body[:half]...)); err != nil {
			t.Fatalf("slow request %d: %v", i, err)
		}
		slow[i] = parked{conn, time.Now()}
	}

	signalled := time.Now()
	if err := victim.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The listeners close after the drain period: wait until a new
	// connection is refused (bounded), then complete the parked requests.
	closed := false
	for deadline := signalled.Add(shutdownDelay + 10*time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		conn, err := net.DialTimeout("tcp", victim.Public, time.Second)
		if err != nil {
			closed = true
			break
		}
		_ = conn.Close()
	}
	if !closed {
		t.Fatalf("%s still accepting connections %v after SIGTERM", victim.Name, shutdownDelay+10*time.Second)
	}
	answered := make(chan error, len(slow))
	var lastAnswer atomic.Int64 // since the signal, of the slowest parked request
	for i, p := range slow {
		go func() {
			if _, err := p.conn.Write(body[half:]); err != nil {
				answered <- fmt.Errorf("slow request %d: write the rest after the listeners closed: %w", i, err)
				return
			}
			_ = p.conn.SetReadDeadline(time.Now().Add(sigtermPatience + 10*time.Second))
			res, err := http.ReadResponse(bufio.NewReader(p.conn), nil)
			if err != nil {
				answered <- fmt.Errorf("slow request %d, sent %v before the signal: no answer: %w", i, signalled.Sub(p.start).Round(time.Millisecond), err)
				return
			}
			_ = res.Body.Close()
			if res.StatusCode != http.StatusOK {
				answered <- fmt.Errorf("slow request %d: status %d, want 200", i, res.StatusCode)
				return
			}
			took := int64(time.Since(signalled))
			for last := lastAnswer.Load(); took > last && !lastAnswer.CompareAndSwap(last, took); last = lastAnswer.Load() {
			}
			answered <- nil
		}()
	}
	select {
	case <-victim.Done():
	case <-time.After(sigtermPatience + 10*time.Second):
		t.Fatalf("%s still running %v after SIGTERM", victim.Name, sigtermPatience+10*time.Second)
	}
	exited := time.Since(signalled)
	for _, line := range strings.Split(victim.LogTail(100000), "\n") {
		if strings.Contains(line, `"msg":"draining`) || strings.Contains(line, `"msg":"shutting down"`) || strings.Contains(line, `"msg":"stopped"`) {
			t.Log(line)
		}
	}
	if err := victim.ExitErr(); err != nil {
		t.Errorf("%s exit after SIGTERM: %v, want a clean exit", victim.Name, err)
	}
	inFlight := 0
	for range slow {
		if err := <-answered; err != nil {
			t.Errorf("a request under way when the listeners closed: %v, want it answered", err)
			continue
		}
		inFlight++
	}
	time.Sleep(3 * time.Second)
	l.Stop()
	results := l.Results()
	c.report(l.Stats())
	allOK(t, results)
	if n := c.proxy.Failed(); n != 0 {
		t.Errorf("the proxy answered %d requests 502", n)
	}
	after := 0
	for _, r := range results {
		if r.Start.After(signalled) {
			after++
		}
	}
	if after < 100 {
		t.Errorf("only %d requests after SIGTERM", after)
	}
	t.Logf("SIGTERM: %d of %d slow requests were in flight when the listeners closed and finished, the last %v after the signal; "+
		"exit %v after the signal; %d requests after it, %d refused connections sent to another instance, 0 failed",
		inFlight, cap(slow), time.Duration(lastAnswer.Load()).Round(time.Millisecond), exited.Round(time.Millisecond), after, c.proxy.Retried())
}

// faultRollingRestart restarts every instance in turn under load (SIGTERM,
// then start again): no request fails, and every token issued before is
// still active afterwards.
func faultRollingRestart(t *testing.T, e *faultEnv) {
	ctx := t.Context()
	c := newCluster(t, e, patientBackends)
	l := c.load()
	time.Sleep(2 * time.Second)
	before := l.Tokens()
	begin := time.Now()
	for _, in := range c.instances {
		if err := in.Stop(20 * time.Second); err != nil {
			t.Fatalf("%s: %v", in.Name, err)
		}
		if err := in.Start(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
	}
	took := time.Since(begin)
	time.Sleep(time.Second)
	l.Stop()
	results := l.Results()
	c.report(l.Stats())
	allOK(t, results)
	if n := c.proxy.Failed(); n != 0 {
		t.Errorf("the proxy answered %d requests 502", n)
	}
	all := append([]string{c.seed}, l.Tokens()...)
	inactive, err := fleet.Introspect(ctx, c.proxy.URL(), c.creds, all)
	if err != nil {
		t.Fatal(err)
	}
	if inactive != 0 {
		t.Errorf("%d of %d tokens inactive after the rolling restart, want none", inactive, len(all))
	}
	t.Logf("rolling restart of 3 instances in %v under load: %d requests, 0 failed, %d refused connections sent to another instance; "+
		"%d tokens issued before it and %d in all introspected afterwards, %d inactive",
		took.Round(time.Millisecond), len(results), c.proxy.Retried(), len(before), len(all), inactive)
}

// faultRedisFull fills Redis (maxmemory with the noeviction policy) under
// load with keys of its own. Issuance answers 503 temporarily_unavailable;
// tokens issued before keep introspecting active, and checks of them and of
// an API key answer 503 (the limiter cannot write) unless
// rate_limits.fail_open, where they answer 200, as a fourth instance with
// it shows. Once the keys are gone everything recovers without a restart.
func faultRedisFull(t *testing.T, e *faultEnv) {
	ctx := t.Context()
	c := newCluster(t, e, nil, "--maxmemory", "16mb", "--maxmemory-policy", "noeviction")
	open, err := fleet.NewInstance("tollgate-fail-open", e.bin, c.env.With("TOLLGATE_RATE_LIMIT_FAIL_OPEN", "true"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := open.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = open.Stop(20 * time.Second) })
	pids := c.pids()
	l := c.load()
	time.Sleep(2 * time.Second)
	issued := l.Tokens()

	rc := c.redis.Client()
	defer rc.Close()
	filling := time.Now()
	junk, err := fill(ctx, rc, "junk:")
	if err != nil {
		t.Fatal(err)
	}
	// At the limit, a write gets through whenever a buffer is freed: a
	// limit a MiB below what is used makes the state steady.
	info, err := rc.InfoMap(ctx, "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	used, _ := strconv.ParseInt(info["Memory"]["used_memory"], 10, 64)
	if err := rc.ConfigSet(ctx, "maxmemory", strconv.FormatInt(used-1<<20, 10)).Err(); err != nil {
		t.Fatal(err)
	}
	full := time.Now()
	t.Logf("Redis full after %d junk keys of 10 KiB in %v: used_memory %s, maxmemory %d",
		junk, full.Sub(filling).Round(time.Millisecond), info["Memory"]["used_memory_human"], used-1<<20)

	// Through the fail-open instance, directly: checks of a token issued
	// before and of the key.
	var openChecks []fleet.Result
	for range 20 {
		tok := issued[len(issued)-1]
		openChecks = append(openChecks,
			fleet.Send(ctx, fleet.KindCheckToken, http.MethodGet, "http://"+open.Public+"/auth/check", tok, "", ""),
			checkKey(ctx, "http://"+open.Public, c.creds.APIKey))
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Until(full.Add(4 * time.Second)))
	freeing := time.Now()
	if err := deleteKeys(ctx, rc, "junk:"); err != nil {
		t.Fatal(err)
	}
	if err := rc.ConfigSet(ctx, "maxmemory", "16mb").Err(); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	time.Sleep(5 * time.Second)
	l.Stop()
	results := l.Results()
	c.report(l.Stats())

	answersBounded(t, results, 2*time.Second)
	during := window{full, freeing}
	for _, r := range results {
		if !during.has(r) {
			continue
		}
		switch r.Kind {
		case fleet.KindToken, fleet.KindCheckToken, fleet.KindCheckKey:
			if !unavailable(r) {
				t.Errorf("Redis full: %v, want 503 temporarily_unavailable", r)
			}
		default:
			if !r.OK() {
				t.Errorf("Redis full: %v, want it served", r)
			}
		}
	}
	t.Logf("while Redis was full, successes: %v", countKinds(results, func(r fleet.Result) bool { return during.has(r) && r.OK() }))
	t.Logf("while Redis was full, 503s: %v", countKinds(results, func(r fleet.Result) bool { return during.has(r) && !r.OK() }))
	for _, r := range openChecks {
		if !r.OK() {
			t.Errorf("Redis full, rate_limits.fail_open: %v, want 200", r)
		}
	}
	rec := recovery(t, results, freed, 3*time.Second)
	t.Logf("the last failure started %v after the junk was deleted", rec.Round(time.Millisecond))
	inactive, err := fleet.Introspect(ctx, c.proxy.URL(), c.creds, issued)
	if err != nil {
		t.Fatal(err)
	}
	if inactive != 0 {
		t.Errorf("%d of %d tokens issued before Redis filled up are inactive", inactive, len(issued))
	}
	c.samePIDs(pids)
}

func checkKey(ctx context.Context, base, key string) fleet.Result {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/auth/check", nil)
	req.Header.Set("X-API-Key", key)
	r := fleet.Result{Kind: fleet.KindCheckKey, Start: time.Now()}
	res, err := http.DefaultClient.Do(req)
	r.Latency = time.Since(r.Start)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	res.Body.Close()
	r.Status = res.StatusCode
	return r
}

// fill writes keys of 10 KiB under prefix until Redis refuses with OOM,
// and answers how many it wrote.
func fill(ctx context.Context, rc *goredis.Client, prefix string) (int, error) {
	value := strings.Repeat("x", 10<<10)
	for n := 0; ; n += 100 {
		pipe := rc.Pipeline()
		for i := range 100 {
			pipe.Set(ctx, fmt.Sprintf("%s%d", prefix, n+i), value, 0)
		}
		cmds, err := pipe.Exec(ctx)
		for i, cmd := range cmds {
			if err := cmd.Err(); err != nil {
				if strings.HasPrefix(err.Error(), "OOM") {
					return n + i, nil
				}
				return n + i, err
			}
		}
		if err != nil {
			return n, err
		}
		if n > 100000 {
			return n, errors.New("Redis never filled up: is maxmemory set?")
		}
	}
}

// deleteKeys deletes every key under prefix.
func deleteKeys(ctx context.Context, rc *goredis.Client, prefix string) error {
	iter := rc.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == 1000 {
			if err := rc.Unlink(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		return rc.Unlink(ctx, batch...).Err()
	}
	return nil
}
