package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e"
	"github.com/tollgate/tollgate/internal/leakcheck"
	"github.com/tollgate/tollgate/pkg/token"
	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

// leakProbe drives a running `tollgate serve` and remembers every secret,
// password, key and token it handled, to look for them where they must
// never be: the logs and /metrics.
type leakProbe struct {
	t       *testing.T
	base    string
	secrets leakcheck.Matcher
}

func (p *leakProbe) remember(what, value string) {
	p.secrets.Secret(what, value)
}

// rememberClient remembers a client's secret with its id, as the pair
// travels in Basic authentication.
func (p *leakProbe) rememberClient(what, id, secret string) {
	p.secrets.Credential(what, id, secret)
}

// call sends a request and answers its status and body.
func (p *leakProbe) call(method, path, body string, header ...string) (int, []byte) {
	p.t.Helper()
	req, err := http.NewRequestWithContext(p.t.Context(), method, p.base+path, strings.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// want calls and wants status; it answers the decoded JSON body.
func (p *leakProbe) want(status int, method, path, body string, header ...string) map[string]any {
	p.t.Helper()
	got, b := p.call(method, path, body, header...)
	if got != status {
		p.t.Fatalf("%s %s: status %d, want %d (body %s)", method, path, got, status, b)
	}
	m := map[string]any{}
	_ = json.Unmarshal(b, &m)
	return m
}

// token wants a token answer and remembers the token.
func (p *leakProbe) token(what string, m map[string]any) string {
	p.t.Helper()
	tok, _ := m["access_token"].(string)
	if tok == "" {
		p.t.Fatalf("%s: no access_token in %v", what, m)
	}
	p.remember(what, tok)
	return tok
}

func randomText(t *testing.T) string {
	t.Helper()
	return rand.Text()
}

// scenario runs the normal flows and the usual mistakes, with every kind
// of credential.
func (p *leakProbe) scenario(b bootstrapResult) {
	t := p.t
	id := strconv.FormatInt(b.ClientID, 10)
	p.rememberClient("bootstrap client secret", id, b.ClientSecret)
	p.remember("admin password", b.Password)
	basicAuth := func(id, secret string) string { return e2e.BasicRaw(url.QueryEscape(id), url.QueryEscape(secret)) }
	cc := basicAuth(id, b.ClientSecret)

	tok := p.token("client_credentials token", p.want(200, "POST", "/oauth/token", "grant_type=client_credentials", "Content-Type", e2e.FormCT, "Authorization", cc))
	dspBody, _ := json.Marshal(map[string]any{"grant_type": "eskimi_dsp", "username": b.Username, "password": b.Password,
		"client_id": b.ClientID, "client_secret": b.ClientSecret})
	admin := p.token("user token", p.want(200, "POST", "/oauth/token", string(dspBody), "Content-Type", "application/json"))
	bearer := "Bearer " + admin

	// Credentials made through the management API.
	client := p.want(201, "POST", "/api/v1/clients", `{"name":"leak probe","may_introspect":true}`, "Authorization", bearer, "Content-Type", "application/json")
	clientID := strconv.FormatInt(int64(client["id"].(float64)), 10)
	clientSecret, _ := client["client_secret"].(string)
	p.rememberClient("created client secret", clientID, clientSecret)
	key := p.want(201, "POST", "/api/v1/keys", `{"name":"leak probe key"}`, "Authorization", bearer, "Content-Type", "application/json")
	keyString, _ := key["key"].(string)
	p.remember("API key", keyString)
	p.remember("API key secret", key["client_secret"].(string))
	rotated := p.want(200, "POST", "/api/v1/clients/"+clientID+"/rotate", `{"overlap_seconds":60}`, "Authorization", bearer, "Content-Type", "application/json")
	newSecret, _ := rotated["client_secret"].(string)
	p.rememberClient("rotated client secret", clientID, newSecret)
	userPassword := "leak-probe-" + randomText(t)
	p.remember("user password", userPassword)
	p.want(201, "POST", "/api/v1/users", `{"username":"probe","password":"`+userPassword+`","role":"member"}`, "Authorization", bearer, "Content-Type", "application/json")
	clientToken := p.token("generated client token", p.want(201, "POST", "/api/v1/clients/"+clientID+"/tokens",
		`{"password":"`+b.Password+`","lifetime":600}`, "Authorization", bearer, "Content-Type", "application/json"))
	keyToken := p.token("key session token", p.want(200, "POST", "/auth/access/session", "", "X-API-Key", keyString))
	for _, path := range []string{"/api/v1/clients", "/api/v1/keys", "/api/v1/users", "/api/v1/audit"} {
		p.want(200, "GET", path, "", "Authorization", bearer)
	}

	// A webhook: its secret answered on creation and rotation, then a
	// signed test event delivered; the secret in no log and no answer
	// since.
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer recv.Close()
	hook := p.want(201, "POST", "/api/v1/webhooks", `{"url":"`+recv.URL+`/hook","events":["credential.created","credential.rotated"]}`, "Authorization", bearer, "Content-Type", "application/json")
	hookID := strconv.FormatInt(int64(hook["id"].(float64)), 10)
	for _, s := range []string{hook["secret"].(string), p.want(200, "POST", "/api/v1/webhooks/"+hookID+"/rotate", "", "Authorization", bearer)["secret"].(string)} {
		p.remember("webhook secret", s)
		p.remember("webhook secret key", strings.TrimPrefix(s, "whsec_"))
	}
	p.want(202, "POST", "/api/v1/webhooks/"+hookID+"/test", "", "Authorization", bearer)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		_, body := p.call("GET", "/api/v1/webhooks/"+hookID+"/deliveries", "", "Authorization", bearer)
		if strings.Contains(string(body), `"delivered"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the webhook test event was not delivered: %s", body)
		}
	}
	p.want(200, "GET", "/api/v1/webhooks/"+hookID, "", "Authorization", bearer)

	// Introspection, the check endpoint, revocation.
	rs := basicAuth(clientID, newSecret)
	for _, tk := range []string{tok, admin, clientToken, keyToken} {
		p.want(200, "POST", "/oauth/introspect", "token="+url.QueryEscape(tk), "Content-Type", e2e.FormCT, "Authorization", rs)
	}
	p.want(200, "GET", "/auth/check", "", "Authorization", "Bearer "+keyToken)
	p.want(200, "GET", "/auth/check", "", "X-API-Key", keyString)
	p.want(200, "GET", "/auth/check", "", "Authorization", e2e.BasicRaw("x", keyString))

	// Mistakes: wrong secrets and passwords, typed and pasted the wrong way.
	wrongPassword := "wrong-" + randomText(t)
	wrongSecret := "wrong-" + randomText(t)
	p.remember("wrong password", wrongPassword)
	p.remember("wrong secret", wrongSecret)
	p.want(401, "POST", "/oauth/token", "grant_type=client_credentials", "Content-Type", e2e.FormCT, "Authorization", basicAuth(id, wrongSecret))
	p.want(401, "POST", "/oauth/token", e2e.Form("grant_type", "client_credentials", "client_id", id, "client_secret", wrongSecret), "Content-Type", e2e.FormCT)
	p.want(400, "POST", "/oauth/token", e2e.Form("grant_type", "eskimi_dsp", "username", b.Username, "password", wrongPassword), "Content-Type", e2e.FormCT, "Authorization", cc)
	p.want(400, "POST", "/oauth/token", e2e.Form("grant_type", "eskimi_dsp", "username", "probe", "password", wrongPassword), "Content-Type", e2e.FormCT, "Authorization", cc)
	p.want(401, "GET", "/auth/check", "", "X-API-Key", lastCharChanged(keyString))
	p.want(401, "GET", "/auth/check", "", "Authorization", "Bearer "+admin+"x")
	p.want(401, "GET", "/api/v1/users", "", "Authorization", "Bearer "+tok[:len(tok)-2])
	p.want(403, "POST", "/api/v1/users/"+strconv.FormatInt(b.UserID, 10)+"/password",
		`{"old_password":"`+wrongPassword+`","password":"`+userPassword+`"}`, "Authorization", bearer, "Content-Type", "application/json")
	// Malformed requests that carry secrets.
	p.want(400, "POST", "/oauth/token", "grant_type=client_credentials&client_secret="+url.QueryEscape(b.ClientSecret)+"&client_secret="+url.QueryEscape(b.ClientSecret)+"&client_id="+id, "Content-Type", e2e.FormCT)
	p.want(400, "POST", "/oauth/token", `{"grant_type":"eskimi_dsp","password":"`+b.Password+`","client_secret":"`+b.ClientSecret+`"`, "Content-Type", "application/json")
	p.want(413, "POST", "/oauth/token", "client_secret="+url.QueryEscape(b.ClientSecret)+"&pad="+strings.Repeat("x", 70000), "Content-Type", e2e.FormCT)
	p.want(400, "POST", "/api/v1/users", `{"username":"x","password":"`+userPassword+`",}`, "Authorization", bearer, "Content-Type", "application/json")
	p.want(422, "POST", "/api/v1/users", `{"username":"bad name","password":"`+userPassword+`"}`, "Authorization", bearer, "Content-Type", "application/json")
	p.want(415, "POST", "/api/v1/users", `password=`+userPassword, "Authorization", bearer, "Content-Type", e2e.FormCT)
	if got, _ := p.call("GET", "/auth/check", "", "Authorization", "Bearer "+admin+strings.Repeat("x", 40<<10)); got != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a 40 KiB header: status %d, want 431", got)
	}

	for _, tk := range []string{tok, clientToken, keyToken} {
		p.want(200, "POST", "/oauth/revoke", "token="+url.QueryEscape(tk), "Content-Type", e2e.FormCT, "Authorization", cc)
	}
}

// lastCharChanged returns s with its last character replaced by another
// one: appending a fixed character would give s back whenever s ended in it
// (one random key in 64).
func lastCharChanged(s string) string {
	c := byte('x')
	if s[len(s)-1] == c {
		c = 'y'
	}
	return s[:len(s)-1] + string(c)
}

// leaks fails the test for every remembered secret found in text, in any
// encoding leakcheck knows.
func (p *leakProbe) leaks(where, text string) {
	p.t.Helper()
	for _, what := range p.secrets.Find(text) {
		p.t.Errorf("%s: the %s appears", where, what)
	}
}

func TestSecretsStayOutOfLogsAndMetrics(t *testing.T) {
	for _, backend := range e2e.TestBackends {
		t.Run(backend, func(t *testing.T) {
			p := &leakProbe{t: t}
			for _, marker := range []string{token.AccessPrefix, "tgh1$", "$argon2id$", "PRIVATE KEY"} {
				p.secrets.Marker("marker "+marker, marker)
			}
			dir := t.TempDir()
			vars := map[string]string{
				"TOLLGATE_DATA_DIR":  dir,
				"TOLLGATE_HTTP_ADDR": "127.0.0.1:0",
				"TOLLGATE_OPS_ADDR":  "127.0.0.1:0",
				"TOLLGATE_LOG_LEVEL": "debug",
				// Generous limits: the scenario is about secrets.
				"TOLLGATE_RATE_CLASSES": "default=1000,reports=1000",
				// Webhooks are delivered to a local receiver.
				"TOLLGATE_WEBHOOKS_ALLOW_HTTP": "true",
			}
			if backend == "postgres+redis" {
				tokenSecret, pepper := "token-secret-"+rand.Text()+rand.Text(), "pepper-"+rand.Text()+rand.Text()
				kek := hex.EncodeToString([]byte((rand.Text() + rand.Text())[:32]))
				dbPassword := "db-password-" + rand.Text()
				// Trust authentication ignores the password; it must still
				// never be printed.
				dsn := strings.Replace(sqltest.Postgres(t), "postgres@", "postgres:"+dbPassword+"@", 1)
				vars["TOLLGATE_DATABASE_URL"] = dsn
				vars["TOLLGATE_REDIS_URL"] = redisURLForTest(t)
				vars["TOLLGATE_REDIS_KEY_PREFIX"] = redisPrefixForTest(t)
				vars["TOLLGATE_TOKEN_SECRET"] = tokenSecret
				vars["TOLLGATE_PEPPER"] = pepper
				vars["TOLLGATE_KEY_ENCRYPTION_KEY"] = kek
				p.remember("key-encryption key", kek)
				p.remember("token secret", tokenSecret)
				p.remember("pepper", pepper)
				p.remember("database password", dbPassword)
			}
			var bootOut, bootLogs bytes.Buffer
			if err := run(t.Context(), []string{"bootstrap", "--migrate"}, env{stdout: &bootOut, stderr: &bootLogs, lookupEnv: environ(vars)}); err != nil {
				t.Fatalf("bootstrap: %v\n%s", err, bootLogs.String())
			}
			var b bootstrapResult
			if err := json.Unmarshal(bootOut.Bytes(), &b); err != nil {
				t.Fatalf("bootstrap printed %q: %v", bootOut.String(), err)
			}
			if backend == "embedded" {
				for _, name := range []string{"token_secret", "pepper"} {
					raw, err := os.ReadFile(filepath.Join(dir, name))
					if err != nil {
						t.Fatal(err)
					}
					p.remember("generated "+name, strings.TrimSpace(string(raw)))
				}
			}
			addr, ops, logs := runServeLogs(t, vars)
			p.base = "http://" + addr
			p.scenario(b)

			metrics := scrape(t, ops)
			p.leaks("the server logs", logs.String())
			p.leaks("the bootstrap logs", bootLogs.String())
			p.leaks("/metrics", metrics)
			boundedLabels(t, metrics)

			// Requests with random paths, methods, grant types and rate
			// classes add no series: labels come from fixed sets.
			random := func(n int) {
				for i := range n {
					r := rand.Text()[:10]
					switch i % 6 {
					case 0:
						p.call("GET", "/"+r+"/"+strconv.Itoa(i), "")
					case 1:
						p.call("POST", "/api/v1/"+r+"/"+strconv.Itoa(i), "{}")
					case 2:
						p.call("GET", "/auth/check/"+r+"/"+strconv.Itoa(i), "", "X-Tollgate-Rate-Class", r)
					case 3:
						p.call("POST", "/oauth/token", "grant_type="+r, "Content-Type", e2e.FormCT)
					case 4:
						p.call(strings.ToUpper(r[:5]), "/oauth/token", "")
					case 5:
						p.call("GET", "/auth/check", "", "Authorization", "Bearer tg_at_"+r)
					}
				}
			}
			random(60)
			before := series(scrape(t, ops))
			random(1000)
			after := series(scrape(t, ops))
			if len(after) != len(before) {
				var added []string
				for s := range after {
					if !before[s] {
						added = append(added, s)
					}
				}
				t.Errorf("1000 requests with random paths and values added %d series (%d -> %d), e.g. %.5q", len(after)-len(before), len(before), len(after), added)
			}
			p.leaks("the server logs at the end", logs.String())
		})
	}
}

func scrape(t *testing.T, ops string) string {
	t.Helper()
	ctx := t.Context()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ops+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? `)
var labelPair = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// series answers the set of Tollgate's series (name and labels) in an
// exposition.
func series(exposition string) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(exposition, "\n") {
		if m := sampleLine.FindStringSubmatch(line); m != nil && strings.HasPrefix(m[1], "tollgate_") {
			out[m[1]+m[2]] = true
		}
	}
	return out
}

// boundedLabels checks that every label value of Tollgate's series is a
// short word from a fixed vocabulary: never an id, a path, a token or user
// input.
func boundedLabels(t *testing.T, exposition string) {
	t.Helper()
	word := regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)
	for _, line := range strings.Split(exposition, "\n") {
		m := sampleLine.FindStringSubmatch(line)
		if m == nil || !strings.HasPrefix(m[1], "tollgate_") {
			continue
		}
		for _, kv := range labelPair.FindAllStringSubmatch(m[3], -1) {
			name, value := kv[1], kv[2]
			switch {
			case name == "le":
				if _, err := strconv.ParseFloat(value, 64); err != nil && value != "+Inf" {
					t.Errorf("%s: bucket %q", m[1], value)
				}
			case name == "version" && m[1] == "tollgate_build_info":
			case !word.MatchString(value):
				t.Errorf("series %s%s: label %s=%q is not a word of a fixed set", m[1], m[2], name, value)
			}
		}
	}
	if n := len(series(exposition)); n == 0 || n > 2000 {
		t.Errorf("%d Tollgate series", n)
	} else {
		t.Logf("%d Tollgate series", n)
	}
}
