package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/e2e"
	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/storage/redis/redistest"
	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

// The browser suite drives Debian's Chromium (or $TOLLGATE_TEST_CHROMIUM)
// headless through the console of a freshly bootstrapped `tollgate serve`,
// on the embedded default and on PostgreSQL + Redis. Under CI=true a
// missing Chromium fails the suite; elsewhere it skips. Screenshots go to
// $TOLLGATE_SCREENSHOTS when set (the README's come from there), else to a
// temporary directory.

const e2ePassword = "console e2e password 1"

// chromiumPath answers the browser to drive, or skips (fails under CI).
func chromiumPath(t *testing.T) string {
	t.Helper()
	path := os.Getenv("TOLLGATE_TEST_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Chromium not found at %s (install Debian's chromium, or set TOLLGATE_TEST_CHROMIUM): %v", path, err)
		}
		t.Skipf("Chromium not found at %s; skipping the browser tests", path)
	}
	return path
}

// chrome is one headless browser with one tab, and the Tollgate it visits.
type chrome struct {
	t     *testing.T
	ctx   context.Context
	base  string
	shots string // screenshot directory; "" for none
}

func newChrome(t *testing.T, base, shots string) *chrome {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox, // root in CI containers
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 860),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	c := &chrome{t: t, ctx: ctx, base: base, shots: shots}
	// The first action starts the browser: no timeout on it.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1366, 860)); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	// The console's Copy button writes the clipboard; the test reads it
	// back.
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(ctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
			Permission: &cdpbrowser.PermissionDescriptor{Name: name, AllowWithoutSanitization: true},
			Setting:    cdpbrowser.PermissionSettingGranted, Origin: base,
		}); err != nil {
			t.Fatalf("grant %s: %v", name, err)
		}
	}
	return c
}

// do runs steps, each batch within 15 seconds.
func (c *chrome) do(steps ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		loc, _ := chromedp.Run(c.ctx, chromedp.Location())
		body, _ := chromedp.Run(c.ctx, chromedp.Text(chromedp.CSS("main")))
		c.t.Fatalf("browser at %s: %v\n%.2000s", loc, err, body)
	}
}

func runIn[T any](c *chrome, a chromedp.Action[T]) T {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		loc, _ := chromedp.Run(c.ctx, chromedp.Location())
		c.t.Fatalf("browser at %s: %v", loc, err)
	}
	return v
}

func (c *chrome) open(path string, waitFor string) {
	c.t.Helper()
	c.do(chromedp.Navigate(c.base+path), chromedp.WaitVisible(chromedp.CSS(waitFor)))
}

func (c *chrome) text(sel string) string {
	c.t.Helper()
	return runIn(c, chromedp.Text(chromedp.CSS(sel)))
}

func (c *chrome) value(sel string) string {
	c.t.Helper()
	return runIn(c, chromedp.Value(chromedp.CSS(sel)))
}

func (c *chrome) path() string {
	c.t.Helper()
	loc := runIn(c, chromedp.Location())
	return strings.TrimPrefix(loc, c.base)
}

// arrive waits until the page whose address holds part has loaded.
func (c *chrome) arrive(part string) {
	c.t.Helper()
	expr := `location.href.includes(` + strconv.Quote(part) + `) && document.readyState === "complete"`
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		// A navigation under way interrupts the evaluation: ask again.
		if ok, err := chromedp.Run(c.ctx, chromedp.Evaluate[bool](expr)); err == nil && ok {
			return
		}
	}
	c.t.Fatalf("the browser did not arrive at a page with %q (at %s)", part, c.path())
}

// wantText waits until sel's text holds want.
func (c *chrome) wantText(sel, want string) {
	c.t.Helper()
	c.do(chromedp.WaitVisible(chromedp.CSS(sel)))
	if got := c.text(sel); !strings.Contains(got, want) {
		c.t.Fatalf("%s reads %q, want %q (at %s)", sel, got, want, c.path())
	}
}

// shot saves a screenshot of the whole page as name.png.
func (c *chrome) shot(name string) {
	c.t.Helper()
	if c.shots == "" {
		return
	}
	png := runIn(c, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(c.shots, name+".png"), png, 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// copyAndRead clicks the Copy button of the value #id and answers what
// landed on the clipboard.
func (c *chrome) copyAndRead(id string) string {
	c.t.Helper()
	c.do(chromedp.WaitVisible(chromedp.ID("copy-"+id)), chromedp.Click(chromedp.ID("copy-"+id)))
	runIn(c, chromedp.Poll[bool](`document.getElementById("copy-status").textContent.includes("copied")`))
	if got := c.text("#copy-" + id); got != "Copied" {
		c.t.Errorf("the Copy button reads %q after a click, want Copied", got)
	}
	return runIn(c, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
}

// tollgateHTTP is the machine side of the e2e test: the token endpoint and
// introspection, with the bootstrap client (which may introspect).
type tollgateHTTP struct {
	t    *testing.T
	base string
	boot bootstrapResult
}

func (h tollgateHTTP) post(path, body string, id int64, secret string) (int, map[string]any) {
	h.t.Helper()
	req, err := http.NewRequestWithContext(h.t.Context(), http.MethodPost, h.base+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", e2e.FormCT)
	req.SetBasicAuth(strconv.FormatInt(id, 10), secret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	m := map[string]any{}
	_ = json.Unmarshal(raw, &m)
	return res.StatusCode, m
}

// createAccount creates a sub-account of the bootstrap account through
// the management API, with the bootstrap client's token, and returns its id.
func (h tollgateHTTP) createAccount(name string) int64 {
	h.t.Helper()
	// The admin's own token (the bootstrap client holds no management
	// scope of its own).
	code, m := h.post("/oauth/token", "grant_type=eskimi_dsp&username="+url.QueryEscape(h.boot.Username)+"&password="+url.QueryEscape(e2ePassword),
		h.boot.ClientID, h.boot.ClientSecret)
	if code != http.StatusOK {
		h.t.Fatalf("admin token: %d %v", code, m)
	}
	tok, _ := m["access_token"].(string)
	req, err := http.NewRequestWithContext(h.t.Context(), http.MethodPost, h.base+"/api/v1/accounts", strings.NewReader(`{"name":`+strconv.Quote(name)+`}`))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	var acc struct {
		ID int64 `json:"id"`
	}
	if err := json.NewDecoder(res.Body).Decode(&acc); err != nil || res.StatusCode != http.StatusCreated {
		h.t.Fatalf("create account: %d %v", res.StatusCode, err)
	}
	return acc.ID
}

// token gets a client_credentials token, or fails.
func (h tollgateHTTP) token(id int64, secret string) string {
	h.t.Helper()
	code, m := h.post("/oauth/token", "grant_type=client_credentials", id, secret)
	if code != http.StatusOK {
		h.t.Fatalf("token for client %d: %d %v", id, code, m)
	}
	return m["access_token"].(string)
}

func (h tollgateHTTP) introspect(tok string) map[string]any {
	h.t.Helper()
	code, m := h.post("/oauth/introspect", "token="+tok, h.boot.ClientID, h.boot.ClientSecret)
	if code != http.StatusOK {
		h.t.Fatalf("introspect: %d %v", code, m)
	}
	return m
}

func TestConsoleInBrowser(t *testing.T) {
	chromiumPath(t)
	shots := os.Getenv("TOLLGATE_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, backend := range e2e.TestBackends {
		t.Run(backend, func(t *testing.T) {
			vars := map[string]string{
				"TOLLGATE_DATA_DIR":             t.TempDir(),
				"TOLLGATE_HTTP_ADDR":            "127.0.0.1:0",
				"TOLLGATE_OPS_ADDR":             "127.0.0.1:0",
				"TOLLGATE_LOG_LEVEL":            "warn",
				config.BootstrapPasswordEnv:     e2ePassword,
				"TOLLGATE_CONSOLE_ENABLED":      "true",
				"TOLLGATE_STALE_CHECK_INTERVAL": "1h",
				// The webhook receiver is a local test server.
				"TOLLGATE_WEBHOOKS_ALLOW_HTTP": "true",
			}
			dir := ""
			if backend == "postgres+redis" {
				vars["TOLLGATE_DATABASE_URL"] = sqltest.Postgres(t)
				vars["TOLLGATE_REDIS_URL"] = redisURLForTest(t)
				vars["TOLLGATE_REDIS_KEY_PREFIX"] = redisPrefixForTest(t)
				vars["TOLLGATE_TOKEN_SECRET"] = "console-e2e-token-secret-0123456789abcdef"
				vars["TOLLGATE_PEPPER"] = "console-e2e-pepper-0123456789abcdef-xyz"
				vars["TOLLGATE_KEY_ENCRYPTION_KEY"] = "4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b"
			} else {
				dir = shots // the embedded run takes the screenshots
			}
			out, err := runCommand(t, vars, "bootstrap", "--migrate")
			if err != nil {
				t.Fatalf("bootstrap: %v", err)
			}
			var boot bootstrapResult
			if err := json.Unmarshal([]byte(out), &boot); err != nil {
				t.Fatalf("bootstrap printed %q: %v", out, err)
			}
			addr, _, _ := runServe(t, vars)
			base := "http://" + addr
			browseConsole(t, newChrome(t, base, dir), tollgateHTTP{t: t, base: base, boot: boot}, boot)
		})
	}
}

// browseConsole is what a new admin does on their first visit.
func browseConsole(t *testing.T, c *chrome, h tollgateHTTP, boot bootstrapResult) {
	// Sign in.
	c.open("/console", "#username")
	if p := c.path(); !strings.HasPrefix(p, "/console/signin") {
		t.Fatalf("an anonymous visit lands on %s, want the sign-in page", p)
	}
	c.shot("signin")
	c.do(chromedp.SendKeys(chromedp.ID("username"), boot.Username), chromedp.SendKeys(chromedp.ID("password"), "not the password"),
		chromedp.Click(chromedp.ID("signin")), chromedp.WaitVisible(chromedp.ID("errors")))
	c.wantText("#errors", "The username or password is wrong.")
	// The password is never sent back: the field is empty again.
	if v := c.value("#password"); v != "" {
		t.Errorf("the sign-in form kept the password: %q", v)
	}
	c.do(chromedp.SendKeys(chromedp.ID("password"), e2ePassword),
		chromedp.SendKeys(chromedp.ID("password"), kb.Enter), chromedp.WaitVisible(chromedp.ID("add")))
	if p := c.path(); p != "/console/clients" {
		t.Fatalf("after sign-in at %s, want /console/clients", p)
	}
	c.wantText("#records", "bootstrap")

	// Add a client; its secret is shown once and copied.
	c.do(chromedp.Click(chromedp.ID("add")), chromedp.WaitVisible(chromedp.ID("name")))
	c.shot("client-add")
	c.do(chromedp.SendKeys(chromedp.ID("name"), "Reporting export"),
		chromedp.SendKeys(chromedp.ID("description"), "Nightly export of campaign reports"),
		chromedp.Click(chromedp.ID("rights-events")),
		chromedp.Click(chromedp.ID("save")), chromedp.WaitVisible(chromedp.ID("once-warning")))
	c.wantText("#once-warning", "you will not see this again")
	id, err := strconv.ParseInt(c.value("#client-id"), 10, 64)
	if err != nil {
		t.Fatalf("client id: %v", err)
	}
	secret := c.value("#client-secret")
	if got := c.copyAndRead("client-secret"); got != secret {
		t.Fatalf("the clipboard holds %q, want the secret shown", got)
	}
	c.shot("client-secret")

	// The secret works at the token endpoint.
	tok := h.token(id, secret)
	if in := h.introspect(tok); in["active"] != true || in["scope"] != "events" {
		t.Fatalf("introspect the new client's token: %v", in)
	}

	// Back to the list; disable the client with the keyboard.
	c.do(chromedp.Click(chromedp.ID("done")), chromedp.WaitVisible(chromedp.ID("records")))
	c.wantText("#row-"+strconv.FormatInt(id, 10), "Reporting export")
	c.shot("clients")
	toggle := "toggle-" + strconv.FormatInt(id, 10)
	// The switch asks first, saying what stops working; Cancel keeps the
	// client and its token.
	c.do(chromedp.Focus(chromedp.ID(toggle)), chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("confirm-dialog")))
	c.wantText("#confirm-dialog", "Disable Reporting export?")
	c.wantText("#confirm-dialog", "stops working now, for good")
	c.shot("client-disable-confirm")
	c.do(chromedp.Click(chromedp.ID("confirm-dialog-no")), chromedp.WaitNotVisible(chromedp.ID("confirm-dialog")))
	if in := h.introspect(tok); in["active"] != true {
		t.Fatalf("the token died although disabling was cancelled: %v", in)
	}
	c.do(chromedp.Focus(chromedp.ID(toggle)), chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("confirm-dialog")),
		chromedp.Click(chromedp.ID("confirm-dialog-yes")), chromedp.WaitVisible(chromedp.ID("notice")))
	c.wantText("#notice", "Disabled")
	if v := runIn(c, chromedp.AttributeValue(chromedp.ID(toggle), "aria-checked")); v.Value != "false" {
		t.Errorf("the switch reads aria-checked=%q, want false", v.Value)
	}
	if in := h.introspect(tok); in["active"] != false {
		t.Fatalf("the token of the disabled client is still active: %v", in)
	}
	c.do(chromedp.Click(chromedp.ID(toggle)))
	c.arrive("ok=enabled")
	c.wantText("#notice", "Enabled")

	// A client token, after the password.
	c.do(chromedp.Click(chromedp.CSS(`#row-`+strconv.FormatInt(id, 10)+` td.name a`)), chromedp.WaitVisible(chromedp.ID("token-link")))
	c.shot("client")
	c.do(chromedp.Click(chromedp.ID("token-link")), chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("password"), "wrong password"), chromedp.Click(chromedp.ID("generate")),
		chromedp.WaitVisible(chromedp.ID("password-error")))
	c.wantText("#password-error", "The password is wrong.")
	c.do(chromedp.SendKeys(chromedp.ID("password"), e2ePassword), chromedp.Click(chromedp.ID("generate")),
		chromedp.WaitVisible(chromedp.ID("access-token")))
	c.wantText("main", "(1 year)")
	clientToken := c.value("#access-token")
	c.shot("client-token")
	in := h.introspect(clientToken)
	if in["active"] != true || in["client_id"] != strconv.FormatInt(id, 10) {
		t.Fatalf("introspect the client token: %v", in)
	}
	if exp := int64(in["exp"].(float64)); exp-time.Now().Unix() < 364*86400 {
		t.Errorf("the client token expires in %ds, want a year", exp-time.Now().Unix())
	}

	// API keys: add one, use it, delete it; delete the default key.
	c.do(chromedp.Click(chromedp.CSS(`nav a[href="/console/keys"]`)))
	c.arrive("/console/keys")
	c.wantText("#records", "Default key")
	c.do(chromedp.Click(chromedp.ID("add")), chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), "Billing sync"),
		chromedp.SendKeys(chromedp.ID("description"), "Reads contacts for invoicing"),
		chromedp.Click(chromedp.ID("rights-events_contacts")),
		chromedp.SetValue(chromedp.ID("expires_at"), time.Now().AddDate(1, 0, 0).Format("2006-01-02")),
		// Fenced in to this machine, with a daily quota.
		chromedp.SendKeys(chromedp.ID("allowed_cidrs"), "127.0.0.1\n::1"),
		chromedp.SendKeys(chromedp.ID("quota_limit"), "1000"),
		chromedp.SetValue(chromedp.ID("quota_period"), "day"),
		chromedp.Click(chromedp.ID("save")), chromedp.WaitVisible(chromedp.ID("api-key")))
	key := c.value("#api-key")
	if got := c.copyAndRead("api-key"); got != key {
		t.Fatalf("the clipboard holds %q, want the key shown", got)
	}
	c.shot("key-created")
	keyID, keySecret, err := apikey.Parse(key)
	if err != nil {
		t.Fatalf("the key shown does not parse: %v", err)
	}
	h.token(keyID, keySecret)
	// Its page shows the quota left and where it may be used from; a bad
	// network is refused next to its field, and nothing changes.
	c.open("/console/keys/"+strconv.FormatInt(keyID, 10), "#quota-fact")
	c.wantText("#quota-fact", "1000 per day")
	c.wantText("#quota-remaining", "1000")
	c.wantText("#allowed-fact", "127.0.0.1/32")
	c.wantText("#allowed-fact", "::1/128")
	c.shot("key-limits")
	c.do(chromedp.SetValue(chromedp.ID("allowed_cidrs"), "127.0.0.1\n10.0.0.1/33"), chromedp.Click(chromedp.ID("save")),
		chromedp.WaitVisible(chromedp.ID("allowed_cidrs-error")))
	c.wantText("#allowed_cidrs-error", "10.0.0.1/33")
	c.open("/console/keys/"+strconv.FormatInt(keyID, 10), "#allowed-fact")
	if got := c.text("#allowed-fact"); strings.Contains(got, "10.0.0") {
		t.Errorf("a refused allowlist was saved: %q", got)
	}
	c.open("/console/keys", "#records")
	c.wantText("#row-"+strconv.FormatInt(keyID, 10), apikey.Prefix+strconv.FormatInt(keyID, 10)+"_…")
	if strings.Contains(c.text("#records"), keySecret) {
		t.Fatal("the key list shows the secret")
	}
	c.shot("keys")
	// Every column and action of the lists is visible at 1280 px, and
	// usable on a phone: no table wider than its box, no action outside
	// the viewport.
	for _, vp := range []struct {
		name   string
		width  int64
		height int64
	}{{"1280", 1280, 800}, {"phone", 390, 844}} {
		c.do(chromedp.EmulateViewport(vp.width, vp.height))
		for _, list := range []string{"/console/keys", "/console/clients", "/console/users"} {
			c.open(list, "#records")
			if bad := runIn(c, chromedp.Evaluate[string](fitsInViewport)); bad != "" {
				t.Errorf("%s at %s: %s", list, vp.name, bad)
			}
		}
		c.open("/console/keys", "#records")
		c.shot("keys-" + vp.name)
	}
	c.do(chromedp.EmulateViewport(1366, 860))
	c.open("/console/keys", "#records")
	c.do(chromedp.Click(chromedp.CSS(`#row-`+strconv.FormatInt(keyID, 10)+` a.danger`)), chromedp.WaitVisible(chromedp.ID("confirm-delete")))
	c.shot("key-delete")
	c.do(chromedp.Click(chromedp.ID("confirm-delete")), chromedp.WaitVisible(chromedp.ID("notice")))
	c.wantText("#notice", "Deleted")
	if code, _ := h.post("/oauth/token", "grant_type=client_credentials", keyID, keySecret); code != http.StatusUnauthorized {
		t.Errorf("a deleted key got status %d at the token endpoint, want 401", code)
	}
	c.do(chromedp.Click(chromedp.CSS(`#records tr:has(.badge) a.danger`)), chromedp.WaitVisible(chromedp.ID("confirm-delete")))
	c.wantText("main", "a new default key in its place")
	c.do(chromedp.Click(chromedp.ID("confirm-delete")), chromedp.WaitVisible(chromedp.ID("notice")))
	c.wantText("#notice", "a new default key was issued in its place")
	c.wantText("#records", "Default key")
	c.shot("keys-default-reissued")

	// An admin's other pages.
	c.do(chromedp.Click(chromedp.CSS(`nav a[href="/console/users"]`)))
	c.arrive("/console/users")
	c.wantText("#records", boot.Username)
	c.shot("users")
	c.do(chromedp.Click(chromedp.CSS(`nav a[href="/console/audit"]`)))
	c.arrive("/console/audit")
	c.wantText("#records", "client.generate_token")
	c.shot("audit")

	// Budgets: an admin reads their own account's, and sets a
	// sub-account's.
	c.open("/console/settings", "#budget")
	c.wantText("#budget", "Only an admin of a parent account sets it")
	if runIn(c, chromedp.Evaluate[bool](`!!document.getElementById("budget-form")`)) {
		t.Error("the settings page offers an admin to change their own account's budget")
	}
	sub := h.createAccount("Customer team")
	c.open("/console/settings", "#account-switch")
	c.do(chromedp.SetValue(chromedp.ID("account-switch"), strconv.FormatInt(sub, 10)), chromedp.Click(chromedp.CSS("form.switcher button")))
	c.arrive("ok=switched")
	c.do(chromedp.WaitVisible(chromedp.ID("budget-form")))
	c.do(chromedp.SendKeys(chromedp.ID("rate_default"), "20"), chromedp.SendKeys(chromedp.ID("burst_default"), "40"),
		chromedp.SendKeys(chromedp.ID("budget_limit"), "5000"), chromedp.SetValue(chromedp.ID("budget_period"), "month"),
		chromedp.Click(chromedp.ID("budget-save")))
	c.arrive("ok=saved")
	c.wantText("#budget-remaining", "5000")
	c.wantText("#budget-usage", "0 used, refills")
	for field, want := range map[string]string{"#rate_default": "20", "#burst_default": "40", "#budget_limit": "5000", "#budget_period": "month"} {
		if v := c.value(field); v != want {
			t.Errorf("the budget form's %s reads %q, want %q", field, v, want)
		}
	}
	c.shot("account-budget")
	c.do(chromedp.SetValue(chromedp.ID("budget_limit"), "0"), chromedp.Click(chromedp.ID("budget-save")),
		chromedp.WaitVisible(chromedp.ID("budget_quota-error")))
	c.open("/console/settings", "#budget-remaining")
	c.wantText("#budget-remaining", "5000")
	c.do(chromedp.SetValue(chromedp.ID("account-switch"), strconv.FormatInt(boot.AccountID, 10)), chromedp.Click(chromedp.CSS("form.switcher button")))
	c.arrive("ok=switched")
	// A webhook: its secret shown once, a test event, the delivery log.
	var hooked sync.Mutex
	var hookHeaders []http.Header
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hooked.Lock()
		hookHeaders = append(hookHeaders, r.Header.Clone())
		hooked.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()
	c.do(chromedp.Click(chromedp.CSS(`nav a[href="/console/webhooks"]`)))
	c.arrive("/console/webhooks")
	c.do(chromedp.SendKeys(chromedp.ID("url"), recv.URL+"/tollgate"),
		chromedp.Click(chromedp.CSS(`input[value="credential.created"]`)),
		chromedp.Click(chromedp.CSS(`input[value="credential.leaked"]`)),
		chromedp.Click(chromedp.ID("create-webhook")), chromedp.WaitVisible(chromedp.ID("once-warning")))
	c.wantText("#once-warning", "you will not see it again")
	hookSecret := c.value("#webhook-secret")
	if !strings.HasPrefix(hookSecret, "whsec_") {
		t.Errorf("the new webhook's secret reads %q", hookSecret)
	}
	if got := c.copyAndRead("webhook-secret"); got != hookSecret {
		t.Errorf("the clipboard holds %q, want the webhook's secret shown", got)
	}
	c.shot("webhook-created")
	// The list, on its own: the webhook's URL, events and status, and
	// the secret nowhere.
	c.open("/console/webhooks", "#records")
	c.wantText("#records", recv.URL+"/tollgate")
	c.wantText("#records", "credential.created, credential.leaked")
	c.wantText("#records", "enabled")
	if strings.Contains(c.text("main"), "whsec_") {
		t.Error("the webhook list shows the secret again")
	}
	c.shot("webhooks")
	c.do(chromedp.Click(chromedp.CSS(`#records a[href^="/console/webhooks/"]`)))
	c.arrive("/console/webhooks/")
	c.do(chromedp.Click(chromedp.ID("send-test")), chromedp.WaitVisible(chromedp.ID("notice")))
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		hooked.Lock()
		n := len(hookHeaders)
		hooked.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the test event did not arrive")
		}
	}
	if sig := hookHeaders[0].Get("webhook-signature"); !strings.HasPrefix(sig, "v1,") {
		t.Errorf("webhook-signature %q", sig)
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		c.do(chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("h1")))
		if strings.Contains(c.text("main"), "delivered") || time.Now().After(deadline) {
			break
		}
	}
	c.wantText("#deliveries", "delivered")
	c.wantText("#deliveries", "webhook.test")
	if strings.Contains(c.text("main"), "whsec_") {
		t.Error("the webhook page shows the secret again")
	}
	c.shot("webhook-deliveries")
	// The delivery log on a phone: one card per delivery, nothing wider
	// than the screen.
	hookPage := c.path()
	c.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
	c.open(hookPage, "#deliveries")
	if bad := runIn(c, chromedp.Evaluate[string](fitsInViewport)); bad != "" {
		t.Errorf("the delivery log on a phone: %s", bad)
	}
	c.wantText("#deliveries", "delivered")
	c.shot("webhook-deliveries-phone")
	c.do(chromedp.EmulateViewport(1366, 860))

	// On a phone.
	c.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
	c.open("/console/clients", "#records")
	if w := runIn(c, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); w > 400 {
		t.Errorf("the clients page is %dpx wide on a 390px phone", w)
	}
	c.shot("clients-phone")
	c.do(chromedp.EmulateViewport(1366, 860))

	// Sign out: the session is over.
	c.open("/console/clients", "#signout")
	c.do(chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("signin")))
	c.wantText("main", "You are signed out.")
	c.open("/console/keys", "#signin")
	if p := c.path(); !strings.HasPrefix(p, "/console/signin") {
		t.Errorf("after sign-out /console/keys shows %s, want the sign-in page", p)
	}
	if err := c.ctx.Err(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

// fitsInViewport describes, in the page, what sticks out: a table wider
// than its box, a row action outside the viewport, a page wider than the
// window. "" when everything fits.
const fitsInViewport = `(() => {
  const vw = document.documentElement.clientWidth, bad = [];
  document.querySelectorAll('.table-wrap').forEach(w => {
    if (w.scrollWidth > w.clientWidth + 1) bad.push('table ' + w.scrollWidth + 'px wide in a ' + w.clientWidth + 'px box');
  });
  document.querySelectorAll('td.actions a, td.actions button').forEach(a => {
    const r = a.getBoundingClientRect();
    if (r.width === 0 || r.left < 0 || r.right > vw) bad.push('"' + a.textContent.trim() + '" at ' + Math.round(r.left) + '-' + Math.round(r.right) + 'px of ' + vw);
  });
  if (document.documentElement.scrollWidth > vw + 1) bad.push('page ' + document.documentElement.scrollWidth + 'px wide');
  return bad.join('; ');
})()`

// With Redis, a session begun on one instance is good on every other, and
// signing out on one ends it everywhere.
func TestConsoleSessionSharedThroughRedis(t *testing.T) {
	client, prefix := redistest.New(t)
	vars := map[string]string{
		"TOLLGATE_DATA_DIR":           t.TempDir(),
		"TOLLGATE_HTTP_ADDR":          "127.0.0.1:0",
		"TOLLGATE_OPS_ADDR":           "127.0.0.1:0",
		"TOLLGATE_DATABASE_URL":       sqltest.Postgres(t),
		"TOLLGATE_REDIS_URL":          redisURLForTest(t),
		"TOLLGATE_REDIS_KEY_PREFIX":   prefix,
		"TOLLGATE_TOKEN_SECRET":       "console-shared-token-secret-0123456789abcdef",
		"TOLLGATE_PEPPER":             "console-shared-pepper-0123456789abcdef-xyz",
		"TOLLGATE_KEY_ENCRYPTION_KEY": "4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b",
		config.BootstrapPasswordEnv:   e2ePassword,
	}
	if out, err := runCommand(t, vars, "bootstrap", "--migrate"); err != nil {
		t.Fatalf("bootstrap: %v %s", err, out)
	}
	one, _, _ := runServe(t, vars)
	two, _, _ := runServe(t, vars)
	jar, _ := cookiejar.New(nil) // cookies are per host, not per port: both instances get them
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	fetch := func(method, base, path string, form url.Values) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, "http://"+base+path, strings.NewReader(form.Encode()))
		if form != nil {
			req.Header.Set("Content-Type", e2e.FormCT)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	_, body := fetch(http.MethodGet, one, "/console/signin", nil)
	csrf := e2e.CSRFField.FindStringSubmatch(body)[1]
	if code, _ := fetch(http.MethodPost, one, "/console/signin", url.Values{"csrf": {csrf}, "username": {"admin"}, "password": {e2ePassword}}); code != http.StatusSeeOther {
		t.Fatalf("sign in on the first instance: status %d", code)
	}
	keys, err := redistest.Keys(t.Context(), client, prefix+"console:")
	if err != nil || len(keys) != 1 {
		t.Fatalf("console sessions in Redis = %q, %v; want one", keys, err)
	}
	code, body := fetch(http.MethodGet, two, "/console/clients", nil)
	if code != http.StatusOK || !strings.Contains(body, "bootstrap") {
		t.Fatalf("the second instance: status %d, want the signed-in clients page", code)
	}
	csrf = e2e.CSRFField.FindStringSubmatch(body)[1]
	if code, _ := fetch(http.MethodPost, two, "/console/signout", url.Values{"csrf": {csrf}}); code != http.StatusSeeOther {
		t.Fatalf("sign out on the second instance: status %d", code)
	}
	if code, _ := fetch(http.MethodGet, one, "/console/clients", nil); code != http.StatusSeeOther {
		t.Errorf("after signing out on the second instance the first answers %d, want 303 to sign in", code)
	}
}
