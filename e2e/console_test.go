package e2e

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/storage"
)

// browser is a console visitor: a cookie jar, no redirects followed, and
// the CSRF token of the last page it read.
type browser struct {
	t    *testing.T
	f    *fixture
	c    *http.Client
	csrf string
	// header is sent with every request (e.g. X-Forwarded-For).
	header http.Header
}

// page is a console answer read in full.
type page struct {
	status int
	header http.Header
	body   string
}

func (f *fixture) browser(t *testing.T) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, f: f, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	for k, v := range b.header {
		req.Header[k] = v
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	p := page{status: res.StatusCode, header: res.Header, body: string(body)}
	if m := CSRFField.FindStringSubmatch(p.body); m != nil {
		b.csrf = m[1]
	}
	admNoSecrets(b.t, b.f, req.Method+" "+req.URL.Path, strings.ReplaceAll(p.body, "&#43;", "+"))
	return p
}

func (b *browser) get(path string) page {
	b.t.Helper()
	req, err := http.NewRequestWithContext(b.t.Context(), http.MethodGet, b.f.srv.URL+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// post sends a form with the last CSRF token (unless kv sets csrf).
func (b *browser) post(path string, kv ...string) page {
	b.t.Helper()
	v := url.Values{}
	// A name given twice is sent twice, as a browser sends ticked boxes.
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	if _, ok := v["csrf"]; !ok {
		v.Set("csrf", b.csrf)
	}
	req, err := http.NewRequestWithContext(b.t.Context(), http.MethodPost, b.f.srv.URL+path, strings.NewReader(v.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", formCT)
	return b.do(req)
}

// want checks the status of p (and, for a redirect, where it goes).
func (p page) want(t *testing.T, status int, location ...string) page {
	t.Helper()
	if p.status != status {
		t.Fatalf("status = %d, want %d; body:\n%s", p.status, status, p.body)
	}
	if len(location) > 0 && p.header.Get("Location") != location[0] {
		t.Fatalf("Location = %q, want %q", p.header.Get("Location"), location[0])
	}
	return p
}

func (p page) has(t *testing.T, texts ...string) page {
	t.Helper()
	for _, s := range texts {
		if !strings.Contains(p.body, s) {
			t.Errorf("page lacks %q:\n%s", s, p.body)
		}
	}
	return p
}

func (p page) lacks(t *testing.T, texts ...string) page {
	t.Helper()
	for _, s := range texts {
		if strings.Contains(p.body, s) {
			t.Errorf("page has %q", s)
		}
	}
	return p
}

// value reads the value of the input with id.
func (p page) value(t *testing.T, id string) string {
	t.Helper()
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*?value="([^"]*)"`).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no input #%s on the page:\n%s", id, p.body)
	}
	return html.UnescapeString(m[1])
}

// fieldError reads the error shown next to field id.
func (p page) fieldError(t *testing.T, id string) string {
	t.Helper()
	m := regexp.MustCompile(`<p class="field-error" id="` + regexp.QuoteMeta(id) + `-error">([^<]*)</p>`).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no error next to #%s:\n%s", id, p.body)
	}
	return html.UnescapeString(m[1])
}

// signIn signs username in with the fixture password.
func (b *browser) signIn(username string) {
	b.t.Helper()
	b.get("/console/signin").want(b.t, http.StatusOK)
	b.post("/console/signin", "username", username, "password", testPassword).want(b.t, http.StatusSeeOther, "/console/clients")
	b.get("/console/clients").want(b.t, http.StatusOK)
}

// idOf answers the id in a Location such as /console/clients/12?ok=saved.
func idIn(t *testing.T, s, prefix string) int64 {
	t.Helper()
	m := regexp.MustCompile(regexp.QuoteMeta(prefix) + `/(\d+)`).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no %s/<id> in %q", prefix, s)
	}
	id, _ := strconv.ParseInt(m[1], 10, 64)
	return id
}

func TestConsoleSignInAndOut(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		b := f.browser(t)
		b.get("/console").want(t, http.StatusSeeOther, "/console/clients")
		b.get("/console/clients").want(t, http.StatusSeeOther, "/console/signin?next=%2Fconsole%2Fclients")
		p := b.get("/console/signin?next=%2Fconsole%2Fkeys").want(t, http.StatusOK).has(t, `name="username"`, `name="password"`, `autocomplete="current-password"`)
		wantPageHeaders(t, p)
		ck := cookieNamed(p, "tollgate_console_signin")
		if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/console" || ck.Secure {
			t.Errorf("sign-in cookie = %+v, want HttpOnly, SameSite=Lax, Path=/console, not Secure over plain HTTP", ck)
		}

		// Wrong password, unknown user, disabled user: one answer.
		for _, u := range []string{"alice", "nobody", "dave"} {
			pw := "wrong password!"
			if u == "dave" {
				pw = testPassword
			}
			p = b.post("/console/signin", "username", u, "password", pw).want(t, http.StatusUnauthorized).
				has(t, "The username or password is wrong.", `aria-invalid="true"`)
			if cookieNamed(p, "tollgate_console") != nil {
				t.Errorf("a failed sign-in set a session cookie")
			}
		}
		p = b.post("/console/signin", "username", "", "password", "").want(t, http.StatusUnprocessableEntity)
		if got := p.fieldError(t, "username"); got != "Enter your username." {
			t.Errorf("username error = %q", got)
		}

		p = b.post("/console/signin", "username", "alice", "password", testPassword, "next", "/console/keys").
			want(t, http.StatusSeeOther, "/console/keys")
		ck = cookieNamed(p, "tollgate_console")
		if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/console" || len(ck.Value) < 43 {
			t.Fatalf("session cookie = %+v, want HttpOnly, SameSite=Lax, Path=/console, 256 random bits", ck)
		}
		// An open redirect is not followed.
		b2 := f.browser(t)
		b2.get("/console/signin")
		b2.post("/console/signin", "username", "alice", "password", testPassword, "next", "//evil.example/x").
			want(t, http.StatusSeeOther, "/console/clients")

		p = b.get("/console/clients").want(t, http.StatusOK).has(t, "alice", "API clients", f.cc.Name, `id="signout"`)
		wantPageHeaders(t, p)
		// Signed in, the sign-in page sends the browser on.
		b.get("/console/signin").want(t, http.StatusSeeOther, "/console/clients")

		b.post("/console/signout").want(t, http.StatusSeeOther, "/console/signin?ok=signed-out")
		b.get("/console/signin?ok=signed-out").want(t, http.StatusOK).has(t, "You are signed out.")
		b.get("/console/clients").want(t, http.StatusSeeOther)
		// The old cookie is dead on the server, not only in this jar.
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, f.srv.URL+"/console/clients", nil)
		req.AddCookie(&http.Cookie{Name: "tollgate_console", Value: ck.Value})
		if p := b.do(req); p.status != http.StatusSeeOther {
			t.Errorf("a signed-out session cookie: status %d, want 303 to sign in", p.status)
		}
	})
}

func cookieNamed(p page, name string) *http.Cookie {
	for _, c := range (&http.Response{Header: p.header}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// wantPageHeaders checks the security headers of a console page.
func wantPageHeaders(t *testing.T, p page) {
	t.Helper()
	csp := p.header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") {
		t.Errorf("Content-Security-Policy %q allows unsafe sources", csp)
	}
	for h, want := range map[string]string{
		"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
		"Cache-Control": "no-store", "Content-Type": "text/html; charset=utf-8",
	} {
		if got := p.header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	// No inline script or style: the policy would block it.
	for _, bad := range []*regexp.Regexp{regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]`), regexp.MustCompile(`\sstyle=`),
		regexp.MustCompile(`\son[a-z]+=`), regexp.MustCompile(`<style`), regexp.MustCompile(`https?://[a-z]`)} {
		if loc := bad.FindStringIndex(p.body); loc != nil && !strings.HasPrefix(p.body[loc[0]:], "https://auth.example.test/") {
			t.Errorf("page has %q", p.body[loc[0]:min(loc[1]+40, len(p.body))])
		}
	}
}

func TestConsoleClientLifecycle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		b := f.browser(t)
		b.signIn("alice")
		b.get("/console/clients/new").want(t, http.StatusOK).has(t, `name="name"`, `name="access_rights"`, `type="date"`,
			`id="strategy-opaque" name="access_token_strategy" value="opaque" checked`)

		// Errors are shown next to their fields, and nothing is saved.
		before := countClients(t, f, storage.KindClient)
		p := b.post("/console/clients/new", "name", " ", "description", "d", "access_rights", "full").want(t, http.StatusUnprocessableEntity)
		if got := p.fieldError(t, "name"); got != "Name must not be empty." {
			t.Errorf("name error = %q", got)
		}
		p = b.post("/console/clients/new", "name", "ok", "access_rights", "everything").want(t, http.StatusUnprocessableEntity)
		if got := p.fieldError(t, "access_rights"); !strings.HasPrefix(got, "Access rights must be one of") {
			t.Errorf("access rights error = %q", got)
		}
		p = b.post("/console/clients/new", "name", "ok", "access_rights", "full", "expires_at", "tomorrow").want(t, http.StatusUnprocessableEntity)
		if got := p.fieldError(t, "expires_at"); !strings.Contains(got, "must be a date") {
			t.Errorf("expiry error = %q", got)
		}
		p = b.post("/console/clients/new", "name", "ok", "access_rights", "full", "expires_at", "2001-01-01").want(t, http.StatusUnprocessableEntity)
		if got := p.fieldError(t, "expires_at"); got != "Expiry date must be in the future." {
			t.Errorf("past expiry error = %q", got)
		}
		p = b.post("/console/clients/new", "name", "ok", "access_rights", "full", "access_token_strategy", "paseto").want(t, http.StatusUnprocessableEntity)
		if got := p.fieldError(t, "access_token_strategy"); !strings.HasPrefix(got, "Access token format must be") {
			t.Errorf("access token format error = %q", got)
		}
		if n := countClients(t, f, storage.KindClient); n != before {
			t.Fatalf("a refused form saved a client: %d clients, want %d", n, before)
		}

		// Added: the secret is shown once.
		expiry := f.clock.now().AddDate(1, 0, 0).UTC().Format("2006-01-02")
		p = b.post("/console/clients/new", "name", "reporting job", "description", "nightly export",
			"access_rights", "events", "expires_at", expiry).want(t, http.StatusOK).
			has(t, "you will not see this again", `data-copy="client-secret"`)
		id, _ := strconv.ParseInt(p.value(t, "client-id"), 10, 64)
		secret := p.value(t, "client-secret")
		f.secretOf[id], f.secrets = secret, append(f.secrets, secret)
		c, err := f.db.GetClient(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if c.Name != "reporting job" || c.Description != "nightly export" || c.AccessRights != "events" || c.OwnerID != f.alice.ID ||
			c.CreatedBy != f.alice.ID || c.AccountID != f.root.ID || c.ExpiresAt.UTC().Format("2006-01-02") != expiry {
			t.Errorf("created client = %+v", c)
		}
		tok := f.tokenCC(c)
		if !f.active(tok) {
			t.Fatal("a token of the new client is not active")
		}
		b.get("/console/clients").want(t, http.StatusOK).has(t, "reporting job", "nightly export", "events", "alice").lacks(t, secret)
		p = b.get("/console/clients/"+strconv.FormatInt(id, 10)).want(t, http.StatusOK).lacks(t, secret)
		wantPageHeaders(t, p)

		// Edit: renamed, and a stale form is refused.
		version := c.Version
		b.post("/console/clients/"+strconv.FormatInt(id, 10), "name", "reporting", "description", "export",
			"access_rights", "events", "expires_at", expiry, "expires_orig", expiry, "version", strconv.FormatInt(version, 10)).
			want(t, http.StatusSeeOther, "/console/clients/"+strconv.FormatInt(id, 10)+"?ok=saved")
		b.get("/console/clients/"+strconv.FormatInt(id, 10)+"?ok=saved").has(t, "Your changes are saved.", `value="reporting"`)
		// The access token format: JWT from the next token on.
		if c, _ = f.db.GetClient(t.Context(), id); c.AccessTokenStrategy != storage.StrategyOpaque {
			t.Errorf("a client added in the console has access_token_strategy %q, want opaque", c.AccessTokenStrategy)
		}
		b.post("/console/clients/"+strconv.FormatInt(id, 10), "name", "reporting", "access_rights", "events", "access_token_strategy", "jwt",
			"expires_at", expiry, "expires_orig", expiry, "version", strconv.FormatInt(c.Version, 10)).
			want(t, http.StatusSeeOther, "/console/clients/"+strconv.FormatInt(id, 10)+"?ok=saved")
		b.get("/console/clients/"+strconv.FormatInt(id, 10)).has(t, `id="strategy-jwt" name="access_token_strategy" value="jwt" checked`)
		f.verifyJWT(t, f.tokenCC(c))
		// Sender-constrained tokens: the box, once ticked, stays ticked;
		// unticked in a form that showed it, it is off again.
		c, _ = f.db.GetClient(t.Context(), id)
		b.post("/console/clients/"+strconv.FormatInt(id, 10), "name", "reporting", "access_rights", "events", "dpop_shown", "1",
			"dpop_bound_access_tokens", "on", "expires_at", expiry, "expires_orig", expiry, "version", strconv.FormatInt(c.Version, 10)).
			want(t, http.StatusSeeOther, "/console/clients/"+strconv.FormatInt(id, 10)+"?ok=saved")
		b.get("/console/clients/"+strconv.FormatInt(id, 10)).has(t, `id="dpop-bound" name="dpop_bound_access_tokens" value="on" checked`)
		if c, _ = f.db.GetClient(t.Context(), id); !c.DPoPBoundAccessTokens {
			t.Error("dpop_bound_access_tokens ticked in the console is not saved")
		}
		b.post("/console/clients/"+strconv.FormatInt(id, 10), "name", "reporting", "access_rights", "events", "dpop_shown", "1",
			"expires_at", expiry, "expires_orig", expiry, "version", strconv.FormatInt(c.Version, 10)).
			want(t, http.StatusSeeOther, "/console/clients/"+strconv.FormatInt(id, 10)+"?ok=saved")
		if c, _ = f.db.GetClient(t.Context(), id); c.DPoPBoundAccessTokens {
			t.Error("dpop_bound_access_tokens unticked in the console is still on")
		}
		b.post("/console/clients/"+strconv.FormatInt(id, 10), "name", "again", "access_rights", "events",
			"expires_at", expiry, "expires_orig", expiry, "version", strconv.FormatInt(version, 10)).want(t, http.StatusConflict).
			has(t, "Someone changed this since you opened the page")
		if c, _ = f.db.GetClient(t.Context(), id); c.Name != "reporting" {
			t.Errorf("a stale edit was saved: name %q", c.Name)
		}

		// Disabled: its token turns inactive at once; enabled again.
		b.post("/console/clients/"+strconv.FormatInt(id, 10)+"/status", "status", "disabled", "confirm", "yes").
			want(t, http.StatusSeeOther, "/console/clients?ok=disabled")
		if f.active(tok) {
			t.Error("the token of a disabled client is still active")
		}
		b.get("/console/clients?ok=disabled").has(t, `id="toggle-`+strconv.FormatInt(id, 10)+`"`, `aria-checked="false"`)
		b.post("/console/clients/"+strconv.FormatInt(id, 10)+"/status", "status", "active", "back", "detail").
			want(t, http.StatusSeeOther, "/console/clients/"+strconv.FormatInt(id, 10)+"?ok=enabled")
		f.tokenCC(c)

		// Rotated with no overlap: the old secret stops, the new one works.
		c, _ = f.db.GetClient(t.Context(), id)
		p = b.post("/console/clients/"+strconv.FormatInt(id, 10)+"/rotate", "overlap_seconds", "0", "version", strconv.FormatInt(c.Version, 10)).
			want(t, http.StatusOK).has(t, "you will not see this again", "The old secret stopped working")
		newSecret := p.value(t, "client-secret")
		f.secrets = append(f.secrets, newSecret)
		res := f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basic(id, secret))
		wantError(t, res, http.StatusUnauthorized, "invalid_client")
		f.secretOf[id] = newSecret
		f.tokenCC(c)
		// A reload of the rotation does not rotate twice.
		b.post("/console/clients/"+strconv.FormatInt(id, 10)+"/rotate", "overlap_seconds", "0", "version", strconv.FormatInt(c.Version, 10)).
			want(t, http.StatusConflict)
		f.tokenCC(c)

		// A client token after the password: wrong, then right.
		b.get("/console/clients/"+strconv.FormatInt(id, 10)+"/token").want(t, http.StatusOK).has(t, "Confirm your identity", "1 year")
		p = b.post("/console/clients/"+strconv.FormatInt(id, 10)+"/token", "password", "not my password").want(t, http.StatusForbidden)
		if got := p.fieldError(t, "password"); got != "The password is wrong." {
			t.Errorf("password error = %q", got)
		}
		// The summary says what happened: no token, because of the
		// password; there was nothing to save.
		p.has(t, "<h2>Wrong password: your identity is not confirmed, and no token was generated</h2>").lacks(t, "Nothing was saved")
		p = b.post("/console/clients/"+strconv.FormatInt(id, 10)+"/token", "password", testPassword).want(t, http.StatusOK).
			has(t, "you will not see this again", "(1 year)", f.clock.now().AddDate(1, 0, 0).UTC().Format("2006-01-02"))
		clientToken := p.value(t, "access-token")
		f.secrets = append(f.secrets, clientToken)
		res = f.introspect(f.rs, clientToken)
		in := res.json(t)
		if in["active"] != true || fmt.Sprint(in["client_id"]) != strconv.FormatInt(id, 10) {
			t.Fatalf("introspect the client token: %s", res.body)
		}
		if exp := int64(in["exp"].(float64)); exp-f.clock.now().Unix() < 364*86400 {
			t.Errorf("client token expires in %ds, want about a year", exp-f.clock.now().Unix())
		}

		// Deleted, behind a confirmation.
		b.get("/console/clients/"+strconv.FormatInt(id, 10)+"/delete").want(t, http.StatusOK).has(t, "Delete reporting?", `id="confirm-delete"`)
		c, _ = f.db.GetClient(t.Context(), id)
		b.post("/console/clients/"+strconv.FormatInt(id, 10)+"/delete", "version", strconv.FormatInt(c.Version, 10)).
			want(t, http.StatusSeeOther, "/console/clients?ok=deleted")
		if _, err := f.db.GetClient(t.Context(), id); err == nil {
			t.Error("the client still exists")
		}
		if f.active(clientToken) {
			t.Error("the token of a deleted client is still active")
		}
		b.get("/console/clients/"+strconv.FormatInt(id, 10)).want(t, http.StatusNotFound)
	})
}

func TestConsoleKeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		admin := f.browser(t)
		admin.signIn("alice")
		// A user made in the console has a default key.
		admin.get("/console/users/new").want(t, http.StatusOK)
		admin.post("/console/users/new", "username", "erin", "password", testPassword, "role", "member").
			want(t, http.StatusSeeOther, "/console/users?ok=user-created")

		b := f.browser(t)
		b.signIn("erin")
		b.get("/console/keys").want(t, http.StatusOK).has(t, "Default key", "default", apikey.Prefix)
		keys := listKeys(t, f, "erin")
		if len(keys) != 1 || !keys[0].IsDefault {
			t.Fatalf("erin's keys = %+v, want one default key", keys)
		}
		def := keys[0]

		// Create: the key is shown once, masked afterwards.
		p := b.post("/console/keys/new", "name", "ci pipeline", "description", "deploys", "access_rights", "events_contacts").
			want(t, http.StatusOK).has(t, "you will not see this again", `data-copy="api-key"`)
		key := p.value(t, "api-key")
		f.secrets = append(f.secrets, key)
		id, secret, err := apikey.Parse(key)
		if err != nil {
			t.Fatalf("the key shown does not parse: %v", err)
		}
		f.secrets = append(f.secrets, secret)
		p = b.get("/console/keys").want(t, http.StatusOK).has(t, "ci pipeline", "events_contacts", apikey.Prefix+strconv.FormatInt(id, 10)+"_…").lacks(t, key, secret)
		wantPageHeaders(t, p)
		// The key works as the password of Basic auth at the token endpoint.
		res := f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basic(id, secret))
		if res.status != http.StatusOK {
			t.Fatalf("token with the new key: %d %s", res.status, res.body)
		}

		// Toggle off and on.
		b.post("/console/keys/"+strconv.FormatInt(id, 10)+"/status", "status", "disabled", "confirm", "yes").want(t, http.StatusSeeOther, "/console/keys?ok=disabled")
		res = f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basic(id, secret))
		wantError(t, res, http.StatusUnauthorized, "invalid_client")
		b.post("/console/keys/"+strconv.FormatInt(id, 10)+"/status", "status", "active").want(t, http.StatusSeeOther, "/console/keys?ok=enabled")
		// Edit: a new name and narrower access rights.
		k, _ := f.db.GetClient(t.Context(), id)
		b.get("/console/keys/"+strconv.FormatInt(id, 10)).want(t, http.StatusOK).has(t, `value="ci pipeline"`).lacks(t, secret)
		b.post("/console/keys/"+strconv.FormatInt(id, 10), "name", "ci", "description", "deploys", "access_rights", "events",
			"version", strconv.FormatInt(k.Version, 10)).want(t, http.StatusSeeOther, "/console/keys/"+strconv.FormatInt(id, 10)+"?ok=saved")
		if k, _ = f.db.GetClient(t.Context(), id); k.Name != "ci" || k.AccessRights != "events" || !k.ExpiresAt.IsZero() {
			t.Errorf("edited key = %+v", k)
		}

		// Deleting the default key issues a new one, and the page says so.
		b.get("/console/keys/"+strconv.FormatInt(def.ID, 10)+"/delete").want(t, http.StatusOK).has(t, "a new default key in its place")
		b.post("/console/keys/"+strconv.FormatInt(def.ID, 10)+"/delete", "version", strconv.FormatInt(def.Version, 10)).
			want(t, http.StatusSeeOther, "/console/keys?ok=default-reissued")
		b.get("/console/keys?ok=default-reissued").want(t, http.StatusOK).has(t, "a new default key was issued in its place")
		keys = listKeys(t, f, "erin")
		var newDefault storage.Client
		for _, k := range keys {
			if k.IsDefault {
				newDefault = k
			}
		}
		if len(keys) != 2 || newDefault.ID == 0 || newDefault.ID == def.ID {
			t.Fatalf("keys after deleting the default = %+v, want the new key and a new default", keys)
		}
		// The default key's secret was never shown: a new secret shows it.
		p = b.post("/console/keys/"+strconv.FormatInt(newDefault.ID, 10)+"/rotate", "overlap_seconds", "0",
			"version", strconv.FormatInt(newDefault.Version, 10)).want(t, http.StatusOK)
		if _, _, err := apikey.Parse(p.value(t, "api-key")); err != nil {
			t.Errorf("rotated default key: %v", err)
		}
		f.secrets = append(f.secrets, p.value(t, "api-key"))

		// An ordinary key is simply deleted.
		k, _ = f.db.GetClient(t.Context(), id)
		b.post("/console/keys/"+strconv.FormatInt(id, 10)+"/delete", "version", strconv.FormatInt(k.Version, 10)).
			want(t, http.StatusSeeOther, "/console/keys?ok=deleted")
		if len(listKeys(t, f, "erin")) != 1 {
			t.Error("the key was not deleted")
		}
	})
}

func listKeys(t *testing.T, f *fixture, username string) []storage.Client {
	t.Helper()
	u, err := f.db.GetUserByUsername(t.Context(), username)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := f.db.ListClients(t.Context(), storage.ClientFilter{AccountID: u.AccountID, OwnerID: u.ID, Kind: storage.KindKey}, storage.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// Every disabled key says why, as recorded when it was disabled: the
// sweeper (unused, expired), its owner's disabling, or someone's hand —
// even a key switched off by hand after going unused for the whole limit
// is not marked as unused. The management API answers the same reason.
func TestConsoleMarksWhyKeysAreDisabled(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		b := f.browser(t)
		b.signIn("alice")
		b.post("/console/users/new", "username", "oscar", "password", testPassword, "role", "member").want(t, http.StatusSeeOther)
		tomorrow := f.clock.now().Add(24 * time.Hour).UTC().Format("2006-01-02")
		for _, name := range []string{"forgotten", "idle, then switched off", "switched off", "expiring", "in use"} {
			expires := ""
			if name == "expiring" {
				expires = tomorrow
			}
			p := b.post("/console/keys/new", "name", name, "access_rights", "full", "expires_at", expires).want(t, http.StatusOK)
			f.secrets = append(f.secrets, p.value(t, "api-key"))
		}
		f.clock.advance(2 * 24 * time.Hour)
		b.signIn("alice") // the session ended meanwhile
		stale := f.clock.now().Add(-f.cfg.Credentials.DisableUnusedAfter - time.Hour)
		ids := map[string]int64{}
		for _, k := range listKeys(t, f, "alice") {
			ids[k.Name] = k.ID
			switch k.Name {
			case "forgotten", "idle, then switched off":
				if err := f.db.TouchClient(t.Context(), k.ID, stale); err != nil {
					t.Fatal(err)
				}
			case "in use", "expiring":
				if err := f.db.TouchClient(t.Context(), k.ID, f.clock.now()); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, name := range []string{"idle, then switched off", "switched off"} {
			b.post("/console/keys/"+strconv.FormatInt(ids[name], 10)+"/status", "status", "disabled", "confirm", "yes").want(t, http.StatusSeeOther)
		}
		oscar, err := f.db.GetUserByUsername(t.Context(), "oscar")
		if err != nil {
			t.Fatal(err)
		}
		b.post("/console/users/"+strconv.FormatInt(oscar.ID, 10)+"/status", "status", "disabled").want(t, http.StatusSeeOther)
		ids["oscar's default key"] = listKeys(t, f, "oscar")[0].ID
		if n, err := f.app.Sweeper().Sweep(t.Context()); err != nil || n < 2 {
			t.Fatalf("sweep: %d, %v", n, err)
		}

		p := b.get("/console/keys").want(t, http.StatusOK)
		row := func(id int64) string {
			m := regexp.MustCompile(`(?s)<tr id="row-` + strconv.FormatInt(id, 10) + `">.*?</tr>`).FindString(p.body)
			if m == "" {
				t.Fatalf("no row %d on the keys page", id)
			}
			return m
		}
		tok := bearer(f.tokenDSP(f.dsp, "alice"))
		for name, want := range map[string]struct {
			note, status, reason string
		}{
			"forgotten":               {"Disabled automatically: not used for 90 days.", "Disabled (unused)", "unused"},
			"idle, then switched off": {"", "Disabled", "manual"},
			"switched off":            {"", "Disabled", "manual"},
			"expiring":                {"Disabled automatically: past its expiry date.", "Disabled (expired)", "expired"},
			"oscar's default key":     {"Disabled with its owner, whose user was disabled.", "Disabled", "user"},
			"in use":                  {"", "Enabled", ""},
		} {
			r := row(ids[name])
			if want.note == "" && strings.Contains(r, "status-note") || want.note != "" && !strings.Contains(r, `<span class="status-note">`+want.note+`</span>`) {
				t.Errorf("%s: row %s, want the note %q", name, r, want.note)
			}
			if !strings.Contains(r, `<span aria-hidden="true">`+want.status+`</span>`) {
				t.Errorf("%s: row %s, want the status %q", name, r, want.status)
			}
			v := f.apiJSON("GET", "/keys/"+strconv.FormatInt(ids[name], 10), tok, "", http.StatusOK)
			if got, _ := v["disabled_reason"].(string); got != want.reason {
				t.Errorf("%s: API disabled_reason %v, want %q", name, v["disabled_reason"], want.reason)
			}
		}
		b.get("/console/keys/"+strconv.FormatInt(ids["forgotten"], 10)).want(t, http.StatusOK).
			has(t, "Disabled automatically: not used for 90 days. Enable it to use it again.")

		// Enabled again, it has no reason any more; disabled by hand, it is
		// not marked as unused, however long it has not been used.
		id := strconv.FormatInt(ids["forgotten"], 10)
		b.post("/console/keys/"+id+"/status", "status", "active").want(t, http.StatusSeeOther)
		if v := f.apiJSON("GET", "/keys/"+id, tok, "", http.StatusOK); v["disabled_reason"] != nil {
			t.Errorf("enabled key: disabled_reason %v, want none", v["disabled_reason"])
		}
		b.post("/console/keys/"+id+"/status", "status", "disabled", "confirm", "yes").want(t, http.StatusSeeOther)
		b.get("/console/keys").want(t, http.StatusOK).lacks(t, "Disabled automatically: not used")
		if v := f.apiJSON("GET", "/keys/"+id, tok, "", http.StatusOK); v["disabled_reason"] != "manual" {
			t.Errorf("key disabled by hand: disabled_reason %v, want manual", v["disabled_reason"])
		}
	})
}

func TestConsoleCSRF(t *testing.T) {
	f := newFixture(t, "embedded")
	b := f.browser(t)
	b.signIn("alice")
	path := "/console/clients/" + strconv.FormatInt(f.cc.ID, 10) + "/status"
	for name, kv := range map[string][]string{
		"no token":    {"csrf", ""},
		"wrong token": {"csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
	} {
		p := b.post(path, append(kv, "status", "disabled")...)
		if p.status != http.StatusForbidden || !strings.Contains(p.body, "This form was not accepted") {
			t.Errorf("%s: status %d, want 403 with a clear page:\n%s", name, p.status, p.body)
		}
	}
	// Another signed-in user's token does not do either.
	other := f.browser(t)
	other.signIn("bob")
	if p := b.post(path, "csrf", other.csrf, "status", "disabled"); p.status != http.StatusForbidden {
		t.Errorf("another session's token: status %d, want 403", p.status)
	}
	// A cross-origin post is refused even with the token.
	b.get("/console/clients")
	v := url.Values{"csrf": {b.csrf}, "status": {"disabled"}}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, f.srv.URL+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", formCT)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Origin", "https://evil.example")
	if p := b.do(req); p.status != http.StatusForbidden {
		t.Errorf("cross-origin post: status %d, want 403", p.status)
	}
	if c, _ := f.db.GetClient(t.Context(), f.cc.ID); c.Status != storage.StatusActive {
		t.Fatal("a refused form changed the client")
	}
	// Signing out needs the token too.
	if p := b.post("/console/signout", "csrf", "x"); p.status != http.StatusForbidden {
		t.Errorf("sign out without the token: status %d, want 403", p.status)
	}
	b.get("/console/clients").want(t, http.StatusOK)

	// The sign-in form's token comes with its own cookie.
	fresh := f.browser(t)
	fresh.get("/console/signin")
	if p := fresh.post("/console/signin", "csrf", "forged", "username", "alice", "password", testPassword); p.status != http.StatusForbidden {
		t.Errorf("sign-in with a forged token: status %d, want 403", p.status)
	}
	bare := f.browser(t)
	if p := bare.post("/console/signin", "csrf", fresh.csrf, "username", "alice", "password", testPassword); p.status != http.StatusForbidden {
		t.Errorf("sign-in without the sign-in cookie: status %d, want 403", p.status)
	}
	// It still works the right way.
	fresh.get("/console/signin")
	fresh.post("/console/signin", "username", "alice", "password", testPassword).want(t, http.StatusSeeOther)
}

func TestConsoleCrossTenant(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		carol := f.browser(t)
		carol.signIn("carol")
		p := carol.get("/console/clients").want(t, http.StatusOK)
		p.lacks(t, f.cc.Name+"<", ">"+strconv.FormatInt(f.cc.ID, 10)+"<")
		id := strconv.FormatInt(f.cc.ID, 10)
		for _, path := range []string{"/console/clients/" + id, "/console/clients/" + id + "/delete", "/console/clients/" + id + "/token",
			"/console/keys/" + id} {
			carol.get(path).want(t, http.StatusNotFound).lacks(t, ">"+f.cc.Name+"<")
		}
		for _, post := range [][]string{
			{"/console/clients/" + id + "/status", "status", "disabled"},
			{"/console/clients/" + id, "name", "taken over", "access_rights", "full"},
			{"/console/clients/" + id + "/rotate", "overlap_seconds", "0"},
			{"/console/clients/" + id + "/token", "password", testPassword},
			{"/console/clients/" + id + "/delete"},
			{"/console/account", "account", strconv.FormatInt(f.root.ID, 10)},
			{"/console/users/" + strconv.FormatInt(f.alice.ID, 10) + "/status", "status", "disabled"},
			{"/console/users/" + strconv.FormatInt(f.alice.ID, 10) + "/delete"},
		} {
			if p := carol.post(post[0], post[1:]...); p.status != http.StatusNotFound {
				t.Errorf("POST %s by another tenant: status %d, want 404", post[0], p.status)
			}
		}
		c, err := f.db.GetClient(t.Context(), f.cc.ID)
		if err != nil || c.Status != storage.StatusActive || c.Name != f.cc.Name || c.Generation != f.cc.Generation {
			t.Fatalf("another tenant changed the client: %+v %v", c, err)
		}
		if u, _ := f.db.GetUser(t.Context(), f.alice.ID); u.Status != storage.StatusActive {
			t.Fatal("another tenant disabled a user")
		}

		// bob, admin of the child account, reaches neither his parent nor a
		// sibling.
		bob := f.browser(t)
		bob.signIn("bob")
		bob.get("/console/clients/"+id).want(t, http.StatusNotFound)
		bob.get("/console/clients/"+strconv.FormatInt(f.childRS.ID, 10)).want(t, http.StatusOK)
		if p := bob.post("/console/account", "account", strconv.FormatInt(f.root.ID, 10)); p.status != http.StatusNotFound {
			t.Errorf("switch to the parent account: status %d, want 404", p.status)
		}

		// A member sees only what they own; admin pages are refused.
		alice := f.browser(t)
		alice.signIn("alice")
		alice.post("/console/users/new", "username", "mia", "password", testPassword, "role", "member").want(t, http.StatusSeeOther)
		mia := f.browser(t)
		mia.signIn("mia")
		mia.get("/console/clients").want(t, http.StatusOK).lacks(t, f.cc.Name+"<", "Users</a>", "Audit trail</a>")
		mia.get("/console/clients/"+id).want(t, http.StatusNotFound)
		mia.get("/console/users").want(t, http.StatusForbidden)
		mia.get("/console/audit").want(t, http.StatusForbidden)
		mia.get("/console/users/new").want(t, http.StatusForbidden)
		if p := mia.post("/console/users/new", "username", "eve", "password", testPassword); p.status != http.StatusForbidden {
			t.Errorf("a member adds a user: status %d, want 403", p.status)
		}
		if p := mia.post("/console/users/"+strconv.FormatInt(f.alice.ID, 10)+"/status", "status", "disabled"); p.status != http.StatusForbidden {
			t.Errorf("a member disables an admin: status %d, want 403", p.status)
		}
		// A member may not hand out the management scope or make a client
		// of another account.
		p = mia.post("/console/clients/new", "name", "mine", "access_rights", "full").want(t, http.StatusOK)
		f.secrets = append(f.secrets, p.value(t, "client-secret"))
		mine := idIn(t, "/console/clients/"+p.value(t, "client-id"), "/console/clients")
		mia.get("/console/clients").has(t, "mine")
		alice.get("/console/clients").has(t, "mine") // an admin sees the member's client
		alice.get("/console/clients/"+strconv.FormatInt(mine, 10)).want(t, http.StatusOK)
	})
}

func TestConsoleAccountSwitch(t *testing.T) {
	f := newFixture(t, "embedded")
	b := f.browser(t)
	b.signIn("alice")
	p := b.get("/console/clients").has(t, `id="account-switch"`, "root › child")
	p.lacks(t, f.childRS.Name)
	b.post("/console/account", "account", strconv.FormatInt(f.child.ID, 10), "back", "/console/keys/12").
		want(t, http.StatusSeeOther, "/console/keys?ok=switched")
	b.get("/console/keys?ok=switched").want(t, http.StatusOK).has(t, "You are now managing", `<option value="`+strconv.FormatInt(f.child.ID, 10)+`" selected>`)
	b.get("/console/clients").want(t, http.StatusOK).has(t, f.childRS.Name)
	p = b.post("/console/clients/new", "name", "in the child", "access_rights", "events").want(t, http.StatusOK)
	f.secrets = append(f.secrets, p.value(t, "client-secret"))
	id, _ := strconv.ParseInt(p.value(t, "client-id"), 10, 64)
	if c, _ := f.db.GetClient(t.Context(), id); c.AccountID != f.child.ID {
		t.Errorf("client made after switching belongs to account %d, want the child %d", c.AccountID, f.child.ID)
	}
	b.get("/console/users").has(t, `id="row-`+strconv.FormatInt(f.bob.ID, 10)+`"`).lacks(t, `id="row-`+strconv.FormatInt(f.alice.ID, 10)+`"`)
	// Another tree is out of reach.
	b.post("/console/account", "account", strconv.FormatInt(f.other.ID, 10)).want(t, http.StatusNotFound)
}

func TestConsoleUsersAndAudit(t *testing.T) {
	f := newFixture(t, "embedded")
	b := f.browser(t)
	b.signIn("alice")
	p := b.get("/console/users").want(t, http.StatusOK).has(t, "alice", "dave", "you")
	wantPageHeaders(t, p)
	p = b.post("/console/users/new", "username", "a", "password", "short", "role", "member").want(t, http.StatusUnprocessableEntity)
	if got := p.fieldError(t, "username"); !strings.HasPrefix(got, "Username must be 3 to 64 characters") {
		t.Errorf("username error = %q", got)
	}
	if got := p.fieldError(t, "password"); !strings.HasPrefix(got, "Password must be 12") {
		t.Errorf("password error = %q", got)
	}
	if _, err := f.db.GetUserByUsername(t.Context(), "a"); err == nil {
		t.Fatal("a refused user was created")
	}
	b.post("/console/users/new", "username", "alice", "password", testPassword).want(t, http.StatusConflict).has(t, "The username is taken.")
	b.post("/console/users/new", "username", "frank", "password", testPassword, "role", "member").want(t, http.StatusSeeOther)
	frank, err := f.db.GetUserByUsername(t.Context(), "frank")
	if err != nil || frank.Role != storage.RoleMember {
		t.Fatalf("frank = %+v, %v", frank, err)
	}
	fid := strconv.FormatInt(frank.ID, 10)
	fb := f.browser(t)
	fb.signIn("frank")

	b.post("/console/users/"+fid+"/role", "role", "admin").want(t, http.StatusSeeOther, "/console/users?ok=user-role")
	fb.get("/console/users").want(t, http.StatusOK) // admin at once
	b.post("/console/users/"+fid+"/status", "status", "disabled").want(t, http.StatusSeeOther, "/console/users?ok=user-disabled")
	// A disabled user's session ends.
	fb.get("/console/clients").want(t, http.StatusSeeOther, "/console/signin?expired=1&next=%2Fconsole%2Fclients")
	b.post("/console/users/"+fid+"/status", "status", "active").want(t, http.StatusSeeOther)
	// Nobody disables themself.
	p = b.post("/console/users/"+strconv.FormatInt(f.alice.ID, 10)+"/status", "status", "disabled").want(t, http.StatusUnprocessableEntity)
	p.has(t, "you may not disable yourself")
	b.get("/console/users/"+fid+"/delete").want(t, http.StatusOK).has(t, "Delete frank?")
	frank, _ = f.db.GetUserByUsername(t.Context(), "frank")
	b.post("/console/users/"+fid+"/delete", "version", strconv.FormatInt(frank.Version, 10)).want(t, http.StatusSeeOther, "/console/users?ok=user-deleted")
	if _, err := f.db.GetUser(t.Context(), frank.ID); err == nil {
		t.Error("frank still exists")
	}

	p = b.get("/console/audit").want(t, http.StatusOK).has(t, "user.create", "user.update", "user.delete", "key.create_default", "alice", "127.0.0.1")
	wantPageHeaders(t, p)
}

func TestConsoleSessionExpiry(t *testing.T) {
	f := newFixture(t, "embedded")
	b := f.browser(t)
	b.signIn("alice")
	// Busy: every 20 minutes, past the idle timeout in total.
	for range 3 {
		f.clock.advance(20 * time.Minute)
		b.get("/console/clients").want(t, http.StatusOK)
	}
	// Idle.
	f.clock.advance(f.cfg.Console.SessionIdleTimeout)
	b.get("/console/keys").want(t, http.StatusSeeOther, "/console/signin?expired=1&next=%2Fconsole%2Fkeys")
	b.get("/console/signin?expired=1").has(t, "Your session ended.")

	// However busy, a session ends after its lifetime.
	b.signIn("alice")
	for elapsed := time.Duration(0); elapsed < f.cfg.Console.SessionLifetime-25*time.Minute; elapsed += 25 * time.Minute {
		f.clock.advance(25 * time.Minute)
		b.get("/console/clients").want(t, http.StatusOK)
	}
	f.clock.advance(25 * time.Minute)
	b.get("/console/clients").want(t, http.StatusSeeOther)

	// A password change ends every session begun before it.
	b.signIn("alice")
	f.clock.advance(time.Second)
	if _, err := f.db.UpdateUser(t.Context(), f.alice.ID, func(u *storage.User) error { u.RevokeTokens(f.clock.now()); return nil }); err != nil {
		t.Fatal(err)
	}
	b.get("/console/clients").want(t, http.StatusSeeOther)
}

// Console sign-ins and the eskimi_dsp grant count wrong passwords together.
func TestConsoleSharesBruteForceProtection(t *testing.T) {
	f := newFixture(t, "embedded")
	b := f.browser(t)
	b.get("/console/signin")
	for range f.cfg.BruteForce.Threshold {
		b.post("/console/signin", "username", "alice", "password", "wrong password!").want(t, http.StatusUnauthorized)
	}
	p := b.post("/console/signin", "username", "alice", "password", testPassword).want(t, http.StatusTooManyRequests)
	p.has(t, "Too many failed sign-ins")
	if p.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	body := `{"grant_type":"eskimi_dsp","username":"alice","password":"` + testPassword +
		`","client_id":` + strconv.FormatInt(f.dsp.ID, 10) + `,"client_secret":"` + f.secretOf[f.dsp.ID] + `"}`
	if res := f.post("/oauth/token", "application/json", body); res.status != http.StatusTooManyRequests {
		t.Errorf("eskimi_dsp after console failures: status %d, want 429 (%s)", res.status, res.body)
	}
	// And the other way round: the client token's password check counts
	// too (bob's failures at the token endpoint hold back his console
	// sign-in).
	for range f.cfg.BruteForce.Threshold {
		bad := strings.Replace(body, `"alice"`, `"bob"`, 1)
		bad = strings.Replace(bad, testPassword, "wrong password!", 1)
		f.post("/oauth/token", "application/json", bad)
	}
	b.post("/console/signin", "username", "bob", "password", testPassword).want(t, http.StatusTooManyRequests)
}

func TestConsoleSecureCookies(t *testing.T) {
	t.Run("trusted proxy says https", func(t *testing.T) {
		f := newFixture(t, "embedded", func(c *config.Config) { c.BruteForce.TrustedProxies = []string{"127.0.0.1"} })
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, f.srv.URL+"/console/signin", nil)
		req.Header.Set("X-Forwarded-Proto", "https")
		p := f.browser(t).do(req)
		if ck := cookieNamed(p, "tollgate_console_signin"); ck == nil || !ck.Secure {
			t.Errorf("cookie behind a TLS proxy = %+v, want Secure", ck)
		}
	})
	t.Run("configured", func(t *testing.T) {
		f := newFixture(t, "embedded", func(c *config.Config) { c.Console.SecureCookies = true })
		p := f.browser(t).get("/console/signin")
		if ck := cookieNamed(p, "tollgate_console_signin"); ck == nil || !ck.Secure {
			t.Errorf("cookie = %+v, want Secure", ck)
		}
	})
	t.Run("untrusted peer says https", func(t *testing.T) {
		f := newFixture(t, "embedded")
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, f.srv.URL+"/console/signin", nil)
		req.Header.Set("X-Forwarded-Proto", "https")
		if ck := cookieNamed(f.browser(t).do(req), "tollgate_console_signin"); ck == nil || ck.Secure {
			t.Errorf("cookie = %+v, want not Secure", ck)
		}
	})
}

func TestConsoleAssetsAndDisabled(t *testing.T) {
	f := newFixture(t, "embedded")
	b := f.browser(t)
	p := b.get("/console/signin")
	for _, m := range regexp.MustCompile(`(?:href|src)="(/console/static/[^"]+)"`).FindAllStringSubmatch(p.body, -1) {
		a := b.get(html.UnescapeString(m[1])).want(t, http.StatusOK)
		if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/css") && !strings.HasPrefix(ct, "text/javascript") && ct != "image/svg+xml" {
			t.Errorf("%s: Content-Type %q", m[1], ct)
		}
		if a.header.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(a.header.Get("Cache-Control"), "immutable") {
			t.Errorf("%s: headers %v", m[1], a.header)
		}
	}
	b.get("/console/static/nothing.js").want(t, http.StatusNotFound)
	b.get("/console/nowhere").want(t, http.StatusNotFound)

	off := newFixture(t, "embedded", func(c *config.Config) { c.Console.Enabled = false })
	if p := off.browser(t).get("/console/signin"); p.status != http.StatusNotFound {
		t.Errorf("disabled console: status %d, want 404", p.status)
	}
}

// Signing in begins a new session under a new id, and ends the one the
// browser held before: a planted or leaked cookie is worth nothing
// afterwards.
func TestConsoleSignInReplacesSession(t *testing.T) {
	f := newFixture(t, "embedded")
	b := f.browser(t)
	b.signIn("alice")
	u, _ := url.Parse(f.srv.URL + "/console/")
	old := ""
	for _, ck := range b.c.Jar.Cookies(u) {
		if ck.Name == "tollgate_console" {
			old = ck.Value
		}
	}
	if old == "" {
		t.Fatal("no session cookie after signing in")
	}
	oldCSRF := b.csrf
	// The same browser signs in again (a sign-in form left open in
	// another tab), as someone else.
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "tollgate_console_signin", Value: strings.Repeat("A", 43), Path: "/console"}})
	p := b.post("/console/signin", "csrf", strings.Repeat("A", 43), "username", "bob", "password", testPassword).
		want(t, http.StatusSeeOther, "/console/clients")
	ck := cookieNamed(p, "tollgate_console")
	if ck == nil || ck.Value == old {
		t.Fatalf("session cookie after the second sign-in = %+v, want a new one", ck)
	}
	b.get("/console/clients").want(t, http.StatusOK).has(t, "<strong>bob</strong>")
	if b.csrf == oldCSRF {
		t.Error("the new session kept the old CSRF token")
	}
	// The old session is over on the server, not only in this jar.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, f.srv.URL+"/console/clients", nil)
	req.Header.Set("Cookie", "tollgate_console="+old)
	if p := f.browser(t).do(req); p.status != http.StatusSeeOther {
		t.Errorf("the session held before signing in again: status %d, want 303 to sign in", p.status)
	}
	// Neither the session cookie nor the CSRF token reaches the logs.
	logs := f.logs.String()
	if strings.Contains(logs, old) || strings.Contains(logs, ck.Value) || strings.Contains(logs, oldCSRF) || strings.Contains(logs, b.csrf) {
		t.Error("a session cookie or CSRF token appears in the logs")
	}
}

// Every next= the sign-in accepts stays on the console; anything else
// lands on the clients page.
func TestConsoleSignInRedirectsOnlyWithinTheConsole(t *testing.T) {
	f := newFixture(t, "embedded")
	for next, want := range map[string]string{
		"/console/keys":                 "/console/keys",
		"/console/clients/12?ok=saved":  "/console/clients/12?ok=saved",
		"//evil.example/console/":       "/console/clients",
		"https://evil.example/console/": "/console/clients",
		"/\\evil.example":               "/console/clients",
		"/console/..//evil.example":     "/console/clients",
		"/console/../../evil.example":   "/console/clients",
		"/console/\\\\evil.example":     "/console/clients",
		"javascript:alert(1)//console/": "/console/clients",
		"/console/static/console.js":    "/console/clients",
		"/api/v1/keys":                  "/console/clients",
		"/console/x\r\nSet-Cookie: a=b": "/console/clients",
		" /console/keys":                "/console/clients",
	} {
		b := f.browser(t)
		p := b.get("/console/signin?next="+url.QueryEscape(next)).want(t, http.StatusOK)
		if want == "/console/clients" && strings.Contains(p.body, `name="next"`) {
			t.Errorf("next=%q: the form carries it on", next)
		}
		p = b.post("/console/signin", "username", "alice", "password", testPassword, "next", next).want(t, http.StatusSeeOther)
		loc := p.header.Get("Location")
		if !strings.HasPrefix(loc, "/console/") || strings.HasPrefix(loc, "//") || loc != want && !(want != "/console/clients" && strings.HasPrefix(loc, want)) {
			t.Errorf("next=%q: Location %q, want %q", next, loc, want)
		}
		// Signed in, the sign-in page sends on to next= as well, with the
		// same rule.
		p = b.get("/console/signin?next="+url.QueryEscape(next)).want(t, http.StatusSeeOther)
		if got := p.header.Get("Location"); got != want {
			t.Errorf("signed in, next=%q: Location %q, want %q", next, got, want)
		}
	}
}

// Only POST changes anything: every action answers other methods with 405
// and its Allow header, and changes nothing; pages refuse POST alike.
func TestConsoleMethods(t *testing.T) {
	f := newFixture(t, "embedded")
	b := f.browser(t)
	b.signIn("alice")
	id := strconv.FormatInt(f.cc.ID, 10)
	uid := strconv.FormatInt(f.disabled.ID, 10)
	actions := []string{"/console/signout", "/console/account", "/console/clients/" + id + "/status", "/console/clients/" + id + "/rotate",
		"/console/keys/" + id + "/status", "/console/users/" + uid + "/status", "/console/users/" + uid + "/role"}
	for _, path := range actions {
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodPatch} {
			req, _ := http.NewRequestWithContext(t.Context(), m, f.srv.URL+path+"?status=disabled&csrf="+url.QueryEscape(b.csrf)+"&role=admin", nil)
			p := b.do(req)
			if p.status != http.StatusMethodNotAllowed || p.header.Get("Allow") != "POST" {
				t.Errorf("%s %s: status %d, Allow %q; want 405, POST", m, path, p.status, p.header.Get("Allow"))
			}
		}
	}
	for _, path := range []string{"/console/clients", "/console/users", "/console/audit", "/console/clients/" + id + "/token"} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, f.srv.URL+path, nil)
		p := b.do(req)
		want := "GET, HEAD"
		if strings.HasSuffix(path, "/token") {
			want = "GET, HEAD, POST"
		}
		if p.status != http.StatusMethodNotAllowed || p.header.Get("Allow") != want {
			t.Errorf("PUT %s: status %d, Allow %q; want 405, %s", path, p.status, p.header.Get("Allow"), want)
		}
	}
	if p := b.post("/console/clients", "name", "x"); p.status != http.StatusMethodNotAllowed || p.header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /console/clients: status %d, Allow %q", p.status, p.header.Get("Allow"))
	}
	if c, _ := f.db.GetClient(t.Context(), f.cc.ID); c.Status != storage.StatusActive || c.Version != f.cc.Version {
		t.Errorf("a refused method changed the client: %+v", c)
	}
	if u, _ := f.db.GetUser(t.Context(), f.disabled.ID); u.Status != storage.StatusDisabled || u.Role != f.disabled.Role {
		t.Errorf("a refused method changed a user: %+v", u)
	}
	b.get("/console/clients").want(t, http.StatusOK) // still signed in
}

// A form body over the limit answers 413, a malformed one 400; neither
// saves anything, signed in or not.
func TestConsoleRefusesOversizedAndMalformedForms(t *testing.T) {
	f := newFixture(t, "embedded")
	b := f.browser(t)
	b.signIn("alice")
	before := countClients(t, f, storage.KindClient)
	huge := strings.Repeat("x", int(f.cfg.HTTP.MaxBodyBytes)+1)
	for _, path := range []string{"/console/clients/new", "/console/signin", "/console/clients/" + strconv.FormatInt(f.cc.ID, 10) + "/status"} {
		p := b.post(path, "name", huge, "username", huge, "status", "disabled", "access_rights", "full")
		if p.status != http.StatusRequestEntityTooLarge || !strings.Contains(p.body, "The form could not be read") {
			t.Errorf("POST %s with %d bytes: status %d, want 413 with a page", path, len(huge), p.status)
		}
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, f.srv.URL+path,
			strings.NewReader("csrf="+url.QueryEscape(b.csrf)+"&name=%zz&status=disabled&access_rights=full"))
		req.Header.Set("Content-Type", formCT)
		if p := b.do(req); p.status != http.StatusBadRequest {
			t.Errorf("POST %s with a malformed body: status %d, want 400", path, p.status)
		}
	}
	if n := countClients(t, f, storage.KindClient); n != before {
		t.Errorf("%d clients after refused forms, want %d", n, before)
	}
	if c, _ := f.db.GetClient(t.Context(), f.cc.ID); c.Status != storage.StatusActive {
		t.Error("a refused form disabled the client")
	}
	b.get("/console/clients").want(t, http.StatusOK)
}

// The password that confirms a client token goes through the brute-force
// protection: after too many wrong ones even the right one is held back,
// no token is made, and the page says how long to wait.
func TestConsoleClientTokenPasswordBruteForce(t *testing.T) {
	f := newFixture(t, "embedded")
	b := f.browser(t)
	b.signIn("alice")
	path := "/console/clients/" + strconv.FormatInt(f.cc.ID, 10) + "/token"
	b.get(path).want(t, http.StatusOK)
	for range f.cfg.BruteForce.Threshold {
		p := b.post(path, "password", "wrong password!").want(t, http.StatusForbidden)
		if got := p.fieldError(t, "password"); got != "The password is wrong." {
			t.Fatalf("password error = %q", got)
		}
	}
	p := b.post(path, "password", testPassword).want(t, http.StatusTooManyRequests).has(t, "Too many wrong passwords").lacks(t, `id="access-token"`)
	if p.header.Get("Retry-After") == "" || p.header.Get("Cache-Control") != "no-store" {
		t.Errorf("headers = %v, want Retry-After and no-store", p.header)
	}
	events, err := f.db.ListAudit(t.Context(), storage.AuditFilter{AccountID: f.root.ID}, storage.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if e.Action == "client.generate_token" && e.Outcome == "success" {
			t.Fatalf("a token was made: %+v", e)
		}
	}
	// Once the block is over, the right password works.
	f.clock.advance(f.cfg.BruteForce.MaxDelay + time.Second)
	p = b.post(path, "password", testPassword).want(t, http.StatusOK)
	f.secrets = append(f.secrets, p.value(t, "access-token"))
}

// Names, descriptions and account names are text wherever they appear:
// element content, attributes, titles, the audit trail and the switcher.
func TestConsoleEscapesWhatPeopleType(t *testing.T) {
	f := newFixture(t, "embedded")
	const evil = `<script>alert(1)</script>"'><img src=x onerror=alert(2)>`
	if _, err := f.db.UpdateAccount(t.Context(), f.child.ID, func(a *storage.Account) error { a.Name = "child " + evil; return nil }); err != nil {
		t.Fatal(err)
	}
	b := f.browser(t)
	b.signIn("alice")
	p := b.post("/console/clients/new", "name", "c "+evil, "description", "d "+evil, "access_rights", "full").want(t, http.StatusOK)
	f.secrets = append(f.secrets, p.value(t, "client-secret"))
	id := p.value(t, "client-id")
	pages := []page{p}
	p = b.post("/console/keys/new", "name", "k "+evil, "description", "d "+evil, "access_rights", "full").want(t, http.StatusOK)
	f.secrets = append(f.secrets, p.value(t, "api-key"))
	pages = append(pages, p)
	for _, path := range []string{"/console/clients", "/console/keys", "/console/clients/" + id, "/console/clients/" + id + "/delete",
		"/console/clients/" + id + "/token", "/console/audit", "/console/users"} {
		pages = append(pages, b.get(path).want(t, http.StatusOK))
	}
	// A refused form echoes what was typed, escaped too.
	pages = append(pages, b.post("/console/clients/new", "name", "", "description", evil, "access_rights", "full").want(t, http.StatusUnprocessableEntity))
	pages = append(pages, b.post("/console/signin", "username", evil, "password", "x").want(t, http.StatusForbidden))
	for i, p := range pages {
		wantOnlyOwnMarkup(t, p)
		if p.header.Get("Content-Security-Policy") == "" || p.header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Errorf("page %d: headers %v", i, p.header)
		}
	}
	if !strings.Contains(pages[2].body, "c &lt;script&gt;alert(1)&lt;/script&gt;") || !strings.Contains(pages[2].body, "child &lt;script&gt;") {
		t.Error("the names are not shown as text")
	}
}

// A member may do to others' credentials and to users exactly what the
// management API lets them: nothing (404 for records they cannot see, 403
// for admin pages); an admin cannot switch outside their subtree.
func TestConsoleMemberReachesOnlyTheirOwn(t *testing.T) {
	f := newFixture(t, "embedded")
	alice := f.browser(t)
	alice.signIn("alice")
	alice.post("/console/users/new", "username", "mia", "password", testPassword, "role", "member").want(t, http.StatusSeeOther)
	p := alice.post("/console/keys/new", "name", "alice's key", "access_rights", "full").want(t, http.StatusOK)
	f.secrets = append(f.secrets, p.value(t, "api-key"))
	keyID, _, err := apikey.Parse(p.value(t, "api-key"))
	if err != nil {
		t.Fatal(err)
	}
	mia := f.browser(t)
	mia.signIn("mia")
	cid, kid := strconv.FormatInt(f.cc.ID, 10), strconv.FormatInt(keyID, 10)
	for _, path := range []string{"/console/clients/" + cid, "/console/clients/" + cid + "/delete", "/console/clients/" + cid + "/token",
		"/console/keys/" + kid, "/console/keys/" + kid + "/delete"} {
		mia.get(path).want(t, http.StatusNotFound)
	}
	for _, post := range [][]string{
		{"/console/clients/" + cid + "/status", "status", "disabled"},
		{"/console/clients/" + cid, "name", "mine now", "access_rights", "full"},
		{"/console/clients/" + cid + "/rotate", "overlap_seconds", "0"},
		{"/console/clients/" + cid + "/token", "password", testPassword},
		{"/console/clients/" + cid + "/delete"},
		{"/console/keys/" + kid + "/status", "status", "disabled"},
		{"/console/keys/" + kid, "name", "mine now", "access_rights", "full"},
		{"/console/keys/" + kid + "/rotate", "overlap_seconds", "0"},
		{"/console/keys/" + kid + "/delete"},
	} {
		if p := mia.post(post[0], post[1:]...); p.status != http.StatusNotFound {
			t.Errorf("a member: POST %s: status %d, want 404", post[0], p.status)
		}
	}
	aid := strconv.FormatInt(f.alice.ID, 10)
	for _, post := range [][]string{
		{"/console/users/" + aid + "/status", "status", "disabled"},
		{"/console/users/" + aid + "/role", "role", "member"},
		{"/console/users/" + aid + "/delete"},
		{"/console/users/new", "username", "eve", "password", testPassword},
	} {
		if p := mia.post(post[0], post[1:]...); p.status != http.StatusForbidden {
			t.Errorf("a member: POST %s: status %d, want 403", post[0], p.status)
		}
	}
	mia.get("/console/users/"+aid+"/delete").want(t, http.StatusForbidden)
	// No switching, not even to a sub-account of their own account.
	if p := mia.post("/console/account", "account", strconv.FormatInt(f.child.ID, 10)); p.status != http.StatusNotFound {
		t.Errorf("a member switches to a sub-account: status %d, want 404", p.status)
	}
	mia.get("/console/clients").want(t, http.StatusOK).lacks(t, `id="account-switch"`)
	if c, _ := f.db.GetClient(t.Context(), f.cc.ID); c.Version != f.cc.Version {
		t.Error("a member changed an admin's client")
	}
	if k, _ := f.db.GetClient(t.Context(), keyID); k.Name != "alice's key" || k.Status != storage.StatusActive {
		t.Error("a member changed an admin's key")
	}
	if u, _ := f.db.GetUser(t.Context(), f.alice.ID); u.Role != storage.RoleAdmin || u.Status != storage.StatusActive {
		t.Error("a member changed an admin")
	}

	// The admin of a sub-account reaches nothing of the account above.
	bob := f.browser(t)
	bob.signIn("bob")
	for _, post := range [][]string{
		{"/console/clients/" + cid + "/status", "status", "disabled"},
		{"/console/clients/" + cid + "/rotate", "overlap_seconds", "0"},
		{"/console/clients/" + cid + "/token", "password", testPassword},
		{"/console/clients/" + cid + "/delete"},
		{"/console/keys/" + kid + "/delete"},
		{"/console/users/" + aid + "/status", "status", "disabled"},
		{"/console/users/" + aid + "/role", "role", "member"},
		{"/console/users/" + aid + "/delete"},
		{"/console/account", "account", strconv.FormatInt(f.root.ID, 10)},
	} {
		if p := bob.post(post[0], post[1:]...); p.status != http.StatusNotFound {
			t.Errorf("a sub-account's admin: POST %s: status %d, want 404", post[0], p.status)
		}
	}
	if c, _ := f.db.GetClient(t.Context(), f.cc.ID); c.Version != f.cc.Version {
		t.Error("a sub-account's admin changed a client of the account above")
	}

	// An admin who switched to a sub-account and is then made a member
	// is back on their own account, with a member's reach.
	alice.post("/console/account", "account", strconv.FormatInt(f.child.ID, 10)).want(t, http.StatusSeeOther)
	alice.get("/console/clients").want(t, http.StatusOK).has(t, f.childRS.Name)
	if _, err := f.db.UpdateUser(t.Context(), f.alice.ID, func(u *storage.User) error { u.Role = storage.RoleMember; return nil }); err != nil {
		t.Fatal(err)
	}
	alice.get("/console/clients").want(t, http.StatusOK).lacks(t, f.childRS.Name, f.cc.Name+"<")
	alice.get("/console/clients/"+strconv.FormatInt(f.childRS.ID, 10)).want(t, http.StatusNotFound)
	alice.get("/console/users").want(t, http.StatusForbidden)
}

// Pages that show a secret, a key or a token are never stored by a
// browser or a proxy, and what they show never reaches the logs.
func TestConsoleShownOnceIsNeverCached(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		b := f.browser(t)
		b.signIn("alice")
		var shown []page
		p := b.post("/console/clients/new", "name", "once", "access_rights", "full").want(t, http.StatusOK)
		id := p.value(t, "client-id")
		f.secrets = append(f.secrets, p.value(t, "client-secret"))
		shown = append(shown, p)
		c, _ := f.db.GetClient(t.Context(), idIn(t, "/console/clients/"+id, "/console/clients"))
		p = b.post("/console/clients/"+id+"/rotate", "overlap_seconds", "0", "version", strconv.FormatInt(c.Version, 10)).want(t, http.StatusOK)
		f.secrets = append(f.secrets, p.value(t, "client-secret"))
		shown = append(shown, p)
		p = b.post("/console/clients/"+id+"/token", "password", testPassword).want(t, http.StatusOK)
		f.secrets = append(f.secrets, p.value(t, "access-token"))
		shown = append(shown, p)
		p = b.post("/console/keys/new", "name", "once", "access_rights", "full").want(t, http.StatusOK)
		f.secrets = append(f.secrets, p.value(t, "api-key"))
		shown = append(shown, p)
		for i, p := range shown {
			if !strings.Contains(p.body, "you will not see this again") {
				t.Fatalf("page %d is not a shown-once page", i)
			}
			wantPageHeaders(t, p) // Cache-Control: no-store among them
			if p.header.Get("Set-Cookie") != "" {
				t.Errorf("page %d sets a cookie", i)
			}
		}
		// The redirects and error pages of the console are not stored
		// either.
		for _, p := range []page{b.get("/console"), b.post("/console/clients/"+id+"/status", "status", "disabled"), b.get("/console/nowhere")} {
			if p.header.Get("Cache-Control") != "no-store" {
				t.Errorf("status %d: Cache-Control %q, want no-store", p.status, p.header.Get("Cache-Control"))
			}
		}
		// checkLogs, at the end of the test, looks for each of them.
	})
}

// The expiry date's error is shown with every other field's, and nothing
// is saved, adding or editing.
func TestConsoleShowsEveryFieldErrorAtOnce(t *testing.T) {
	f := newFixture(t, "embedded")
	b := f.browser(t)
	b.signIn("alice")
	before := countClients(t, f, storage.KindClient)
	p := b.post("/console/clients/new", "name", " ", "access_rights", "everything", "expires_at", "31/12/2030").want(t, http.StatusUnprocessableEntity)
	for field, want := range map[string]string{"name": "Name must not be empty.", "access_rights": "Access rights must be one of",
		"expires_at": "Expiry date must be a date, such as 2030-12-31."} {
		if got := p.fieldError(t, field); !strings.HasPrefix(got, want) {
			t.Errorf("%s error = %q, want %q", field, got, want)
		}
	}
	p.has(t, `value="31/12/2030"`)
	if n := countClients(t, f, storage.KindClient); n != before {
		t.Fatalf("a refused form saved a client")
	}
	id := strconv.FormatInt(f.cc.ID, 10)
	p = b.post("/console/clients/"+id, "name", "", "description", "changed", "access_rights", "full", "expires_at", "soon",
		"expires_orig", "", "version", strconv.FormatInt(f.cc.Version, 10)).want(t, http.StatusUnprocessableEntity)
	if p.fieldError(t, "name") != "Name must not be empty." || !strings.Contains(p.fieldError(t, "expires_at"), "must be a date") {
		t.Errorf("edit errors not shown next to both fields:\n%s", p.body)
	}
	if c, _ := f.db.GetClient(t.Context(), f.cc.ID); c.Version != f.cc.Version || c.Description != f.cc.Description {
		t.Errorf("a refused edit saved something: %+v", c)
	}
}

var (
	anyTag = regexp.MustCompile(`<[^>]*>?`)
	// ownTag is a tag as the console's templates write them: attribute
	// values in double quotes, which html/template escapes.
	ownAttr = regexp.MustCompile(`\s+([a-z][a-z-]*)(?:="[^"]*")?`)
	ownTag  = regexp.MustCompile(`^(?:<!doctype html>|</?[a-z][a-z0-9]*(?:\s+[a-z][a-z-]*(?:="[^"<>]*")?)*\s*>)$`)
)

// wantOnlyOwnMarkup checks that every tag of p is one the templates wrote:
// well formed, no event handler attribute, one script (the console's own
// file) and one image (the logo). Text that looks like markup is escaped,
// so it makes no tag.
func wantOnlyOwnMarkup(t *testing.T, p page) {
	t.Helper()
	scripts, images := 0, 0
	for _, tag := range anyTag.FindAllString(p.body, -1) {
		if !ownTag.MatchString(tag) {
			t.Errorf("page has a tag the templates did not write: %q", tag)
			continue
		}
		for _, attr := range ownAttr.FindAllStringSubmatch(tag, -1) {
			if strings.HasPrefix(attr[1], "on") {
				t.Errorf("page has an event handler: %q", tag)
			}
		}
		switch {
		case strings.HasPrefix(tag, "<script"):
			scripts++
		case strings.HasPrefix(tag, "<img"):
			images++
		}
	}
	if scripts != 1 || images != 1 {
		t.Errorf("page has %d scripts and %d images, want 1 and 1", scripts, images)
	}
}

// Sending again a form that made a secret or a token (a reload of the page
// that showed it) makes nothing twice; a form opened anew works.
func TestConsoleResentFormMakesNothingTwice(t *testing.T) {
	f := newFixture(t, "embedded")
	b := f.browser(t)
	b.signIn("alice")
	formID := regexp.MustCompile(`name="form_id" value="([^"]+)"`)
	for _, k := range []struct {
		path  string
		kind  storage.Kind
		shown string
	}{{"/console/clients", storage.KindClient, "client-secret"}, {"/console/keys", storage.KindKey, "api-key"}} {
		id := formID.FindStringSubmatch(b.get(k.path+"/new").want(t, http.StatusOK).body)[1]
		// A refused form keeps its id, and may be sent again corrected.
		p := b.post(k.path+"/new", "form_id", id, "name", "", "access_rights", "full").want(t, http.StatusUnprocessableEntity)
		if got := formID.FindStringSubmatch(p.body)[1]; got != id {
			t.Errorf("the refused form's id changed: %q, want %q", got, id)
		}
		before := countClients(t, f, k.kind)
		p = b.post(k.path+"/new", "form_id", id, "name", "reloaded", "access_rights", "full").want(t, http.StatusOK)
		f.secrets = append(f.secrets, p.value(t, k.shown))
		p = b.post(k.path+"/new", "form_id", id, "name", "reloaded", "access_rights", "full").want(t, http.StatusConflict).
			has(t, "This form was already sent").lacks(t, `id="`+k.shown+`"`)
		if n := countClients(t, f, k.kind); n != before+1 {
			t.Errorf("%s: %d made, want 1", k.path, n-before)
		}
		id = formID.FindStringSubmatch(b.get(k.path + "/new").body)[1]
		p = b.post(k.path+"/new", "form_id", id, "name", "another", "access_rights", "full").want(t, http.StatusOK)
		f.secrets = append(f.secrets, p.value(t, k.shown))
	}

	path := "/console/clients/" + strconv.FormatInt(f.cc.ID, 10) + "/token"
	id := formID.FindStringSubmatch(b.get(path).want(t, http.StatusOK).body)[1]
	b.post(path, "form_id", id, "password", "wrong password!").want(t, http.StatusForbidden).has(t, `value="`+id+`"`)
	p := b.post(path, "form_id", id, "password", testPassword).want(t, http.StatusOK)
	f.secrets = append(f.secrets, p.value(t, "access-token"))
	b.post(path, "form_id", id, "password", testPassword).want(t, http.StatusConflict).lacks(t, `id="access-token"`)
	events, err := f.db.ListAudit(t.Context(), storage.AuditFilter{AccountID: f.root.ID}, storage.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range events {
		if e.Action == "client.generate_token" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d client tokens made, want 1", n)
	}
}

// A client added in the console works with the eskimi_dsp JSON grant, as
// the platforms' documentation teaches: the add form preselects the
// configured default grant types, and the edit form changes them.
func TestConsoleClientGrantTypes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		b := f.browser(t)
		b.signIn("alice")
		b.get("/console/clients/new").want(t, http.StatusOK).
			has(t, `id="grant-client_credentials" name="grant_types" value="client_credentials" checked`,
				`id="grant-eskimi_dsp" name="grant_types" value="eskimi_dsp" checked`)
		b.get("/console/keys/new").want(t, http.StatusOK).lacks(t, `name="grant_types"`)

		// Added with the form as shown.
		p := b.post("/console/clients/new", "name", "dsp app", "access_rights", "events",
			"grant_types_shown", "1", "grant_types", "client_credentials", "grant_types", "eskimi_dsp").want(t, http.StatusOK)
		id, _ := strconv.ParseInt(p.value(t, "client-id"), 10, 64)
		secret := p.value(t, "client-secret")
		f.secretOf[id], f.secrets = secret, append(f.secrets, secret)
		c, err := f.db.GetClient(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(c.GrantTypes, " "); got != "client_credentials eskimi_dsp" {
			t.Errorf("grant types = %q, want client_credentials eskimi_dsp", got)
		}
		f.tokenDSP(c, "alice")
		b.get("/console/clients/"+strconv.FormatInt(id, 10)).want(t, http.StatusOK).
			has(t, "<code>client_credentials</code>, <code>eskimi_dsp</code>")

		// Edited: eskimi_dsp unticked, and the grant is refused.
		tests := []struct {
			name   string
			ticked []string
			want   string
		}{
			{"client_credentials only", []string{"client_credentials"}, "client_credentials"},
			{"both again", []string{"client_credentials", "eskimi_dsp"}, "client_credentials eskimi_dsp"},
			{"an unknown one", []string{"password"}, "client_credentials eskimi_dsp"},
		}
		for _, tt := range tests {
			c, _ = f.db.GetClient(t.Context(), id)
			kv := []string{"name", "dsp app", "access_rights", "events", "version", strconv.FormatInt(c.Version, 10), "grant_types_shown", "1"}
			for _, g := range tt.ticked {
				kv = append(kv, "grant_types", g)
			}
			p := b.post("/console/clients/"+strconv.FormatInt(id, 10), kv...)
			if tt.ticked[0] == "password" {
				p.want(t, http.StatusUnprocessableEntity)
				if got := p.fieldError(t, "grant_types"); !strings.HasPrefix(got, "Grant types must be among") {
					t.Errorf("%s: grant types error = %q", tt.name, got)
				}
			} else {
				p.want(t, http.StatusSeeOther)
			}
			c, _ = f.db.GetClient(t.Context(), id)
			if got := strings.Join(c.GrantTypes, " "); got != tt.want {
				t.Errorf("%s: grant types = %q, want %q", tt.name, got, tt.want)
			}
			if tt.name == "client_credentials only" {
				body := `{"grant_type":"eskimi_dsp","username":"alice","password":"` + testPassword +
					`","client_id":` + strconv.FormatInt(id, 10) + `,"client_secret":"` + secret + `"}`
				wantError(t, f.post("/oauth/token", "application/json", body), http.StatusBadRequest, "unauthorized_client")
			}
		}
	})
}

// Disabling a client or key kills its tokens for good (a client token of a
// year among them), so the switch asks first and says what stops working:
// a post without confirm=yes changes nothing and answers the confirmation
// page, whose form disables it.
func TestConsoleAsksBeforeDisabling(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		b := f.browser(t)
		b.signIn("alice")
		tests := []struct {
			name     string
			kind     storage.Kind
			back     string // "detail": from the credential's page
			says     string
			redirect string
		}{
			{"client from the list", storage.KindClient, "", "including client tokens generated to last 1 year", "/console/clients?ok=disabled"},
			{"client from its page", storage.KindClient, "detail", "can no longer get access tokens", "/console/clients/%d?ok=disabled"},
			{"key from the list", storage.KindKey, "", "Every token obtained with this key stops working now, for good", "/console/keys?ok=disabled"},
		}
		for _, tt := range tests {
			c, tok := f.newCredentialWithToken(t, tt.kind, tt.name)
			path := "/console/" + string(tt.kind) + "s/" + strconv.FormatInt(c.ID, 10) + "/status"
			// The switch (no script): the confirmation page, nothing changed.
			p := b.post(path, "status", "disabled", "back", tt.back).want(t, http.StatusOK).
				has(t, "Disable "+tt.name+"?", tt.says, "enabling", `id="confirm-disable"`, `name="confirm" value="yes"`)
			if tt.back == "detail" {
				p.has(t, `name="back" value="detail"`)
			}
			if got, _ := f.db.GetClient(t.Context(), c.ID); got.Status != storage.StatusActive || !f.active(tok) {
				t.Errorf("%s: status %s, token active %v after the unconfirmed switch, want active and active", tt.name, got.Status, f.active(tok))
			}
			// The page's form: disabled, its token dead.
			want := tt.redirect
			if strings.Contains(want, "%d") {
				want = fmt.Sprintf(want, c.ID)
			}
			b.post(path, "status", "disabled", "confirm", "yes", "back", tt.back).want(t, http.StatusSeeOther, want)
			if got, _ := f.db.GetClient(t.Context(), c.ID); got.Status != storage.StatusDisabled || f.active(tok) {
				t.Errorf("%s: status %s, token active %v after confirming, want disabled and inactive", tt.name, got.Status, f.active(tok))
			}
			// Enabling needs no confirmation; disabling a disabled one
			// neither (nothing more dies).
			b.post(path, "status", "active").want(t, http.StatusSeeOther)
		}
		// The lists and pages carry the warning for the switch's script.
		b.get("/console/clients").want(t, http.StatusOK).has(t, `data-confirm="Disable client from the list?"`, `data-tokens="Every token obtained with this client stops working now, for good`)
	})
}

// newCredentialWithToken creates an active credential of kind owned by
// alice, and a token obtained with it.
func (f *fixture) newCredentialWithToken(t *testing.T, kind storage.Kind, name string) (storage.Client, string) {
	t.Helper()
	c := f.client(storage.Client{AccountID: f.root.ID, OwnerID: f.alice.ID, Kind: kind, Name: name,
		GrantTypes: []string{"client_credentials"}, Scopes: []string{"events"}})
	return c, f.tokenCC(c)
}

// The console's lists search by name (?q=): a part of it, in any case;
// the pager keeps the search.
func TestConsoleListsSearchByName(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		b := f.browser(t)
		b.signIn("alice")
		for _, n := range []string{"Billing sync", "billing export", "Reports"} {
			f.client(storage.Client{AccountID: f.root.ID, OwnerID: f.alice.ID, Kind: storage.KindKey, Name: n,
				GrantTypes: []string{"client_credentials"}})
		}
		tests := []struct {
			path string
			has  []string
			lack []string
		}{
			{"/console/keys?q=BILLING", []string{`value="BILLING"`, "Billing sync", "billing export", `id="clear-search"`}, []string{">Reports<"}},
			{"/console/keys?q=+reports+", []string{">Reports<"}, []string{"Billing sync"}},
			{"/console/keys?q=zzz", []string{`id="no-match"`, "No API keys have a name containing “zzz”."}, []string{"Billing sync"}},
			{"/console/keys", []string{"Billing sync", "billing export", ">Reports<", `id="q"`}, []string{`id="clear-search"`}},
			{"/console/clients?q=billing", []string{`id="no-match"`}, []string{"Billing sync"}},
			{"/console/users?q=ALI", []string{">alice"}, []string{">dave<"}},
		}
		for _, tt := range tests {
			b.get(tt.path).want(t, http.StatusOK).has(t, tt.has...).lacks(t, tt.lack...)
		}
	})
}

// The audit trail names what it is about ("key "Billing" (10)", not "key
// 10") and says what a change changed, old → new; a deleted record keeps
// the name its delete event recorded.
func TestConsoleAuditNamesAndChanges(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		b := f.browser(t)
		b.signIn("alice")
		c := f.client(storage.Client{AccountID: f.root.ID, OwnerID: f.alice.ID, Kind: storage.KindKey, Name: "Billing",
			AccessRights: "events", Scopes: []string{"events"}, GrantTypes: []string{"client_credentials"}})
		id := strconv.FormatInt(c.ID, 10)
		b.post("/console/keys/"+id, "name", "Billing v2", "description", "", "access_rights", "full",
			"version", strconv.FormatInt(c.Version, 10)).want(t, http.StatusSeeOther)
		b.post("/console/keys/"+id+"/status", "status", "disabled", "confirm", "yes").want(t, http.StatusSeeOther)
		tests := []struct {
			name string
			has  []string
			lack []string
		}{
			{"renamed", []string{
				`key &#34;Billing v2&#34; (` + id + `)`,
				`name &#34;Billing&#34; → &#34;Billing v2&#34;`,
				`access_rights events → full`,
				`scopes events → events contacts reports`,
				`status active → disabled`,
			}, []string{">key " + id + "<", "fields name"}},
		}
		for _, tt := range tests {
			b.get("/console/audit").want(t, http.StatusOK).has(t, tt.has...).lacks(t, tt.lack...)
		}
		c, _ = f.db.GetClient(t.Context(), c.ID)
		b.post("/console/keys/"+id+"/delete", "version", strconv.FormatInt(c.Version, 10)).want(t, http.StatusSeeOther)
		b.get("/console/audit").want(t, http.StatusOK).has(t, `key &#34;Billing v2&#34; (`+id+`, deleted)`)
		// The management API's trail says the same.
		alice := bearer(f.tokenDSP(f.dsp, "alice"))
		found := false
		for _, e := range f.apiJSON("GET", "/audit", alice, "", http.StatusOK)["items"].([]any) {
			if m := e.(map[string]any); m["action"] == "key.update" && strings.Contains(fmt.Sprint(m["detail"]), `name "Billing" → "Billing v2"`) {
				found = true
			}
		}
		if !found {
			t.Error("GET /audit has no key.update event saying name \"Billing\" → \"Billing v2\"")
		}
	})
}
