package e2e

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/storage"
)

// nginxBinary returns Debian's nginx. CI installs it (.ci/run), so under
// CI=true its absence fails the test instead of skipping it.
func nginxBinary(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"nginx", "/usr/sbin/nginx"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("nginx not found (CI=true, not skipping): apt-get install -y nginx")
	}
	t.Skip("nginx not installed (apt-get install -y nginx)")
	return ""
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// replaceOnce replaces old in s and fails t unless it occurs exactly once,
// so the example cannot drift away from what this test runs.
func replaceOnce(t *testing.T, s, old, replacement string) string {
	t.Helper()
	if n := strings.Count(s, old); n != 1 {
		t.Fatalf("docs/examples/nginx.conf has %q %d times, want once", old, n)
	}
	return strings.Replace(s, old, replacement, 1)
}

// startNginx runs docs/examples/nginx.conf, with only the addresses and the
// process's own files changed, in front of tollgate and api. It returns the
// base URL and a function returning nginx's error log.
func startNginx(t *testing.T, tollgate, api string) (string, func() string) {
	t.Helper()
	bin := nginxBinary(t)
	dir := t.TempDir()
	for _, sub := range []string{"logs", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	example, err := os.ReadFile("../docs/examples/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	protect, err := os.ReadFile("../docs/examples/tollgate_protect.conf")
	if err != nil {
		t.Fatal(err)
	}
	listen := freePort(t)
	conf := string(example)
	conf = replaceOnce(t, conf, "server 127.0.0.1:8080;", "server "+tollgate+";")
	conf = replaceOnce(t, conf, "server 127.0.0.1:9000;", "server "+api+";")
	conf = replaceOnce(t, conf, "listen 8000;", "listen "+listen+";")
	// Files of this nginx process only, so the test runs without root.
	conf = replaceOnce(t, conf, "http {\n", "http {\n"+
		"    access_log "+dir+"/logs/access.log;\n"+
		"    client_body_temp_path "+dir+"/tmp/body;\n"+
		"    proxy_temp_path "+dir+"/tmp/proxy;\n"+
		"    fastcgi_temp_path "+dir+"/tmp/fastcgi;\n"+
		"    uwsgi_temp_path "+dir+"/tmp/uwsgi;\n"+
		"    scgi_temp_path "+dir+"/tmp/scgi;\n")
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tollgate_protect.conf"), protect, 0o600); err != nil {
		t.Fatal(err)
	}
	errorLog := filepath.Join(dir, "logs", "error.log")
	global := "daemon off; master_process off; pid " + dir + "/nginx.pid; error_log " + errorLog + " notice;"
	args := []string{"-p", dir + "/", "-c", filepath.Join(dir, "nginx.conf"), "-g", global}

	if out, err := exec.CommandContext(t.Context(), bin, append([]string{"-t"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, args...) // #nosec G204 -- the test's own nginx
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	StopAtCleanup(t, cmd, 5*time.Second)
	readLog := func() string { b, _ := os.ReadFile(errorLog); return string(b) }
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", listen, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not listen on %s: %v\n%s\n%s", listen, err, out.String(), readLog())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "http://" + listen, readLog
}

// recordingAPI is the API behind nginx: it records the headers it got.
type recordingAPI struct {
	mu   sync.Mutex
	seen []http.Header
}

func (a *recordingAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.seen = append(a.seen, r.Header.Clone())
	a.mu.Unlock()
	_, _ = io.WriteString(w, "api answer")
}

func (a *recordingAPI) calls() []http.Header {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]http.Header(nil), a.seen...)
}

// TestNginxExample runs docs/examples/nginx.conf with Debian's nginx in front
// of a real Tollgate (PostgreSQL and Redis behind proxies the test can cut)
// and a recording API: every answer of the check reaches the client with
// its status and headers, and the API sees only the identity nginx set.
func TestNginxExample(t *testing.T) {
	nginxBinary(t)
	f, _, redisProxy := newProxiedFixture(t, func(c *config.Config) {
		c.RateLimits.Classes = map[string]string{"default": "1000", "reports": "1"}
	})
	api := &recordingAPI{}
	apiSrv := httptest.NewServer(api)
	t.Cleanup(apiSrv.Close)
	base, errorLog := startNginx(t, strings.TrimPrefix(f.srv.URL, "http://"), strings.TrimPrefix(apiSrv.URL, "http://"))

	key, keyString := f.apiKey(f.alice, "events", "reports")
	_, contactsOnly := f.apiKey(f.alice, "contacts")
	tok := f.tokenCC(f.cc)

	get := func(path string, header ...string) response {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Add(header[i], header[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s through nginx: %v\nnginx error log:\n%s", path, err, errorLog())
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return response{status: res.StatusCode, header: res.Header, body: body}
	}
	forged := []string{
		"X-Tollgate-Client-Id", "1", "X-Tollgate-Account-Id", "1", "X-Tollgate-Subject", "1",
		"X-Tollgate-Scopes", "everything", "X-Tollgate-Scope", "none", "X-Tollgate-Rate-Class", "free",
		"X-Tollgate-Account", "1",
	}

	t.Run("allowed", func(t *testing.T) {
		before := len(api.calls())
		res := get("/v1/events", append([]string{"X-API-Key", keyString}, forged...)...)
		if res.status != http.StatusOK || string(res.body) != "api answer" {
			t.Fatalf("allowed request: %d %q, want 200 from the API", res.status, res.body)
		}
		for _, h := range []string{"RateLimit", "RateLimit-Policy"} {
			if res.header.Get(h) == "" {
				t.Errorf("allowed answer has no %s", h)
			}
		}
		calls := api.calls()
		if len(calls) != before+1 {
			t.Fatalf("the API was called %d times, want once", len(calls)-before)
		}
		got := calls[len(calls)-1]
		want := map[string]string{
			"X-Tollgate-Client-Id":  strconv.FormatInt(key.ID, 10),
			"X-Tollgate-Account-Id": strconv.FormatInt(f.root.ID, 10),
			"X-Tollgate-Scopes":     "events reports",
			// The caller's own values never reach the API.
			"X-Tollgate-Scope": "", "X-Tollgate-Rate-Class": "", "X-Tollgate-Account": "",
			"X-Api-Key": "", "Authorization": "",
		}
		for name, w := range want {
			if g := strings.Join(got.Values(name), ","); g != w {
				t.Errorf("the API got %s = %q, want %q", name, g, w)
			}
		}
	})

	// A DPoP-bound token: nginx forwards the proof and the API request's
	// method and URL, so the proof made for this URL passes, once.
	t.Run("dpop", func(t *testing.T) {
		key := f.newDPoPKey(t)
		c := f.client(dpopClient(storage.Client{AccountID: f.root.ID, Name: "nginx dpop", GrantTypes: []string{"client_credentials"}, Scopes: []string{"events"}}))
		bound := f.tokenDPoP(c, key.proof("POST", tokenURL, "")).json(t)["access_token"].(string)
		proof := key.proof("GET", base+"/v1/events", bound)
		f.noteProof(proof)
		before := len(api.calls())
		if res := get("/v1/events?page=2", "Authorization", "DPoP "+bound, "DPoP", proof); res.status != http.StatusOK {
			t.Fatalf("a bound token with its proof: %d %s\nnginx error log:\n%s", res.status, res.body, errorLog())
		}
		if calls := api.calls(); len(calls) != before+1 || calls[len(calls)-1].Get("DPoP") != "" {
			t.Errorf("the API got %d calls, the last with DPoP %q: want one, without the proof", len(calls)-before, calls[len(calls)-1].Get("DPoP"))
		}
		res := get("/v1/events?page=2", "Authorization", "DPoP "+bound, "DPoP", proof)
		if res.status != http.StatusUnauthorized || !strings.Contains(res.header.Get("WWW-Authenticate"), `error="invalid_dpop_proof"`) {
			t.Errorf("the same proof again: %d %q, want 401 invalid_dpop_proof", res.status, res.header.Get("WWW-Authenticate"))
		}
		other := key.proof("GET", base+"/v1/reports", bound)
		f.noteProof(other)
		if res := get("/v1/events", "Authorization", "DPoP "+bound, "DPoP", other); res.status != http.StatusUnauthorized {
			t.Errorf("a proof made for another URL: %d, want 401", res.status)
		}
	})

	refusals := []struct {
		name       string
		path       string
		header     []string
		wantStatus int
		wantHeader []string
	}{
		{"no credential", "/v1/events", nil, http.StatusUnauthorized, []string{"WWW-Authenticate"}},
		{"bad key", "/v1/events", []string{"X-API-Key", typo(keyString)}, http.StatusUnauthorized, []string{"WWW-Authenticate"}},
		{"missing scope", "/v1/events", []string{"X-API-Key", contactsOnly}, http.StatusForbidden, nil},
		{"scope of another route", "/v1/reports", []string{"X-API-Key", contactsOnly}, http.StatusForbidden, nil},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			before := len(api.calls())
			res := get(tt.path, append(tt.header, forged...)...)
			if res.status != tt.wantStatus {
				t.Fatalf("%s: status %d %s, want %d", tt.name, res.status, res.body, tt.wantStatus)
			}
			for _, h := range tt.wantHeader {
				if res.header.Get(h) == "" {
					t.Errorf("%s: answer has no %s: %v", tt.name, h, res.header)
				}
			}
			if ct := res.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("%s: Content-Type %q, want application/json", tt.name, ct)
			}
			if n := len(api.calls()) - before; n != 0 {
				t.Errorf("%s: the API was called %d times, want never", tt.name, n)
			}
		})
	}

	t.Run("429", func(t *testing.T) {
		// reports allows 1 a second: one of a few quick requests is over.
		var res response
		for range 5 {
			if res = get("/v1/reports", "X-API-Key", keyString); res.status == http.StatusTooManyRequests {
				break
			}
		}
		if res.status != http.StatusTooManyRequests {
			t.Fatalf("5 quick /v1/reports requests: last %d %s, want a 429", res.status, res.body)
		}
		for _, h := range []string{"Retry-After", "RateLimit", "RateLimit-Policy"} {
			if res.header.Get(h) == "" {
				t.Errorf("429 has no %s: %v", h, res.header)
			}
		}
		if !strings.Contains(string(res.body), `"rate_limited"`) {
			t.Errorf("429 body %s, want rate_limited", res.body)
		}
	})

	t.Run("503", func(t *testing.T) {
		// Tokens live in Redis: without it Tollgate answers 503.
		redisProxy.stop()
		defer redisProxy.start()
		res := get("/v1/events", "Authorization", "Bearer "+tok)
		if res.status != http.StatusServiceUnavailable {
			t.Fatalf("Redis down: %d %s, want 503", res.status, res.body)
		}
		if res.header.Get("Retry-After") == "" {
			t.Errorf("503 has no Retry-After: %v", res.header)
		}
	})

	t.Run("tollgate unreachable", func(t *testing.T) {
		// Nothing listens on the check's address: nginx's own 502 is
		// refused as 503, never let through.
		down, _ := startNginx(t, freePort(t), strings.TrimPrefix(apiSrv.URL, "http://"))
		before := len(api.calls())
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, down+"/v1/events", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-API-Key", keyString)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("Tollgate unreachable: %d, want 503", res.StatusCode)
		}
		if n := len(api.calls()) - before; n != 0 {
			t.Errorf("Tollgate unreachable: the API was called %d times, want never", n)
		}
	})

	// nginx's own 500 path logs an [error] ("auth request unexpected
	// status"): none of the answers above may have taken it.
	log := errorLog()
	for _, level := range []string{"[error]", "[crit]", "[alert]", "[emerg]"} {
		if strings.Contains(log, level) {
			t.Errorf("nginx logged %s:\n%s", level, log)
		}
	}
	for _, s := range append(f.secrets, tok) {
		if strings.Contains(log, s) {
			t.Error("nginx's error log carries a credential")
		}
	}
}
