// Package e2e holds the end-to-end suites: every endpoint, the management
// API, the console, the CLI's server side and the security rules, driven
// through httptest against the whole application as internal/app wires it
// (app.New), on the embedded backends and on PostgreSQL and Redis. The
// fixture is exported (Fixture) for the suites of package main that run the
// management CLI against it; StopAtCleanup serves the suites that start
// processes.
package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/internal/app"
	"github.com/tollgate/tollgate/internal/leakcheck"
	bfmemory "github.com/tollgate/tollgate/pkg/bruteforce/memory"
	memmeter "github.com/tollgate/tollgate/pkg/meter/memory"
	rlmemory "github.com/tollgate/tollgate/pkg/ratelimit/memory"
	"github.com/tollgate/tollgate/pkg/secret"
	"github.com/tollgate/tollgate/pkg/token"
	"github.com/tollgate/tollgate/pkg/usage"
	usagememory "github.com/tollgate/tollgate/pkg/usage/memory"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/cache"
	"github.com/tollgate/tollgate/storage/memory"
	"github.com/tollgate/tollgate/storage/redis/redistest"
	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

// testPassword is every fixture user's password.
const testPassword = "correct horse battery staple"

// fixture is a wired server over real testBackends with a small tenant tree:
//
//	root ── child
//	other (a second root: a sibling tree)
type fixture struct {
	t   *testing.T
	srv *httptest.Server
	ops *httptest.Server
	db  *cache.Store // the cached store the server uses: writes through it are seen at once
	// signingKeys is the database under db, where the signing keys are.
	signingKeys storage.SigningKeys
	tokens      app.TokenStore
	hasher      *secret.Hasher
	// passwords is the server's password hasher, whose Derivations tests
	// count.
	passwords *secret.Passwords
	logs      *lockedBuffer
	clock     *clock
	cfg       config.Config
	keys      config.Keys
	app       *app.App
	secrets   []string // every secret the test handed out, to grep the logs for
	// redis and redisPrefix are the fixture's Redis keys (nil on the
	// embedded backend), for tests that check what was stored.
	redis       goredis.UniversalClient
	redisPrefix string
	// counts are the in-process usage counts (nil on postgres+redis, where
	// they are in Redis under redisPrefix).
	counts usage.MinuteReader

	root, child, other          storage.Account
	alice, bob, carol, disabled storage.User
	// clients and their secrets
	cc, dsp, rs, childRS, off, expired, weird storage.Client
	secretOf                                  map[int64]string
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// testBackends lists the storage setups every end-to-end test runs on.
var testBackends = []string{"embedded", "postgres+redis"}

// newFixture wires a server on the named backend.
func newFixture(t *testing.T, backend string, opts ...func(*config.Config)) *fixture {
	t.Helper()
	// A sub-second offset, as real clocks have.
	c := &clock{t: time.Now().UTC().Truncate(time.Second).Add(700 * time.Millisecond)}
	switch backend {
	case "embedded":
		counts := usagememory.New(c.now)
		return newFixtureOn(t, c, sqltest.SQLite(t), app.Backends{Tokens: memory.New(memory.Options{Now: c.now}),
			Limiter: rlmemory.New(rlmemory.Options{Now: c.now}), Failures: bfmemory.New(bfmemory.Options{Now: c.now}),
			Meter: memmeter.New(memmeter.Options{Counter: counts, Now: c.now}), Counter: counts, Counts: counts}, opts...)
	case "postgres+redis":
		client, prefix := redistest.New(t)
		// The Redis stores exactly as serve builds them (tokens, rate
		// limits, brute-force counters), on the test clock.
		f := newFixtureOn(t, c, sqltest.Postgres(t), app.RedisBackends(client, prefix, c.now), opts...)
		f.redis, f.redisPrefix = client, prefix
		return f
	}
	t.Fatalf("unknown backend %q", backend)
	return nil
}

// newFixtureOn wires a server on the database at dbURL and the tokens,
// rate limits and brute-force counters of be. The console's sessions stay
// in process, whatever be holds: the console tests move the test clock past
// session lifetimes, which Redis's own expiry does not follow.
func newFixtureOn(t *testing.T, c *clock, dbURL string, be app.Backends, opts ...func(*config.Config)) *fixture {
	t.Helper()
	f := &fixture{t: t, logs: &lockedBuffer{}, clock: c, tokens: be.Tokens, secretOf: map[int64]string{}, counts: be.Counts}
	cfg := config.Default()
	cfg.Issuer = "https://auth.example.test"
	cfg.Credentials.AccessRights = config.DefaultAccessRights()
	cfg.Credentials.DefaultGrantTypes = config.DefaultGrantTypes(cfg.Grants.EskimiDSPName)
	cfg.RateLimits.Classes = config.DefaultRateClasses()
	// Most tests issue many tokens from one client; the token rate has tests
	// of its own.
	cfg.RateLimits.TokenRate = 0
	for _, o := range opts {
		o(&cfg)
	}
	cfg.Database.URL = dbURL
	f.cfg = cfg
	// The logger serve builds, at level debug.
	logger := app.NewLogger(config.Log{Level: "debug", Format: "json"}, f.logs)
	raw, err := app.OpenDatabase(t.Context(), cfg, true, logger)
	if err != nil {
		t.Fatalf("open database: %v", err)
	}
	t.Cleanup(func() { raw.Close() })
	db := cache.New(raw, cache.Options{Logger: logger})
	f.db = db
	f.signingKeys = raw
	keys := config.Keys{
		TokenSecret:      []byte("0123456789abcdef0123456789abcdef-token"),
		PepperID:         "1",
		Pepper:           []byte("0123456789abcdef0123456789abcdef-pepper"),
		KeyEncryptionKey: []byte("0123456789abcdef0123456789abcdef"),
	}
	f.keys = keys
	if f.hasher, err = app.NewHasher(keys); err != nil {
		t.Fatal(err)
	}
	passwords, err := secret.NewPasswords(secret.Argon2Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	if err != nil {
		t.Fatal(err)
	}
	f.passwords = passwords
	a, err := app.New(cfg, app.Deps{Keys: keys, DB: db, SigningKeys: raw, Tokens: f.tokens, Limiter: be.Limiter, Meter: be.Meter, TokenMeter: be.TokenMeter, Counter: be.Counter, Failures: be.Failures,
		OneTimeIDs: be.OneTimeIDs, Proofs: be.Proofs, QuotaSpent: be.QuotaSpent, Counts: be.Counts, Usage: raw, Passwords: passwords, Logger: logger, Now: f.clock.now})
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	f.app = a
	f.srv = httptest.NewServer(a.Public())
	t.Cleanup(f.srv.Close)
	f.ops = httptest.NewServer(a.Ops())
	t.Cleanup(f.ops.Close)

	ctx := t.Context()
	mustAccount := func(name string, parent int64) storage.Account {
		acc, err := db.CreateAccount(ctx, storage.Account{Name: name, ParentID: parent, Status: storage.StatusActive})
		if err != nil {
			t.Fatalf("create account: %v", err)
		}
		return acc
	}
	f.root = mustAccount("root", 0)
	f.child = mustAccount("child", f.root.ID)
	f.other = mustAccount("other", 0)
	mustUser := func(name string, account int64, status storage.Status) storage.User {
		hash, err := passwords.Hash(testPassword)
		if err != nil {
			t.Fatal(err)
		}
		u, err := db.CreateUser(ctx, storage.User{AccountID: account, Username: name, PasswordHash: hash,
			Role: storage.RoleAdmin, Status: status})
		if err != nil {
			t.Fatalf("create user: %v", err)
		}
		return u
	}
	f.alice = mustUser("alice", f.root.ID, storage.StatusActive)
	f.bob = mustUser("bob", f.child.ID, storage.StatusActive)
	f.carol = mustUser("carol", f.other.ID, storage.StatusActive)
	f.disabled = mustUser("dave", f.root.ID, storage.StatusDisabled)

	f.cc = f.client(storage.Client{AccountID: f.root.ID, Name: "cc", GrantTypes: []string{"client_credentials"}, Scopes: []string{"read", "write"}})
	f.dsp = f.client(storage.Client{AccountID: f.root.ID, Name: "dsp", GrantTypes: []string{"client_credentials", "eskimi_dsp"}, Scopes: []string{"read", "events"}, TokenLifetime: 2 * time.Hour})
	f.rs = f.client(storage.Client{AccountID: f.root.ID, Name: "resource server", GrantTypes: []string{"client_credentials"}, MayIntrospect: true})
	f.childRS = f.client(storage.Client{AccountID: f.child.ID, Name: "child resource server", GrantTypes: []string{"client_credentials"}, MayIntrospect: true})
	f.off = f.client(storage.Client{AccountID: f.root.ID, Name: "off", GrantTypes: []string{"client_credentials"}, Status: storage.StatusDisabled})
	f.expired = f.client(storage.Client{AccountID: f.root.ID, Name: "expired", GrantTypes: []string{"client_credentials"}, ExpiresAt: f.clock.now().Add(-time.Minute)})
	f.weird = f.clientWithSecret(storage.Client{AccountID: f.root.ID, Name: "weird", GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"}}, "a+b%c:d e/f?&=")

	t.Cleanup(f.checkLogs)
	return f
}

func (f *fixture) client(c storage.Client) storage.Client {
	s, err := secret.Generate()
	if err != nil {
		f.t.Fatal(err)
	}
	return f.clientWithSecret(c, s)
}

func (f *fixture) clientWithSecret(c storage.Client, s string) storage.Client {
	f.t.Helper()
	hash, err := f.hasher.Hash(f.t.Context(), []byte(s))
	if err != nil {
		f.t.Fatal(err)
	}
	c.SecretHash = string(hash)
	if c.Status == "" {
		c.Status = storage.StatusActive
	}
	created, err := f.db.CreateClient(f.t.Context(), c)
	if err != nil {
		f.t.Fatalf("create client: %v", err)
	}
	f.secretOf[created.ID] = s
	f.secrets = append(f.secrets, s)
	return created
}

// checkLogs fails the test if any secret, password, token or key reached a
// log line, in any encoding leakcheck knows (a logged Basic header is
// base64 of id:secret).
func (f *fixture) checkLogs() {
	var m leakcheck.Matcher
	for id, s := range f.secretOf {
		m.Credential("a client secret", strconv.FormatInt(id, 10), s)
	}
	for _, s := range f.secrets {
		m.Secret("a secret or key the test handed out", s)
	}
	m.Secret("the users' password", testPassword)
	m.Secret("the token secret", string(f.keys.TokenSecret))
	m.Secret("the pepper", string(f.keys.Pepper))
	m.Marker("a token", token.AccessPrefix)
	m.Marker("a secret hash", "tgh1$")
	m.Marker("a password hash", "$argon2id$")
	for _, what := range m.Find(f.logs.String()) {
		f.t.Errorf("the logs hold %s", what)
	}
}

// response is an answer read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

func (f *fixture) do(req *http.Request) response {
	f.t.Helper()
	res, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: body}
}

func (f *fixture) post(path, contentType, body string, header ...string) response {
	f.t.Helper()
	req, err := http.NewRequestWithContext(f.t.Context(), http.MethodPost, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	return f.do(req)
}

func basic(id int64, secret string) string {
	raw := url.QueryEscape(strconv.FormatInt(id, 10)) + ":" + url.QueryEscape(secret)
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(raw))
}

// basicRaw is a Basic Authorization header of user and password as given.
func basicRaw(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

func form(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}

const formCT = "application/x-www-form-urlencoded"

// tokenCC gets a client_credentials token for c with Basic auth.
func (f *fixture) tokenCC(c storage.Client, extra ...string) string {
	f.t.Helper()
	res := f.post("/oauth/token", formCT, form(append([]string{"grant_type", "client_credentials"}, extra...)...),
		"Authorization", basic(c.ID, f.secretOf[c.ID]))
	if res.status != http.StatusOK {
		f.t.Fatalf("token for client %d: status %d, body %s", c.ID, res.status, res.body)
	}
	return res.json(f.t)["access_token"].(string)
}

// tokenDSP gets an eskimi_dsp token with a JSON body.
func (f *fixture) tokenDSP(c storage.Client, username string) string {
	f.t.Helper()
	body := `{"grant_type":"eskimi_dsp","username":"` + username + `","password":"` + testPassword +
		`","client_id":` + strconv.FormatInt(c.ID, 10) + `,"client_secret":"` + f.secretOf[c.ID] + `"}`
	res := f.post("/oauth/token", "application/json", body)
	if res.status != http.StatusOK {
		f.t.Fatalf("eskimi_dsp token: status %d, body %s", res.status, res.body)
	}
	return res.json(f.t)["access_token"].(string)
}

// introspect introspects tok as the resource server rs.
func (f *fixture) introspect(rs storage.Client, tok string) response {
	f.t.Helper()
	return f.post("/oauth/introspect", formCT, form("token", tok), "Authorization", basic(rs.ID, f.secretOf[rs.ID]))
}

func (f *fixture) active(tok string) bool {
	f.t.Helper()
	res := f.introspect(f.rs, tok)
	if res.status != http.StatusOK {
		f.t.Fatalf("introspect: status %d, body %s", res.status, res.body)
	}
	if !res.json(f.t)["active"].(bool) {
		if got := string(res.body); got != `{"active":false}` {
			f.t.Errorf("inactive answer = %s, want exactly {\"active\":false}", got)
		}
		return false
	}
	return true
}

// wantError checks an RFC 6749 §5.2 error answer.
func wantError(t *testing.T, res response, status int, code string) {
	t.Helper()
	if res.status != status {
		t.Errorf("status = %d, want %d (body %s)", res.status, status, res.body)
	}
	if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var body struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(res.body, &body); err != nil {
		t.Fatalf("error body %q: %v", res.body, err)
	}
	if body.Error != code {
		t.Errorf("error = %q, want %q (body %s)", body.Error, code, res.body)
	}
	if got := res.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	if got := res.header.Get("Pragma"); got != "no-cache" {
		t.Errorf("Pragma = %q, want no-cache", got)
	}
	if status == http.StatusUnauthorized && !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Basic") {
		t.Errorf("WWW-Authenticate = %q, want Basic", res.header.Get("WWW-Authenticate"))
	}
}

// forEachBackend runs test on every backend, with the fixture's
// configuration changed by opts.
func forEachBackend(t *testing.T, test func(t *testing.T, f *fixture), opts ...func(*config.Config)) {
	for _, b := range testBackends {
		t.Run(b, func(t *testing.T) {
			test(t, newFixture(t, b, opts...))
		})
	}
}

// forEachBackendAndFormat runs test on every backend, once with the
// fixture's clients issuing opaque tokens and once issuing JWT access
// tokens: the lifecycle of a token does not depend on its format.
func forEachBackendAndFormat(t *testing.T, test func(t *testing.T, f *fixture), opts ...func(*config.Config)) {
	for _, b := range testBackends {
		for _, strategy := range []string{storage.StrategyOpaque, storage.StrategyJWT} {
			t.Run(b+"/"+strategy, func(t *testing.T) {
				f := newFixture(t, b, opts...)
				for _, c := range []*storage.Client{&f.cc, &f.dsp} {
					updated, err := f.db.UpdateClient(t.Context(), c.ID, func(c *storage.Client) error {
						c.AccessTokenStrategy = strategy
						return nil
					})
					if err != nil {
						t.Fatal(err)
					}
					*c = updated
				}
				if isJWT := strings.Count(f.tokenCC(f.cc), ".") == 2; isJWT != (strategy == storage.StrategyJWT) {
					t.Fatalf("a %s client got a token that is a JWT: %v", strategy, isJWT)
				}
				test(t, f)
			})
		}
	}
}

// typo changes the last character of s to a different one.
func typo(s string) string {
	c := byte('0')
	if s[len(s)-1] == '0' {
		c = '1'
	}
	return s[:len(s)-1] + string(c)
}

// rollUp flushes the token endpoint's counts, moves the clock past the
// grace and copies the closed minutes into the database.
func (f *fixture) rollUp(t *testing.T) {
	t.Helper()
	if err := f.app.UsageCounter().Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.clock.advance(4 * time.Minute)
	if _, err := f.app.Rollup().RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
}
