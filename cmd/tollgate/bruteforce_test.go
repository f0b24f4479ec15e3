package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/pkg/bruteforce"
	bfredis "github.com/tollgate/tollgate/pkg/bruteforce/redis"
	rlmemory "github.com/tollgate/tollgate/pkg/ratelimit/memory"
	"github.com/tollgate/tollgate/pkg/secret"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/redis/redistest"
)

// The defaults wired in newApp: a back-off after 5 failures of one client id
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
// store (the fixture's newApp call keeps them in process). The database,
// token store, clients and clock stay the same.
func (f *fixture) useFailureStore(store bruteforce.Store) {
	t := f.t
	t.Helper()
	passwords, err := secret.NewPasswords(secret.Argon2Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := newApp(deps{cfg: f.cfg, keys: f.keys, db: f.db, tokens: f.tokens, limiter: rlmemory.New(rlmemory.Options{Now: f.clock.now}),
		failures: store, passwords: passwords, logger: logger, now: f.clock.now})
	if err != nil {
		t.Fatalf("newApp: %v", err)
	}
	f.app = a
	f.srv = httptest.NewServer(a.public)
	t.Cleanup(f.srv.Close)
	f.ops = httptest.NewServer(a.ops)
	t.Cleanup(f.ops.Close)
}

// The basic case on every backend, with the counters in Redis on
// postgres+redis: hammering one client id ends in 429 for it alone, and
// its owner gets in after the back-off.
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
			wantBlocked(t, f.tokenWithSecret(f.cc, f.secretOf[f.cc.ID]), 1)
			f.tokenCC(f.dsp)
			f.clock.advance(time.Second)
			f.tokenCC(f.cc)
		})
	}
}

func TestBruteForceClient(t *testing.T) {
	f := newFixture(t, "embedded")
	right := f.secretOf[f.cc.ID]
	for i := range bfThreshold {
		wantError(t, f.tokenWithSecret(f.cc, "wrong-"+strconv.Itoa(i)), http.StatusUnauthorized, "invalid_client")
	}

	// Blocked: a wrong secret and the right one get the same answer, so the
	// block tells nothing about the secret.
	wantBlocked(t, f.tokenWithSecret(f.cc, "wrong"), 1)
	wantBlocked(t, f.tokenWithSecret(f.cc, right), 1)
	// The other endpoints that authenticate the client refuse it too.
	wantBlocked(t, f.post("/oauth/introspect", formCT, form("token", "junk"), "Authorization", basic(f.cc.ID, right)), 1)
	wantBlocked(t, f.post("/oauth/revoke", formCT, form("token", "junk"), "Authorization", basic(f.cc.ID, right)), 1)
	key, err := apikey.Format(f.cc.ID, right)
	if err != nil {
		t.Fatal(err)
	}
	wantBlocked(t, f.post("/auth/access/session", "", "", "X-API-Key", key), 1)
	// The check endpoint answers 429 with Retry-After too, never a 503.
	if res := f.check(http.MethodGet, "X-API-Key", key); res.status != http.StatusTooManyRequests || res.header.Get("Retry-After") != "1" {
		t.Errorf("check endpoint with the blocked client's key: status %d Retry-After %q, want 429 and 1 (body %s)",
			res.status, res.header.Get("Retry-After"), res.body)
	}

	// Other clients are not affected, on any endpoint.
	f.tokenCC(f.dsp)
	if f.active("junk") {
		t.Error("introspection of junk: got active")
	}

	// Once the back-off has passed one more attempt goes through; failing
	// again doubles the back-off.
	f.clock.advance(time.Second)
	wantError(t, f.tokenWithSecret(f.cc, "wrong"), http.StatusUnauthorized, "invalid_client")
	wantBlocked(t, f.tokenWithSecret(f.cc, right), 2)
	f.clock.advance(time.Second)
	wantBlocked(t, f.tokenWithSecret(f.cc, right), 1)
	f.clock.advance(time.Second)

	// The owner gets in, and the success resets the count: the next
	// failures start from zero.
	f.tokenCC(f.cc)
	for i := range bfThreshold - 1 {
		wantError(t, f.tokenWithSecret(f.cc, "wrong-"+strconv.Itoa(i)), http.StatusUnauthorized, "invalid_client")
	}
	f.tokenCC(f.cc)

	// An unknown client id is counted like a wrong secret.
	ghost := storage.Client{ID: f.cc.ID + 1_000_000}
	for range bfThreshold {
		wantError(t, f.tokenWithSecret(ghost, "x"), http.StatusUnauthorized, "invalid_client")
	}
	wantBlocked(t, f.tokenWithSecret(ghost, "x"), 1)

	metrics := f.scrapeMetrics()
	for _, want := range []string{
		`tollgate_bruteforce_blocks_total{dimension="id",kind="client"} 9`,
		`tollgate_http_requests_total{endpoint="token",grant_type="client_credentials",outcome="slow_down"} 5`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
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

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
