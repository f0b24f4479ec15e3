package e2e

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/internal/app"
	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/pkg/bruteforce"
	bfredis "github.com/tollgate/tollgate/pkg/bruteforce/redis"
	rlmemory "github.com/tollgate/tollgate/pkg/ratelimit/memory"
	"github.com/tollgate/tollgate/pkg/secret"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/cache"
	"github.com/tollgate/tollgate/storage/redis/redistest"
)

// The defaults wired in app.New: a back-off after 5 failures of one client id
// or username, 1 s doubling.
const bfThreshold = bruteforce.DefaultThreshold

// tokenWithSecret asks for a client_credentials token for c with secret.
func (f *fixture) tokenWithSecret(c storage.Client, secret string) response {
	f.t.Helper()
	return f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basic(c.ID, secret))
}

// tokenWithPassword asks for an eskimi_dsp token for username as the dsp
// client.
func (f *fixture) tokenWithPassword(username, password string) response {
	f.t.Helper()
	return f.post("/oauth/token", formCT, form("grant_type", "eskimi_dsp", "username", username, "password", password),
		"Authorization", basic(f.dsp.ID, f.secretOf[f.dsp.ID]))
}

// wantBlocked checks a 429 slow_down answer with Retry-After seconds.
func wantBlocked(t *testing.T, res response, retryAfter int) {
	t.Helper()
	wantError(t, res, http.StatusTooManyRequests, "slow_down")
	if got := res.header.Get("Retry-After"); got != strconv.Itoa(retryAfter) {
		t.Errorf("Retry-After = %q, want %d", got, retryAfter)
	}
}

// scrapeMetrics answers the ops listener's /metrics text.
func (f *fixture) scrapeMetrics() string {
	f.t.Helper()
	req, err := http.NewRequestWithContext(f.t.Context(), http.MethodGet, f.ops.URL+"/metrics", nil)
	if err != nil {
		f.t.Fatal(err)
	}
	res, err := f.ops.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return string(b)
}

// useFailureStore rewires f's servers with the brute-force counters in
// store (the fixture's app.New call keeps them in process). The database,
// token store, clients and clock stay the same.
func (f *fixture) useFailureStore(store bruteforce.Store) {
	t := f.t
	t.Helper()
	passwords, err := secret.NewPasswords(secret.Argon2Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := app.New(f.cfg, app.Deps{Keys: f.keys, DB: f.db, SigningKeys: f.signingKeys, Tokens: f.tokens, Limiter: rlmemory.New(rlmemory.Options{Now: f.clock.now}),
		Failures: store, Passwords: passwords, Logger: logger, Now: f.clock.now})
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	f.app = a
	f.srv = httptest.NewServer(a.Public())
	t.Cleanup(f.srv.Close)
	f.ops = httptest.NewServer(a.Ops())
	t.Cleanup(f.ops.Close)
}

// The basic case on every backend, with the counters in Redis on
// postgres+redis: hammering one client id ends in 429 for its wrong
// secrets, while its right secret still gets in and resets the count.
func TestBruteForceBackends(t *testing.T) {
	for _, b := range testBackends {
		t.Run(b, func(t *testing.T) {
			f := newFixture(t, b)
			wantKeys := func() {}
			if b != "embedded" {
				client, prefix := redistest.New(t)
				f.useFailureStore(bfredis.New(client, bfredis.Options{KeyPrefix: prefix + "bf:"}))
				wantKeys = func() {
					t.Helper()
					keys, err := redistest.Keys(t.Context(), client, prefix+"bf:")
					if err != nil {
						t.Fatal(err)
					}
					slices.Sort(keys)
					want := []string{prefix + "bf:c:id:" + strconv.FormatInt(f.cc.ID, 10), prefix + "bf:c:src:127.0.0.1"}
					if !slices.Equal(keys, want) {
						t.Errorf("keys in Redis: got %q, want %q", keys, want)
					}
				}
			}
			for i := range bfThreshold {
				wantError(t, f.tokenWithSecret(f.cc, "wrong-"+strconv.Itoa(i)), http.StatusUnauthorized, "invalid_client")
			}
			wantKeys()
			wantBlocked(t, f.tokenWithSecret(f.cc, "wrong"), 1)
			f.tokenCC(f.cc)
			// The success reset nothing; the failures are forgotten after
			// the window.
			wantBlocked(t, f.tokenWithSecret(f.cc, "wrong"), 1)
			f.clock.advance(bruteforce.DefaultWindow)
			wantError(t, f.tokenWithSecret(f.cc, "wrong"), http.StatusUnauthorized, "invalid_client")
			f.tokenCC(f.dsp)
		})
	}
}

// wrongKey is a well-formed API key of client id with a wrong secret.
func wrongKey(t *testing.T, id int64) string {
	t.Helper()
	key, err := apikey.Format(id, strings.Repeat("A", 43))
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func TestBruteForceClient(t *testing.T) {
	// This test is about the client id: keep the source out of the way.
	f := newFixture(t, "embedded", func(c *config.Config) { c.BruteForce.SourceThreshold = 1000 })
	right := f.secretOf[f.cc.ID]
	// The key session is one of the endpoints checked: a plain client
	// needs the grant for it.
	if _, err := f.db.UpdateClient(t.Context(), f.cc.ID, func(c *storage.Client) error {
		c.GrantTypes = append(c.GrantTypes, "api_key_session")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	key, err := apikey.Format(f.cc.ID, right)
	if err != nil {
		t.Fatal(err)
	}
	bad := wrongKey(t, f.cc.ID)
	// block lets the client id's failures be forgotten (a right secret does
	// not reset them), then fails until the client id is held back.
	block := func() {
		t.Helper()
		f.clock.advance(bruteforce.DefaultWindow)
		for i := range bfThreshold {
			wantError(t, f.tokenWithSecret(f.cc, "wrong-"+strconv.Itoa(i)), http.StatusUnauthorized, "invalid_client")
		}
		wantBlocked(t, f.tokenWithSecret(f.cc, "wrong"), 1)
	}
	wantStatus := func(what string, res response, status int) {
		t.Helper()
		if res.status != status {
			t.Errorf("%s: status %d, want %d (body %s)", what, res.status, status, res.body)
		}
	}

	// During a block the right secret gets in on every endpoint that
	// authenticates the client: client secrets cannot be guessed, so a
	// block must not keep their owner out.
	block()
	f.tokenCC(f.cc)
	block()
	wantStatus("introspection with the right secret (the client may not introspect)",
		f.post("/oauth/introspect", formCT, form("token", "junk"), "Authorization", basic(f.cc.ID, right)), http.StatusForbidden)
	block()
	wantStatus("revocation with the right secret", f.post("/oauth/revoke", formCT, form("token", "junk"), "Authorization", basic(f.cc.ID, right)), http.StatusOK)
	block()
	wantStatus("key session with the right key", f.post("/auth/access/session", "", "", "X-API-Key", key), http.StatusOK)
	block()
	wantStatus("check with the right key", f.check(http.MethodGet, "X-API-Key", key), http.StatusOK)

	// A wrong secret is refused with 429 on every endpoint.
	block()
	wantBlocked(t, f.post("/oauth/introspect", formCT, form("token", "junk"), "Authorization", basic(f.cc.ID, "wrong")), 1)
	wantBlocked(t, f.post("/oauth/revoke", formCT, form("token", "junk"), "Authorization", basic(f.cc.ID, "wrong")), 1)
	wantBlocked(t, f.post("/auth/access/session", "", "", "X-API-Key", bad), 1)
	// The check endpoint answers 429 with Retry-After too, never a 503.
	if res := f.check(http.MethodGet, "X-API-Key", bad); res.status != http.StatusTooManyRequests || res.header.Get("Retry-After") != "1" {
		t.Errorf("check endpoint with a wrong key of the blocked client: status %d Retry-After %q, want 429 and 1 (body %s)",
			res.status, res.header.Get("Retry-After"), res.body)
	}

	// Other clients are not affected, on any endpoint.
	f.tokenCC(f.dsp)
	if f.active("junk") {
		t.Error("introspection of junk: got active")
	}

	// Once the back-off has passed one more wrong secret is compared;
	// failing again doubles the back-off.
	f.clock.advance(time.Second)
	wantError(t, f.tokenWithSecret(f.cc, "wrong"), http.StatusUnauthorized, "invalid_client")
	wantBlocked(t, f.tokenWithSecret(f.cc, "wrong"), 2)
	f.clock.advance(time.Second)
	wantBlocked(t, f.tokenWithSecret(f.cc, "wrong"), 1)

	// The owner gets in, and the success resets nothing (it costs the
	// owner's requests no round trip): a wrong secret is still held back
	// until the failures are forgotten.
	f.tokenCC(f.cc)
	wantBlocked(t, f.tokenWithSecret(f.cc, "wrong"), 1)
	block()
	f.tokenCC(f.cc)

	// An attacker who fails on purpose every time the back-off ends never
	// keeps the owner out.
	for range 5 {
		block()
		f.tokenCC(f.cc)
	}

	// An unknown client id is counted like a wrong secret.
	ghost := storage.Client{ID: f.cc.ID + 1_000_000}
	for range bfThreshold {
		wantError(t, f.tokenWithSecret(ghost, "x"), http.StatusUnauthorized, "invalid_client")
	}
	wantBlocked(t, f.tokenWithSecret(ghost, "x"), 1)

	// Blocks: 5 + 1 in the first part, 4 more on the other endpoints, 2
	// in the back-off, 1 + 1 + 5 after, 1 for the ghost; 16 of them at the
	// token endpoint.
	metrics := f.scrapeMetrics()
	for _, want := range []string{
		`tollgate_bruteforce_blocks_total{dimension="id",kind="client"} 20`,
		`tollgate_http_requests_total{endpoint="token",grant_type="client_credentials",outcome="slow_down"} 16`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(metrics, "bruteforce"))
		}
	}
	logs := f.logs.String()
	if want := `"msg":"brute-force protection refused an attempt","kind":"client","client_id":` + strconv.FormatInt(f.cc.ID, 10) + `,"source":"127.0.0.1"`; !strings.Contains(logs, want) {
		t.Errorf("logs lack %s", want)
	}
}

func TestBruteForceUser(t *testing.T) {
	f := newFixture(t, "embedded")
	for i := range bfThreshold {
		wantError(t, f.tokenWithPassword("alice", "wrong-"+strconv.Itoa(i)), http.StatusBadRequest, "invalid_grant")
	}
	// Passwords can be guessed: during a block the right one is refused
	// too, before it is compared, so the block tells nothing.
	wantBlocked(t, f.tokenWithPassword("alice", "wrong"), 1)
	wantBlocked(t, f.tokenWithPassword("alice", testPassword), 1)

	// Another user of the same client, and the client itself, are not
	// affected.
	f.tokenDSP(f.dsp, "bob")
	f.tokenCC(f.dsp)

	f.clock.advance(time.Second)
	wantError(t, f.tokenWithPassword("alice", "wrong"), http.StatusBadRequest, "invalid_grant")
	wantBlocked(t, f.tokenWithPassword("alice", testPassword), 2)
	f.clock.advance(2 * time.Second)
	f.tokenDSP(f.dsp, "alice")
	// The success reset alice's count.
	for i := range bfThreshold - 1 {
		wantError(t, f.tokenWithPassword("alice", "wrong-"+strconv.Itoa(i)), http.StatusBadRequest, "invalid_grant")
	}
	f.tokenDSP(f.dsp, "alice")

	// A username that does not exist is held back alike: the answers do
	// not tell which users exist.
	for range bfThreshold {
		wantError(t, f.tokenWithPassword("nobody", "x"), http.StatusBadRequest, "invalid_grant")
	}
	wantBlocked(t, f.tokenWithPassword("nobody", "x"), 1)

	if metrics := f.scrapeMetrics(); !strings.Contains(metrics, `tollgate_bruteforce_blocks_total{dimension="id",kind="user"} 4`) {
		t.Errorf("/metrics lacks 4 user blocks:\n%s", grepLines(metrics, "bruteforce"))
	}
	logs := f.logs.String()
	if strings.Contains(logs, `"alice"`) {
		t.Error("logs name the user alice in clear")
	}
	if want := `"kind":"user","username_hash":"` + bruteforce.HashID("alice") + `"`; !strings.Contains(logs, want) {
		t.Errorf("logs lack %s", want)
	}
}

// Addresses the tests forward through the trusted proxy (the test client,
// 127.0.0.1).
const (
	attackerAddr = "203.0.113.66"
	ownerAddr    = "198.51.100.7"
)

// behindProxy trusts the loopback as a proxy: the tests choose their
// source with X-Forwarded-For.
func behindProxy(c *config.Config) { c.BruteForce.TrustedProxies = []string{"127.0.0.0/8", "::1"} }

// loginFrom asks for an eskimi_dsp token for username as the dsp client,
// forwarded for addr.
func (f *fixture) loginFrom(addr, username, password string) response {
	f.t.Helper()
	return f.post("/oauth/token", formCT, form("grant_type", "eskimi_dsp", "username", username, "password", password),
		"Authorization", basic(f.dsp.ID, f.secretOf[f.dsp.ID]), "X-Forwarded-For", addr)
}

// A user is counted per (username, source): an attacker failing from one
// address cannot lock the user out from another.
// TestBruteForceUserIgnoresCase: sign-in ignores the case of a username,
// so the failure count does too; otherwise every case variant of a name
// would bring a fresh allowance of guesses.
func TestBruteForceUserIgnoresCase(t *testing.T) {
	f := newFixture(t, "embedded", func(c *config.Config) { c.BruteForce.SourceThreshold = 1000 })
	variants := []string{"alice", "ALICE", "Alice", "aLICE", "alicE", "ALIce"}
	for i := range bfThreshold {
		name := variants[i%len(variants)]
		wantError(t, f.tokenWithPassword(name, "wrong-"+strconv.Itoa(i)), http.StatusBadRequest, "invalid_grant")
	}
	for _, name := range []string{"AlIcE", "alice"} {
		wantBlocked(t, f.tokenWithPassword(name, testPassword), 1)
	}
}

func TestBruteForceUserPerSource(t *testing.T) {
	f := newFixture(t, "embedded", behindProxy)
	for i := range bfThreshold {
		wantError(t, f.loginFrom(attackerAddr, "alice", "wrong-"+strconv.Itoa(i)), http.StatusBadRequest, "invalid_grant")
	}
	wantBlocked(t, f.loginFrom(attackerAddr, "alice", testPassword), 1)
	if res := f.loginFrom(ownerAddr, "alice", testPassword); res.status != http.StatusOK {
		t.Fatalf("alice from her own address during the attacker's block: status %d body %s", res.status, res.body)
	}
	// Her success does not lift the attacker's block.
	wantBlocked(t, f.loginFrom(attackerAddr, "alice", testPassword), 1)

	// Without trusted proxies X-Forwarded-For is ignored: the peer is the
	// source, so the "other address" is the same one.
	g := newFixture(t, "embedded")
	for i := range bfThreshold {
		wantError(t, g.loginFrom(attackerAddr, "alice", "wrong-"+strconv.Itoa(i)), http.StatusBadRequest, "invalid_grant")
	}
	wantBlocked(t, g.loginFrom(ownerAddr, "alice", testPassword), 1)
}

// Behind a load balancer (a trusted proxy) each caller has its own
// per-source budget: a sprayer exhausts only its own.
func TestBruteForceTrustedProxies(t *testing.T) {
	f := newFixture(t, "embedded", behindProxy)
	for i := range bruteforce.DefaultSourceThreshold {
		wantError(t, f.loginFrom(attackerAddr, "nobody"+strconv.Itoa(i), "x"), http.StatusBadRequest, "invalid_grant")
	}
	// The sprayer's address is held back for every username...
	wantBlocked(t, f.loginFrom(attackerAddr, "alice", testPassword), 1)
	// ...including when it writes another address into the header itself:
	// the balancer appends the real one, and only that one counts.
	wantBlocked(t, f.loginFrom(ownerAddr+", "+attackerAddr, "alice", testPassword), 1)
	// Everybody else behind the balancer is not.
	if res := f.loginFrom(ownerAddr, "alice", testPassword); res.status != http.StatusOK {
		t.Fatalf("alice from another address behind the balancer: status %d body %s", res.status, res.body)
	}
	f.tokenDSP(f.dsp, "bob") // no header: the balancer's own address
	if metrics := f.scrapeMetrics(); !strings.Contains(metrics, `tollgate_bruteforce_blocks_total{dimension="source",kind="user"} 2`) {
		t.Errorf("/metrics lacks 2 user source blocks:\n%s", grepLines(metrics, "bruteforce"))
	}
	if want := `"kind":"user","username_hash":"` + bruteforce.HashID("alice") + `","source":"` + attackerAddr + `"`; !strings.Contains(f.logs.String(), want) {
		t.Errorf("logs lack %s", want)
	}
}

// The check endpoint sees the gateway's address: it counts per source only
// the address a trusted gateway forwards, and otherwise per client id only.
func TestBruteForceCheckSource(t *testing.T) {
	spray := func(f *fixture, from []string, n int, first int64) {
		t.Helper()
		for i := range int64(n) {
			res := f.check(http.MethodGet, append([]string{"X-API-Key", wrongKey(t, first+i)}, from...)...)
			if res.status != http.StatusUnauthorized {
				t.Fatalf("wrong key %d: status %d, want 401 (body %s)", i, res.status, res.body)
			}
		}
	}
	t.Run("no trusted proxies", func(t *testing.T) {
		f := newFixture(t, "embedded")
		// Far more failures across client ids than the source threshold:
		// none is counted under the gateway's address.
		spray(f, nil, 2*bruteforce.DefaultSourceThreshold, 1_000_000)
		wantError(t, f.tokenWithSecret(f.cc, "wrong"), http.StatusUnauthorized, "invalid_client")
		// The client id is still counted: with the failure above, the
		// threshold is reached.
		for range bfThreshold - 1 {
			spray(f, nil, 1, f.cc.ID)
		}
		wantBlocked(t, f.check(http.MethodGet, "X-API-Key", wrongKey(t, f.cc.ID)), 1)
	})
	t.Run("trusted gateway", func(t *testing.T) {
		f := newFixture(t, "embedded", behindProxy)
		spray(f, []string{"X-Forwarded-For", attackerAddr}, bruteforce.DefaultSourceThreshold, 1_000_000)
		// The API caller's address is held back...
		wantBlocked(t, f.check(http.MethodGet, "X-API-Key", wrongKey(t, 2_000_000), "X-Forwarded-For", attackerAddr), 1)
		// ...other callers through the same gateway are not...
		spray(f, []string{"X-Forwarded-For", ownerAddr}, 1, 2_000_000)
		// ...nor a request that forwards no address (the gateway's own is
		// never counted).
		spray(f, nil, bruteforce.DefaultSourceThreshold, 3_000_000)
		// The right key gets in, even from the held-back address.
		right, err := apikey.Format(f.cc.ID, f.secretOf[f.cc.ID])
		if err != nil {
			t.Fatal(err)
		}
		if res := f.check(http.MethodGet, "X-API-Key", right, "X-Forwarded-For", attackerAddr); res.status != http.StatusOK {
			t.Errorf("the right key from the held-back address: status %d, want 200 (body %s)", res.status, res.body)
		}
		if metrics := f.scrapeMetrics(); !strings.Contains(metrics, `tollgate_bruteforce_blocks_total{dimension="source",kind="client"} 1`) {
			t.Errorf("/metrics lacks 1 client source block:\n%s", grepLines(metrics, "bruteforce"))
		}
	})
}

// postStatus posts and answers the status; safe off the test goroutine.
func (f *fixture) postStatus(path, contentType, body string, header ...string) (int, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	res, err := f.srv.Client().Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode, nil
}

// Many wrong attempts at once get no more comparisons than the threshold:
// the check of the back-off and the count are one atomic step.
func TestBruteForceConcurrent(t *testing.T) {
	const n = 60
	burst := func(t *testing.T, f *fixture, what string, failed int, header ...string) {
		t.Helper()
		body := form("grant_type", "client_credentials")
		if failed == http.StatusBadRequest {
			body = form("grant_type", "eskimi_dsp", "username", "alice", "password", "wrong")
		}
		statuses := make(chan int, n)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				status, err := f.postStatus("/oauth/token", formCT, body, header...)
				if err != nil {
					t.Errorf("%s: %v", what, err)
				}
				statuses <- status
			})
		}
		wg.Wait()
		close(statuses)
		count := map[int]int{}
		for s := range statuses {
			count[s]++
		}
		if count[failed] != bfThreshold || count[http.StatusTooManyRequests] != n-bfThreshold {
			t.Errorf("%s: %d at once: got statuses %v, want %d × %d and %d × 429", what, n, count, bfThreshold, failed, n-bfThreshold)
		}
	}
	for _, b := range testBackends {
		t.Run(b, func(t *testing.T) {
			f := newFixture(t, b)
			if b != "embedded" {
				client, prefix := redistest.New(t)
				f.useFailureStore(bfredis.New(client, bfredis.Options{KeyPrefix: prefix + "bf:"}))
			}
			burst(t, f, "wrong client secrets", http.StatusUnauthorized, "Authorization", basic(f.cc.ID, "wrong"))
			burst(t, f, "wrong passwords", http.StatusBadRequest, "Authorization", basic(f.dsp.ID, f.secretOf[f.dsp.ID]))
		})
	}
}

// The passwords users type into the management API to confirm who they
// are (old_password, client token confirmation) are guarded like sign-in
// passwords, and count together with them.
func TestBruteForceManagementPasswords(t *testing.T) {
	f := newFixture(t, "embedded", behindProxy)
	alice := f.admUser("alice")
	pwPath := admPath("/users", f.alice.ID, "/password")
	tokenPath := admPath("/clients", f.cc.ID, "/tokens")
	change := func(old string) string {
		return admBody(map[string]any{"old_password": old, "password": "a new password, long enough"})
	}
	wantTooMany := func(res response) {
		t.Helper()
		admProblem(t, res, http.StatusTooManyRequests)
		if got := res.header.Get("Retry-After"); got != "1" {
			t.Errorf("Retry-After = %q, want 1", got)
		}
	}
	for i := range bfThreshold - 1 {
		admProblem(t, f.admDo(t, alice, http.MethodPost, pwPath, change("wrong-"+strconv.Itoa(i))), http.StatusForbidden)
	}
	admProblem(t, f.admDo(t, alice, http.MethodPost, tokenPath, `{"password":"wrong"}`), http.StatusForbidden)
	// Blocked: the right password is refused before it is compared, on
	// both operations and at sign-in from the same address.
	wantTooMany(f.admDo(t, alice, http.MethodPost, pwPath, change(testPassword)))
	wantTooMany(f.admDo(t, alice, http.MethodPost, tokenPath, admBody(map[string]any{"password": testPassword})))
	wantBlocked(t, f.tokenWithPassword("alice", testPassword), 1)
	// From another address alice gets in.
	f.admWant(t, alice, http.MethodPost, tokenPath, admBody(map[string]any{"password": testPassword}), http.StatusCreated,
		"X-Forwarded-For", ownerAddr)
	// The back-off passes; the right password works and resets the count.
	f.clock.advance(time.Second)
	f.admWant(t, alice, http.MethodPost, tokenPath, admBody(map[string]any{"password": testPassword}), http.StatusCreated)
	admProblem(t, f.admDo(t, alice, http.MethodPost, pwPath, change("wrong")), http.StatusForbidden)
	f.admWant(t, alice, http.MethodPost, pwPath, change(testPassword), http.StatusNoContent)
	if metrics := f.scrapeMetrics(); !strings.Contains(metrics, `tollgate_bruteforce_blocks_total{dimension="id",kind="user"} 3`) {
		t.Errorf("/metrics lacks 3 user blocks:\n%s", grepLines(metrics, "bruteforce"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// secondInstance builds another app on f's database and Redis, as a second
// `tollgate serve` on the same deployment builds it: its own database
// connection and client cache, its Redis stores from app.RedisBackends. It
// returns a fixture whose requests go to the second instance.
func (f *fixture) secondInstance() *fixture {
	t := f.t
	t.Helper()
	if f.redis == nil {
		t.Fatal("a second instance needs the postgres+redis backend")
	}
	logger := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	raw, err := app.OpenDatabase(t.Context(), f.cfg, false, logger)
	if err != nil {
		t.Fatalf("open database: %v", err)
	}
	t.Cleanup(func() { raw.Close() })
	passwords, err := secret.NewPasswords(secret.Argon2Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	if err != nil {
		t.Fatal(err)
	}
	be := app.RedisBackends(f.redis, f.redisPrefix, f.clock.now)
	a, err := app.New(f.cfg, app.Deps{Keys: f.keys, DB: cache.New(raw, cache.Options{Logger: logger}), SigningKeys: raw, Tokens: be.Tokens,
		Limiter: be.Limiter, Meter: be.Meter, TokenMeter: be.TokenMeter, Counter: be.Counter, Failures: be.Failures, OneTimeIDs: be.OneTimeIDs, Passwords: passwords, Logger: logger, Now: f.clock.now})
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	g := *f
	g.app = a
	g.srv = httptest.NewServer(a.Public())
	t.Cleanup(g.srv.Close)
	g.ops = httptest.NewServer(a.Ops())
	t.Cleanup(g.ops.Close)
	return &g
}

// TestBruteForceAcrossInstances: the brute-force counters are shared by
// every instance on one Redis (docs/adr/0005), through the wiring serve
// uses. Failures of one client id, and of one username, spread over two
// instances add up to the threshold, and then both instances hold the
// credential back; counters kept per process would let an attacker have
// the threshold once per instance.
func TestBruteForceAcrossInstances(t *testing.T) {
	first := newFixture(t, "postgres+redis")
	instances := []*fixture{first, first.secondInstance()}
	tests := []struct {
		name    string
		attempt func(f *fixture, i int) response
		status  int
		code    string
	}{
		{"client secret", func(f *fixture, i int) response {
			return f.tokenWithSecret(first.cc, "wrong-"+strconv.Itoa(i))
		}, http.StatusUnauthorized, "invalid_client"},
		{"user password", func(f *fixture, i int) response {
			return f.tokenWithPassword("bob", "wrong-"+strconv.Itoa(i))
		}, http.StatusBadRequest, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range bfThreshold {
				res := tt.attempt(instances[i%2], i)
				if res.status != tt.status {
					t.Fatalf("attempt %d on instance %d: status %d, want %d (body %s)", i+1, i%2+1, res.status, tt.status, res.body)
				}
				wantError(t, res, tt.status, tt.code)
			}
			for n, in := range instances {
				if res := tt.attempt(in, bfThreshold+n); res.status != http.StatusTooManyRequests {
					t.Errorf("instance %d after %d failures spread over two instances: status %d, want 429 (body %s)",
						n+1, bfThreshold, res.status, res.body)
				}
			}
		})
	}
}
