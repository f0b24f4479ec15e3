package e2e

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/internal/app"
	bfredis "github.com/tollgate/tollgate/pkg/bruteforce/redis"
	redismeter "github.com/tollgate/tollgate/pkg/meter/redis"
	rlredis "github.com/tollgate/tollgate/pkg/ratelimit/redis"
	"github.com/tollgate/tollgate/storage/redis/redistest"
	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

// TestEveryLogLineCarriesTheRequestID drives every surface of the wired
// app and wants every line logged while a request was served, whatever
// package wrote it, to carry the request id the answer returned. The
// brute-force counters and the rate limiter are on a Redis nobody listens
// on (the limiter failing open), so that the brute-force protection, the
// limiter and the handlers log lines of their own during each request, not
// only the access log line. The fixture's log check (leakcheck) then finds
// no secret in any of them.
func TestEveryLogLineCarriesTheRequestID(t *testing.T) {
	// Nothing listens on port 1: every command fails at once.
	down := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", DialTimeout: time.Second, MaxRetries: -1})
	t.Cleanup(func() { down.Close() })
	client, prefix := redistest.New(t)
	c := &clock{t: time.Now().UTC().Truncate(time.Second).Add(700 * time.Millisecond)}
	be := app.RedisBackends(client, prefix, c.now)
	be.Failures = bfredis.New(down, bfredis.Options{KeyPrefix: prefix + "bf:"})
	be.Limiter = rlredis.New(down, rlredis.Options{KeyPrefix: prefix + "rl:"})
	downMeter := redismeter.New(down, redismeter.Options{KeyPrefix: prefix})
	be.Meter, be.Counter = downMeter, downMeter
	f := newFixtureOn(t, c, sqltest.Postgres(t), be, func(c *config.Config) {
		c.RateLimits.FailOpen = true
		c.RateLimits.TokenRate = 100
	})
	_, key := f.apiKey(f.alice, "events")
	ccToken := f.tokenCC(f.cc)
	alice := f.admUser("alice")

	// served runs one request and checks the lines logged meanwhile.
	served := func(t *testing.T, status int, do func() (int, http.Header, string)) {
		t.Helper()
		before := len(f.logs.String())
		got, header, body := do()
		if got != status {
			t.Fatalf("status %d, want %d; body %s", got, status, body)
		}
		id := header.Get("X-Request-Id")
		if id == "" {
			t.Fatal("the answer has no X-Request-Id")
		}
		lines := strings.Split(strings.TrimSpace(f.logs.String()[before:]), "\n")
		var own int // lines other than the access log line
		for _, line := range lines {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			if m["request_id"] != id {
				t.Errorf("line %q: request_id %v, want %q", m["msg"], m["request_id"], id)
			}
			if strings.Count(line, `"request_id":`) != 1 {
				t.Errorf("line %q has request_id more than once: %s", m["msg"], line)
			}
			if m["msg"] != "request" {
				own++
			}
		}
		if own == 0 {
			t.Fatalf("no line besides the access log line was logged (the test proves little):\n%s", strings.Join(lines, "\n"))
		}
	}
	post := func(path, contentType, body string, header ...string) func() (int, http.Header, string) {
		return func() (int, http.Header, string) {
			res := f.post(path, contentType, body, header...)
			return res.status, res.header, string(res.body)
		}
	}

	t.Run("token", func(t *testing.T) {
		served(t, http.StatusOK, post("/oauth/token", formCT, form("grant_type", "client_credentials"),
			"Authorization", basic(f.cc.ID, f.secretOf[f.cc.ID])))
	})
	t.Run("introspection", func(t *testing.T) {
		// A wrong secret: the brute-force protection counts it, and logs
		// that it cannot.
		served(t, http.StatusUnauthorized, post("/oauth/introspect", formCT, form("token", ccToken),
			"Authorization", basic(f.rs.ID, typo(f.secretOf[f.rs.ID]))))
	})
	t.Run("revocation", func(t *testing.T) {
		// Another client's token: ignored, and logged by the handler.
		served(t, http.StatusOK, post("/oauth/revoke", formCT, form("token", ccToken),
			"Authorization", basic(f.dsp.ID, f.secretOf[f.dsp.ID])))
	})
	t.Run("check", func(t *testing.T) {
		served(t, http.StatusOK, func() (int, http.Header, string) {
			res := f.check(http.MethodGet, "X-API-Key", key)
			return res.status, res.header, string(res.body)
		})
	})
	t.Run("management API", func(t *testing.T) {
		served(t, http.StatusForbidden, func() (int, http.Header, string) {
			res := f.admDo(t, alice, http.MethodPost, "/users/"+strconv.FormatInt(f.alice.ID, 10)+"/password",
				admBody(map[string]any{"old_password": "not-the-password!", "password": testPassword}))
			return res.status, res.header, string(res.body)
		})
	})
	t.Run("console", func(t *testing.T) {
		b := f.browser(t)
		b.get("/console/signin").want(t, http.StatusOK)
		served(t, http.StatusSeeOther, func() (int, http.Header, string) {
			p := b.post("/console/signin", "username", "alice", "password", testPassword)
			return p.status, p.header, p.body
		})
	})
	t.Run("key session", func(t *testing.T) {
		served(t, http.StatusOK, post("/auth/access/session", "", "", "X-API-Key", key))
	})

	// The client, once named, is on the lines too: the limiter's, here.
	wantLine := `"msg":"rate limiter unavailable; failing open"`
	var found bool
	for line := range strings.SplitSeq(f.logs.String(), "\n") {
		if strings.Contains(line, wantLine) && strings.Contains(line, `"client_id":`+strconv.FormatInt(f.cc.ID, 10)) {
			found = true
		}
	}
	if !found {
		t.Errorf("no limiter line names client %d:\n%s", f.cc.ID, f.logs.String())
	}
}
