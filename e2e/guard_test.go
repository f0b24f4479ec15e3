package e2e

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/pkg/guard"
	"github.com/tollgate/tollgate/storage"
)

// guarded is a resource server: pkg/guard in front of a handler that
// answers the identity it was given, asking the fixture's real check
// endpoint. The guard logs into the fixture's logs, so checkLogs also
// proves it never logs a credential.
func (f *fixture) guarded(opts guard.Options, route ...guard.RouteOption) *httptest.Server {
	f.t.Helper()
	opts.CheckURL = f.srv.URL + "/auth/check"
	opts.HTTPClient = f.srv.Client()
	opts.Logger = slog.New(slog.NewJSONHandler(f.logs, nil))
	if opts.Now == nil {
		opts.Now = f.clock.now
	}
	g := guard.New(opts)
	api := httptest.NewServer(g.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := guard.IdentityFrom(r.Context())
		if !ok {
			http.Error(w, "no identity", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(id)
	}), route...))
	f.t.Cleanup(api.Close)
	return api
}

// call calls the resource server api as a platform's customer does.
func (f *fixture) call(api *httptest.Server, path string, header ...string) response {
	f.t.Helper()
	req, err := http.NewRequestWithContext(f.t.Context(), http.MethodGet, api.URL+path, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	res, err := api.Client().Do(req)
	if err != nil {
		f.t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: body}
}

func (r response) identity(t *testing.T) guard.Identity {
	t.Helper()
	var id guard.Identity
	if err := json.Unmarshal(r.body, &id); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return id
}

func TestGuard(t *testing.T) {
	roomy := func(c *config.Config) { c.RateLimits.Classes = map[string]string{"default": "1000", "reports": "1000"} }
	forEachBackend(t, func(t *testing.T, f *fixture) {
		key, keyString := f.apiKey(f.alice, "events", "contacts")
		_, contactsOnly := f.apiKey(f.alice, "contacts")
		tok := f.tokenCC(f.cc)             // root account, scopes read write
		bobTok := f.tokenDSP(f.dsp, "bob") // child account, scopes read events
		account := func(r *http.Request) string { return r.URL.Query().Get("account") }
		api := f.guarded(guard.Options{}, guard.Scopes("events"), guard.AccountFrom(account))

		t.Run("allowed", func(t *testing.T) {
			for name, h := range map[string][]string{
				"x-api-key":          {"X-API-Key", keyString},
				"basic key any user": {"Authorization", basicRaw("whoever", keyString)},
			} {
				res := f.call(api, "/v1/events", h...)
				if res.status != http.StatusOK {
					t.Fatalf("%s: status %d, body %s", name, res.status, res.body)
				}
				id := res.identity(t)
				want := guard.Identity{ClientID: key.ID, AccountID: f.root.ID, Subject: strconv.FormatInt(key.ID, 10), Scopes: []string{"events", "contacts"}}
				if id.ClientID != want.ClientID || id.AccountID != want.AccountID || id.Subject != want.Subject || !slices.Equal(id.Scopes, want.Scopes) {
					t.Errorf("%s: identity = %+v, want %+v", name, id, want)
				}
				if res.header.Get("RateLimit-Policy") == "" || res.header.Get("RateLimit") == "" {
					t.Errorf("%s: no RateLimit headers on an allowed answer: %v", name, res.header)
				}
			}
			res := f.call(api, "/v1/events", "Authorization", "Bearer "+bobTok)
			if res.status != http.StatusOK {
				t.Fatalf("user token: status %d, body %s", res.status, res.body)
			}
			if id := res.identity(t); id.Subject != strconv.FormatInt(f.bob.ID, 10) || id.AccountID != f.child.ID || id.ClientID != f.dsp.ID {
				t.Errorf("user token identity = %+v, want subject %d, account %d, client %d", id, f.bob.ID, f.child.ID, f.dsp.ID)
			}
		})
		t.Run("refused", func(t *testing.T) {
			tests := []struct {
				name      string
				path      string
				header    []string
				status    int
				challenge string // in WWW-Authenticate
			}{
				{"no credential", "/v1/events", nil, 401, "Bearer"},
				{"bad key", "/v1/events", []string{"X-API-Key", typo(keyString)}, 401, "Basic"},
				{"bad token", "/v1/events", []string{"Authorization", "Bearer tg_at_x.y"}, 401, "invalid_token"},
				{"key without the scope", "/v1/events", []string{"X-API-Key", contactsOnly}, 403, ""},
				{"token without the scope", "/v1/events", []string{"Authorization", "Bearer " + tok}, 403, "insufficient_scope"},
				{"child credential on the parent", "/v1/events?account=" + strconv.FormatInt(f.root.ID, 10), []string{"Authorization", "Bearer " + bobTok}, 403, ""},
				{"root credential on a sibling tree", "/v1/events?account=" + strconv.FormatInt(f.other.ID, 10), []string{"X-API-Key", keyString}, 403, ""},
				{"caller picks its own scope", "/v1/events", []string{"X-API-Key", contactsOnly, "X-Tollgate-Scope", "contacts"}, 403, ""},
			}
			for _, tt := range tests {
				res := f.call(api, tt.path, tt.header...)
				if res.status != tt.status {
					t.Errorf("%s: status %d, want %d (body %s)", tt.name, res.status, tt.status, res.body)
					continue
				}
				if tt.challenge != "" && !strings.Contains(strings.Join(res.header.Values("WWW-Authenticate"), ", "), tt.challenge) {
					t.Errorf("%s: WWW-Authenticate = %q, want it to name %s", tt.name, res.header.Values("WWW-Authenticate"), tt.challenge)
				}
				var body struct{ Error string }
				if err := json.Unmarshal(res.body, &body); err != nil || body.Error == "" {
					t.Errorf("%s: body %q is not a JSON error", tt.name, res.body)
				}
			}
			if res := f.call(api, "/v1/events?account="+strconv.FormatInt(f.child.ID, 10), "X-API-Key", keyString); res.status != http.StatusOK {
				t.Errorf("root credential on its child account: status %d, want 200 (body %s)", res.status, res.body)
			}
		})
		t.Run("every scope of the route is required", func(t *testing.T) {
			_, eventsOnly := f.apiKey(f.alice, "events")
			both := f.guarded(guard.Options{}, guard.Scopes("events", "contacts"))
			cached := f.guarded(guard.Options{CacheTTL: time.Minute}, guard.Scopes("events", "contacts"), guard.NoRateLimit())
			for _, tc := range []struct {
				name string
				api  *httptest.Server
				key  string
				want int
			}{
				{"key holding the first scope only", both, eventsOnly, 403},
				{"key holding the second scope only", both, contactsOnly, 403},
				{"key holding both", both, keyString, 200},
				{"key holding the first scope only, cached route", cached, eventsOnly, 403},
				{"key holding the second scope only, cached route", cached, contactsOnly, 403},
				{"key holding both, cached route", cached, keyString, 200},
			} {
				if res := f.call(tc.api, "/v1/events", "X-API-Key", tc.key); res.status != tc.want {
					t.Errorf("%s: status %d, want %d (body %s)", tc.name, res.status, tc.want, res.body)
				}
			}
		})
		t.Run("disabled key refused within CacheTTL", func(t *testing.T) {
			const ttl = 2 * time.Second
			cached := f.guarded(guard.Options{CacheTTL: ttl}, guard.Scopes("events"), guard.NoRateLimit())
			k, ks := f.apiKey(f.alice, "events")
			if res := f.call(cached, "/v1/events", "X-API-Key", ks); res.status != http.StatusOK {
				t.Fatalf("before disabling: status %d, body %s", res.status, res.body)
			}
			if _, err := f.db.UpdateClient(t.Context(), k.ID, func(c *storage.Client) error {
				c.Status = storage.StatusDisabled
				c.Revoke()
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			// The cache is what makes this route cheap: inside the TTL the
			// guard does not ask.
			if res := f.call(cached, "/v1/events", "X-API-Key", ks); res.status != http.StatusOK {
				t.Errorf("inside the TTL: status %d, want the cached 200", res.status)
			}
			f.clock.advance(ttl)
			if res := f.call(cached, "/v1/events", "X-API-Key", ks); res.status != http.StatusUnauthorized {
				t.Errorf("a TTL after disabling: status %d, want 401 (body %s)", res.status, res.body)
			}
			// Without the cache the refusal is immediate.
			if res := f.call(api, "/v1/events", "X-API-Key", ks); res.status != http.StatusUnauthorized {
				t.Errorf("uncached route: status %d, want 401", res.status)
			}
		})
	}, roomy)
}

func TestGuardRateLimit(t *testing.T) {
	// The embedded limiter runs on the fixture's clock: default is 3/s,
	// reports 1/s.
	f := newFixture(t, "embedded")
	_, key := f.apiKey(f.alice, "events")
	g := guard.Options{CacheTTL: time.Minute} // rate-limited routes must not use it
	events := f.guarded(g, guard.Scopes("events"))
	reports := f.guarded(g, guard.Scopes("events"), guard.Class("reports"))
	for i := range 3 {
		if res := f.call(events, "/v1/events", "X-API-Key", key); res.status != http.StatusOK {
			t.Fatalf("request %d of the burst: status %d, body %s", i+1, res.status, res.body)
		}
	}
	res := f.call(events, "/v1/events", "X-API-Key", key)
	if res.status != http.StatusTooManyRequests {
		t.Fatalf("4th request in one second: status %d, want 429 (body %s)", res.status, res.body)
	}
	if got := res.header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q, want 1", got)
	}
	if got := res.header.Get("RateLimit"); !strings.Contains(got, "r=0") {
		t.Errorf("RateLimit = %q, want r=0", got)
	}
	if got := res.header.Get("RateLimit-Policy"); got != `"default";q=3;w=1` {
		t.Errorf("RateLimit-Policy = %q, want \"default\";q=3;w=1", got)
	}
	var body struct{ Error string }
	if err := json.Unmarshal(res.body, &body); err != nil || body.Error != "rate_limited" {
		t.Errorf("body = %s, want error rate_limited", res.body)
	}
	// The caller cannot escape its exhausted class by naming another
	// (reports still has room).
	if res := f.call(events, "/v1/events", "X-API-Key", key, "X-Tollgate-Rate-Class", "reports"); res.status != http.StatusTooManyRequests {
		t.Errorf("caller naming another class: status %d, want 429", res.status)
	}
	if res := f.call(reports, "/v1/reports", "X-API-Key", key); res.status != http.StatusOK {
		t.Errorf("reports while default is exhausted: status %d, want 200", res.status)
	}
	if res := f.call(reports, "/v1/reports", "X-API-Key", key); res.status != http.StatusTooManyRequests {
		t.Errorf("2nd reports request in one second: status %d, want 429", res.status)
	}
	f.clock.advance(time.Second)
	if res := f.call(events, "/v1/events", "X-API-Key", key); res.status != http.StatusOK {
		t.Errorf("a second later: status %d, want 200", res.status)
	}
}
