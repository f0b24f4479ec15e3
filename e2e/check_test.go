package e2e

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/storage"
)

// check calls /auth/check the way a gateway does.
func (f *fixture) check(method string, header ...string) response {
	f.t.Helper()
	req, err := http.NewRequestWithContext(f.t.Context(), method, f.srv.URL+"/auth/check", nil)
	if err != nil {
		f.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	return f.do(req)
}

func TestCheckEndpoint(t *testing.T) {
	// Generous limits: this test is about everything but the limits.
	roomy := func(c *config.Config) { c.RateLimits.Classes = map[string]string{"default": "1000", "reports": "1000"} }
	forEachBackendAndFormat(t, func(t *testing.T, f *fixture) {
		key, keyString := f.apiKey(f.alice, "events", "contacts")
		tok := f.tokenCC(f.cc)             // root account, scopes read write
		bobTok := f.tokenDSP(f.dsp, "bob") // child account
		wantStatus := func(name string, res response, status int) {
			t.Helper()
			if res.status != status {
				t.Errorf("%s: status %d, want %d (body %s)", name, res.status, status, res.body)
			}
		}
		t.Run("identity headers", func(t *testing.T) {
			for name, h := range map[string][]string{
				"bearer":             {"Authorization", "Bearer " + tok},
				"basic key any user": {"Authorization", basicRaw("whoever", keyString)},
				"x-api-key":          {"X-API-Key", keyString},
			} {
				res := f.check("GET", h...)
				wantStatus(name, res, 200)
				if res.header.Get("X-Tollgate-Client-Id") == "" || res.header.Get("X-Tollgate-Account-Id") != strconv.FormatInt(f.root.ID, 10) {
					t.Errorf("%s: identity headers %v", name, res.header)
				}
				if res.header.Get("RateLimit-Policy") == "" || res.header.Get("RateLimit") == "" {
					t.Errorf("%s: no RateLimit headers on an allowed answer: %v", name, res.header)
				}
			}
			res := f.check("POST", "Authorization", "Bearer "+bobTok)
			if res.header.Get("X-Tollgate-Subject") != strconv.FormatInt(f.bob.ID, 10) || res.header.Get("X-Tollgate-Scopes") != "read events" {
				t.Errorf("user token identity = %v", res.header)
			}
			if res := f.check("GET", "X-API-Key", keyString); res.header.Get("X-Tollgate-Client-Id") != strconv.FormatInt(key.ID, 10) {
				t.Errorf("key identity = %v", res.header)
			}
		})
		t.Run("401", func(t *testing.T) {
			for name, h := range map[string][]string{
				"nothing":         nil,
				"bad token":       {"Authorization", "Bearer tg_at_x.y"},
				"key typo":        {"X-API-Key", typo(keyString)},
				"two credentials": {"X-API-Key", keyString, "Authorization", "Bearer " + tok},
			} {
				res := f.check("GET", h...)
				wantStatus(name, res, 401)
				if res.header.Get("WWW-Authenticate") == "" {
					t.Errorf("%s: 401 without WWW-Authenticate", name)
				}
			}
		})
		t.Run("scopes", func(t *testing.T) {
			wantStatus("has scope", f.check("GET", "X-API-Key", keyString, "X-Tollgate-Scope", "events"), 200)
			wantStatus("has both", f.check("GET", "X-API-Key", keyString, "X-Tollgate-Scope", "events contacts"), 200)
			// Every listed scope is required, not any one of them: a
			// credential holding some but not all is refused, whichever
			// it holds and in whatever order they are listed.
			for _, tc := range []struct {
				name, header, value, required string
				want                          int
			}{
				{"key holds the first of two", "X-API-Key", keyString, "events reports", 403},
				{"key holds the second of two", "X-API-Key", keyString, "reports events", 403},
				{"key holds two of three", "X-API-Key", keyString, "contacts reports events", 403},
				{"client token holds the first of two", "Authorization", "Bearer " + tok, "read admin", 403},
				{"client token holds the second of two", "Authorization", "Bearer " + tok, "admin write", 403},
				{"client token holds both", "Authorization", "Bearer " + tok, "write read", 200},
				{"user token holds one of two", "Authorization", "Bearer " + bobTok, "events contacts", 403},
			} {
				res := f.check("GET", tc.header, tc.value, "X-Tollgate-Scope", tc.required)
				wantStatus(tc.name, res, tc.want)
				if tc.want == 403 && tc.header == "Authorization" && !strings.Contains(res.header.Get("WWW-Authenticate"), `error="insufficient_scope", scope="`+tc.required+`"`) {
					t.Errorf("%s: WWW-Authenticate = %q, want insufficient_scope naming %q", tc.name, res.header.Get("WWW-Authenticate"), tc.required)
				}
			}
			res := f.check("GET", "Authorization", "Bearer "+tok, "X-Tollgate-Scope", "events")
			wantStatus("lacks scope", res, 403)
			if !strings.Contains(res.header.Get("WWW-Authenticate"), "insufficient_scope") {
				t.Errorf("WWW-Authenticate = %q, want insufficient_scope", res.header.Get("WWW-Authenticate"))
			}
		})
		t.Run("target account", func(t *testing.T) {
			child := strconv.FormatInt(f.child.ID, 10)
			root := strconv.FormatInt(f.root.ID, 10)
			other := strconv.FormatInt(f.other.ID, 10)
			wantStatus("root credential on child", f.check("GET", "X-API-Key", keyString, "X-Tollgate-Account", child), 200)
			wantStatus("root credential on root", f.check("GET", "X-API-Key", keyString, "X-Tollgate-Account", root), 200)
			wantStatus("root credential on sibling tree", f.check("GET", "X-API-Key", keyString, "X-Tollgate-Account", other), 403)
			wantStatus("child credential on parent", f.check("GET", "Authorization", "Bearer "+bobTok, "X-Tollgate-Account", root), 403)
			wantStatus("bad account header", f.check("GET", "X-API-Key", keyString, "X-Tollgate-Account", "x"), 400)
		})
		t.Run("unknown class", func(t *testing.T) {
			wantStatus("unknown class", f.check("GET", "X-API-Key", keyString, "X-Tollgate-Rate-Class", "nope"), 400)
		})
		t.Run("revoked and disabled", func(t *testing.T) {
			f.post("/oauth/revoke", formCT, form("token", tok), "Authorization", basic(f.cc.ID, f.secretOf[f.cc.ID]))
			wantStatus("revoked token", f.check("GET", "Authorization", "Bearer "+tok), 401)
			if _, err := f.db.UpdateClient(t.Context(), key.ID, func(c *storage.Client) error {
				c.Status = storage.StatusDisabled
				c.Revoke()
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			wantStatus("disabled key", f.check("GET", "X-API-Key", keyString), 401)
		})
	}, roomy)
}

func TestCheckRateLimit(t *testing.T) {
	// The embedded limiter runs on the fixture's clock: no sleeping.
	f := newFixture(t, "embedded")
	_, key := f.apiKey(f.alice, "events")
	for i := 0; i < 3; i++ {
		if res := f.check("GET", "X-API-Key", key); res.status != 200 {
			t.Fatalf("request %d of the burst: %d", i+1, res.status)
		}
	}
	res := f.check("GET", "X-API-Key", key)
	if res.status != http.StatusTooManyRequests {
		t.Fatalf("4th request in one second: %d, want 429", res.status)
	}
	if ra := res.header.Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After = %q, want 1", ra)
	}
	if !strings.Contains(res.header.Get("RateLimit"), "r=0") {
		t.Errorf("RateLimit = %q, want r=0", res.header.Get("RateLimit"))
	}
	// The reports class has its own budget of 1/s.
	if res := f.check("GET", "X-API-Key", key, "X-Tollgate-Rate-Class", "reports"); res.status != 200 {
		t.Errorf("reports class while default is exhausted: %d", res.status)
	}
	if res := f.check("GET", "X-API-Key", key, "X-Tollgate-Rate-Class", "reports"); res.status != 429 {
		t.Errorf("second reports request in one second: %d, want 429", res.status)
	}
	// Another key is not affected.
	_, other := f.apiKey(f.bob, "events")
	if res := f.check("GET", "X-API-Key", other); res.status != 200 {
		t.Errorf("another key: %d", res.status)
	}
	f.clock.advance(time.Second)
	if res := f.check("GET", "X-API-Key", key); res.status != 200 {
		t.Errorf("after a second: %d", res.status)
	}
}

func TestTokenRateLimit(t *testing.T) {
	f := newFixture(t, "embedded", func(c *config.Config) { c.RateLimits.TokenRate = 2 })
	get := func() response {
		return f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basic(f.cc.ID, f.secretOf[f.cc.ID]))
	}
	for i := 0; i < 2; i++ {
		if res := get(); res.status != 200 {
			t.Fatalf("token %d: %d", i+1, res.status)
		}
	}
	res := get()
	wantError(t, res, http.StatusTooManyRequests, "slow_down")
	if res.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	// Another client has its own budget; failed authentications use none.
	if res := f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basic(f.dsp.ID, f.secretOf[f.dsp.ID])); res.status != 200 {
		t.Errorf("another client: %d", res.status)
	}
	f.clock.advance(time.Second)
	if res := get(); res.status != 200 {
		t.Errorf("after a second: %d", res.status)
	}
}

// TestTokenRateLimitAcrossInstances: the token endpoint's per-client limit
// lives in Redis, shared by every instance (the wiring serve uses), so token
// requests of one client spread over three instances in parallel get the
// limit once, not once per instance.
func TestTokenRateLimitAcrossInstances(t *testing.T) {
	const rate = 4 // a second, and the burst
	f := newFixture(t, "postgres+redis", func(c *config.Config) { c.RateLimits.TokenRate = rate })
	instances := []*fixture{f, f.secondInstance(), f.secondInstance()}
	auth := basic(f.cc.ID, f.secretOf[f.cc.ID])
	const workers, perWorker = 4, 5 // per instance
	var (
		issued, refused atomic.Int64
		wg              sync.WaitGroup
	)
	start := time.Now()
	for _, in := range instances {
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range perWorker {
					req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, in.srv.URL+"/oauth/token",
						strings.NewReader("grant_type=client_credentials"))
					if err != nil {
						t.Error(err)
						return
					}
					req.Header.Set("Content-Type", formCT)
					req.Header.Set("Authorization", auth)
					res, err := in.srv.Client().Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					body, _ := io.ReadAll(res.Body)
					_ = res.Body.Close()
					switch res.StatusCode {
					case http.StatusOK:
						issued.Add(1)
					case http.StatusTooManyRequests:
						var e struct{ Error string }
						if err := json.Unmarshal(body, &e); err != nil || e.Error != "slow_down" {
							t.Errorf("429 body %s, want error slow_down", body)
						}
						if res.Header.Get("Retry-After") == "" {
							t.Error("429 without Retry-After")
						}
						refused.Add(1)
					default:
						t.Errorf("token: status %d, body %s", res.StatusCode, body)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	// The limit refills at rate a second on Redis's clock: at most the burst
	// plus what refilled while the requests ran, and never less than the burst.
	most := int64(rate + math.Ceil(elapsed.Seconds()*rate))
	if n := issued.Load(); n < rate || n > most {
		t.Errorf("%d tokens issued over 3 instances in %v, want %d to %d (limit %d a second)", n, elapsed, rate, most, rate)
	}
	if total := issued.Load() + refused.Load(); total != 3*workers*perWorker {
		t.Errorf("%d answers, want %d", total, 3*workers*perWorker)
	}
	t.Logf("3 instances × %d workers: %d issued, %d refused (slow_down) in %v", workers, issued.Load(), refused.Load(), elapsed.Round(time.Millisecond))
}

func TestCheckRateLimitOverride(t *testing.T) {
	f := newFixture(t, "embedded")
	alice := bearer(f.tokenDSP(f.dsp, "alice"))
	created := f.apiJSON("POST", "/keys", alice, `{"name":"bulk","rate_limits":{"default":{"rate":5,"burst":5}}}`, http.StatusCreated)
	key := created["key"].(string)
	f.secrets = append(f.secrets, key)
	if rl, _ := created["rate_limits"].(map[string]any); rl["default"] == nil {
		t.Fatalf("created key shows no override: %v", created)
	}
	for i := 0; i < 5; i++ {
		if res := f.check("GET", "X-API-Key", key); res.status != 200 {
			t.Fatalf("request %d under a 5/s override: %d", i+1, res.status)
		}
	}
	if res := f.check("GET", "X-API-Key", key); res.status != http.StatusTooManyRequests {
		t.Errorf("6th request under a 5/s override: %d, want 429", res.status)
	}
	// The reports class keeps the configured 1/s.
	f.check("GET", "X-API-Key", key, "X-Tollgate-Rate-Class", "reports")
	if res := f.check("GET", "X-API-Key", key, "X-Tollgate-Rate-Class", "reports"); res.status != http.StatusTooManyRequests {
		t.Errorf("reports class: %d, want 429 at the configured 1/s", res.status)
	}
	admProblem(t, f.apiDo("PATCH", "/keys/"+id(created), alice, `{"rate_limits":{"nope":{"rate":1,"burst":1}}}`), http.StatusUnprocessableEntity, "rate_limits")
	admProblem(t, f.apiDo("PATCH", "/keys/"+id(created), alice, `{"rate_limits":{"default":{"rate":0,"burst":1}}}`), http.StatusUnprocessableEntity, "rate_limits")
	// Removing the overrides.
	if got := f.apiJSON("PATCH", "/keys/"+id(created), alice, `{"rate_limits":{}}`, http.StatusOK); got["rate_limits"] != nil {
		t.Errorf("rate_limits after {} = %v, want none", got["rate_limits"])
	}
}
