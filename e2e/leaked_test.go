package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/pkg/secret"
	"github.com/tollgate/tollgate/pkg/secretscan"
	"github.com/tollgate/tollgate/pkg/server"
	"github.com/tollgate/tollgate/storage"
)

// githubKeys is a stand-in for GitHub's key document: real ECDSA P-256
// keys, served over http on loopback (the test switch on).
type githubKeys struct {
	srv     *httptest.Server
	keyID   string
	key     *ecdsa.PrivateKey
	fetches atomic.Int64
}

func newGitHubKeys(t *testing.T) *githubKeys {
	t.Helper()
	g := &githubKeys{keyID: "e2e-key-" + strings.Repeat("a", 56)}
	var err error
	if g.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&g.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := json.Marshal(map[string]any{"public_keys": []map[string]any{{
		"key_identifier": g.keyID, "is_current": true,
		"key": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
	}}})
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		g.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

// config points the fixture at the key server, with the test switch on.
func (g *githubKeys) config(c *config.Config) {
	c.SecretScanning.GitHubKeysURL = g.srv.URL + "/meta/public_keys/secret_scanning"
	c.SecretScanning.AllowHTTP = true
}

// sign returns GitHub's headers for body, signed with key under keyID.
func sign(t *testing.T, key *ecdsa.PrivateKey, keyID string, body []byte) []string {
	t.Helper()
	digest := sha256.Sum256(body)
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return []string{secretscan.HeaderKeyID, keyID, secretscan.HeaderSignature, base64.StdEncoding.EncodeToString(sig)}
}

// report posts body, signed by the key server's key.
func (f *fixture) report(g *githubKeys, body string) response {
	f.t.Helper()
	return f.post(secretscan.Path, "application/json", body, sign(f.t, g.key, g.keyID, []byte(body))...)
}

// keyOf returns the API key of client c, registered with the log check.
func (f *fixture) keyOf(c storage.Client) string {
	f.t.Helper()
	key, err := apikey.Format(c.ID, f.secretOf[c.ID])
	if err != nil {
		f.t.Fatal(err)
	}
	f.secrets = append(f.secrets, key)
	return key
}

type verdictJSON struct {
	TokenHash string `json:"token_hash"`
	TokenType string `json:"token_type"`
	Label     string `json:"label"`
}

func tokenHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func entriesJSON(t *testing.T, tokens ...string) string {
	t.Helper()
	var out []map[string]string
	for _, tok := range tokens {
		out = append(out, map[string]string{"token": tok, "type": "tollgate_api_key",
			"url": "https://github.com/octocat/hello/blob/abc/config.env", "source": "content"})
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (f *fixture) audits(action string, id int64) []storage.AuditEvent {
	f.t.Helper()
	var out []storage.AuditEvent
	for _, acc := range []int64{f.root.ID, f.other.ID} {
		evs, err := f.db.ListAudit(f.t.Context(), storage.AuditFilter{AccountID: acc, Subtree: true}, storage.Page{Limit: 500})
		if err != nil {
			f.t.Fatal(err)
		}
		for _, e := range evs {
			if e.Action == action && e.TargetID == id {
				out = append(out, e)
			}
		}
	}
	return out
}

func TestSecretScanningReport(t *testing.T) {
	g := newGitHubKeys(t)
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		// The child account only wants to hear of leaks.
		notify := storage.LeakedKeyNotify
		if _, err := f.db.UpdateAccount(ctx, f.child.ID, func(a *storage.Account) error {
			a.Policies.LeakedKeyAction = notify
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		leaked := f.keyOf(f.cc)
		childKey := f.keyOf(f.childRS)
		tok := f.tokenCC(f.cc)
		other, err := secret.Generate()
		if err != nil {
			t.Fatal(err)
		}
		wrongSecret, err := apikey.Format(f.rs.ID, other) // a good checksum, not rs's secret
		if err != nil {
			t.Fatal(err)
		}
		f.secrets = append(f.secrets, other, wrongSecret)
		lookalike := typo(f.keyOf(f.rs)) // a bad checksum
		tokens := []string{leaked, childKey, lookalike, wrongSecret, "ghp_notoursatall"}
		body := entriesJSON(t, tokens...)

		for round := range 2 { // a second report of the same keys changes nothing and fails nothing
			res := f.report(g, body)
			if res.status != http.StatusOK {
				t.Fatalf("round %d: status %d, want 200: %s", round, res.status, res.body)
			}
			var got []verdictJSON
			if err := json.Unmarshal(res.body, &got); err != nil {
				t.Fatalf("body %s: %v", res.body, err)
			}
			want := []string{"true_positive", "true_positive", "false_positive", "false_positive", "false_positive"}
			if len(got) != len(want) {
				t.Fatalf("round %d: %d verdicts, want %d: %s", round, len(got), len(want), res.body)
			}
			for i, v := range got {
				if v.Label != want[i] || v.TokenHash != tokenHash(tokens[i]) || v.TokenType != "tollgate_api_key" {
					t.Errorf("round %d: verdict %d = %+v, want label %s and the token's SHA-256", round, i, v, want[i])
				}
			}
			if strings.Contains(string(res.body), leaked) {
				t.Errorf("the answer holds the reported key")
			}
		}
		if c := getClient(t, f, f.cc.ID); c.Status != storage.StatusDisabled || c.DisabledReason != storage.DisabledLeaked {
			t.Errorf("leaked key: status %s reason %q, want disabled, leaked", c.Status, c.DisabledReason)
		}
		if f.active(tok) {
			t.Errorf("a token of the leaked key is still active")
		}
		if c := getClient(t, f, f.childRS.ID); c.Status != storage.StatusActive {
			t.Errorf("notify-only key: status %s, want active", c.Status)
		}
		if c := getClient(t, f, f.rs.ID); c.Status != storage.StatusActive {
			t.Errorf("a lookalike disabled rs: status %s", c.Status)
		}
		for _, c := range []struct {
			id     int64
			n      int
			detail string
		}{{f.cc.ID, 2, "disabled"}, {f.childRS.ID, 2, "left active"}, {f.rs.ID, 0, ""}} {
			evs := f.audits(string(storage.KindClient)+".leaked", c.id)
			if len(evs) != c.n {
				t.Errorf("client %d: %d leaked audit events, want %d", c.id, len(evs), c.n)
				continue
			}
			for _, e := range evs {
				if !strings.Contains(e.Detail, "https://github.com/octocat/hello/blob/abc/config.env") || !strings.Contains(e.Detail, c.detail) {
					t.Errorf("audit detail %q, want the source URL and %q", e.Detail, c.detail)
				}
			}
		}
		if evs := f.audits("client.leaked", f.cc.ID); len(evs) == 2 && !strings.Contains(evs[0].Detail, "already disabled") {
			t.Errorf("second report: detail %q, want already disabled", evs[0].Detail)
		}
	}, g.config)
}

func getClient(t *testing.T, f *fixture, id int64) storage.Client {
	t.Helper()
	c, err := f.db.GetClient(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSecretScanningRefusals(t *testing.T) {
	g := newGitHubKeys(t)
	forEachBackend(t, func(t *testing.T, f *fixture) {
		key := f.keyOf(f.cc)
		body := entriesJSON(t, key)
		forger, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		other := sign(t, g.key, g.keyID, []byte(entriesJSON(t, "tgk_1_x")))
		for _, c := range []struct {
			name   string
			body   string
			header []string
			status int
		}{
			{"signed by another key", body, sign(t, forger, g.keyID, []byte(body)), http.StatusUnauthorized},
			{"signature of another body", body, other, http.StatusUnauthorized},
			{"no headers", body, nil, http.StatusBadRequest},
			{"signature not base64", body, []string{secretscan.HeaderKeyID, g.keyID, secretscan.HeaderSignature, "%%%"}, http.StatusBadRequest},
			{"malformed JSON", `[{"token":`, sign(t, g.key, g.keyID, []byte(`[{"token":`)), http.StatusBadRequest},
			{"an object, not an array", `{"token":"x"}`, sign(t, g.key, g.keyID, []byte(`{"token":"x"}`)), http.StatusBadRequest},
			{"empty array", `[]`, sign(t, g.key, g.keyID, []byte(`[]`)), http.StatusBadRequest},
			{"repeated member", `[{"token":"a","token":"b"}]`, sign(t, g.key, g.keyID, []byte(`[{"token":"a","token":"b"}]`)), http.StatusBadRequest},
		} {
			res := f.post(secretscan.Path, "application/json", c.body, c.header...)
			if res.status != c.status || res.header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s: %d %s, want %d problem+json", c.name, res.status, res.header.Get("Content-Type"), c.status)
			}
		}
		big := "[" + strings.Repeat(`{"token":"x"},`, secretscan.MaxBodyBytes/14) + `{"token":"x"}]`
		if res := f.post(secretscan.Path, "application/json", big, sign(t, g.key, g.keyID, []byte(big))...); res.status != http.StatusRequestEntityTooLarge {
			t.Errorf("oversized report: %d, want 413", res.status)
		}
		if res := f.do(mustRequest(t, http.MethodGet, f.srv.URL+secretscan.Path)); res.status != http.StatusMethodNotAllowed {
			t.Errorf("GET: %d, want 405", res.status)
		}
		// An unknown key identifier fetches GitHub's keys again, once a
		// minute at most, and is refused.
		f.clock.advance(time.Minute)
		before := g.fetches.Load()
		for range 3 {
			res := f.post(secretscan.Path, "application/json", body, sign(t, g.key, "unknown-key", []byte(body))...)
			if res.status != http.StatusUnauthorized {
				t.Errorf("unknown key id: %d, want 401", res.status)
			}
		}
		if n := g.fetches.Load() - before; n != 1 {
			t.Errorf("unknown key ids fetched the keys %d times, want once", n)
		}
		if c := getClient(t, f, f.cc.ID); c.Status != storage.StatusActive {
			t.Errorf("a refused report disabled the key: %s", c.Status)
		}
		if evs := f.audits("client.leaked", f.cc.ID); len(evs) != 0 {
			t.Errorf("a refused report left %d audit events", len(evs))
		}
		// A minute later the document is fetched again.
		f.clock.advance(time.Minute)
		f.post(secretscan.Path, "application/json", body, sign(t, g.key, "unknown-key", []byte(body))...)
		if n := g.fetches.Load() - before; n != 2 {
			t.Errorf("after a minute: %d fetches, want 2", n)
		}
	}, g.config)
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestSecretScanningKeysUnavailable: when GitHub's keys cannot be fetched
// the answer is 503 (GitHub retries), and a keys URL on a private address
// is refused without the test switch.
func TestSecretScanningKeysUnavailable(t *testing.T) {
	g := newGitHubKeys(t)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	for _, c := range []struct {
		name string
		opt  func(*config.Config)
	}{
		{"unreachable", func(c *config.Config) { c.SecretScanning.GitHubKeysURL, c.SecretScanning.AllowHTTP = deadURL, true }},
		{"loopback without the switch", func(c *config.Config) {
			c.SecretScanning.GitHubKeysURL, c.SecretScanning.AllowHTTP = strings.Replace(g.srv.URL, "http:", "https:", 1), false
		}},
		{"http without the switch", func(c *config.Config) { c.SecretScanning.GitHubKeysURL, c.SecretScanning.AllowHTTP = g.srv.URL, false }},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, "embedded", c.opt)
			key := f.keyOf(f.cc)
			before := g.fetches.Load()
			body := entriesJSON(t, key)
			res := f.report(g, body)
			if res.status != http.StatusServiceUnavailable || res.header.Get("Retry-After") == "" {
				t.Errorf("status %d Retry-After %q, want 503 with Retry-After", res.status, res.header.Get("Retry-After"))
			}
			if n := g.fetches.Load() - before; n != 0 {
				t.Errorf("the key server was reached %d times", n)
			}
			if c := getClient(t, f, f.cc.ID); c.Status != storage.StatusActive {
				t.Errorf("key disabled without a verified report")
			}
		})
	}
}

func TestSecretScanningOff(t *testing.T) {
	f := newFixture(t, "embedded", func(c *config.Config) { c.SecretScanning.GitHubKeysURL = "" })
	if res := f.post(secretscan.Path, "application/json", "[]"); res.status != http.StatusNotFound {
		t.Errorf("status %d, want 404 with no keys URL", res.status)
	}
}

func TestKeyRevokeByHolder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		key := f.keyOf(f.cc)
		tok := f.tokenCC(f.cc)
		other, err := secret.Generate()
		if err != nil {
			t.Fatal(err)
		}
		wrong, err := apikey.Format(f.cc.ID, other)
		if err != nil {
			t.Fatal(err)
		}
		f.secrets = append(f.secrets, other, wrong)
		// A wrong key, of the right id and checksum, switches nothing off.
		for _, h := range [][]string{{"X-API-Key", wrong}, {"X-API-Key", typo(key)}, {"Authorization", basicRaw("", wrong)}} {
			res := f.post(server.PathKeyRevoke, "", "", h...)
			wantError(t, res, http.StatusUnauthorized, "invalid_client")
		}
		if !f.active(tok) || getClient(t, f, f.cc.ID).Status != storage.StatusActive {
			t.Fatalf("a wrong key revoked the credential")
		}
		if res := f.post(server.PathKeyRevoke, "", ""); res.status != http.StatusUnauthorized && res.status != http.StatusBadRequest {
			t.Errorf("no key: %d, want 400 or 401", res.status)
		}
		for i, h := range [][]string{{"X-API-Key", key}, {"X-API-Key", key}, {"Authorization", basicRaw("", key)}} {
			res := f.post(server.PathKeyRevoke, "", "", h...)
			if res.status != http.StatusOK || res.json(t)["revoked"] != true || res.header.Get("Cache-Control") != "no-store" {
				t.Errorf("call %d: %d %s, want 200 {\"revoked\":true}", i, res.status, res.body)
			}
		}
		if f.active(tok) {
			t.Errorf("a token of the revoked key is still active")
		}
		c := getClient(t, f, f.cc.ID)
		if c.Status != storage.StatusDisabled || c.DisabledReason != storage.DisabledByHolder {
			t.Errorf("status %s reason %q, want disabled by holder", c.Status, c.DisabledReason)
		}
		if evs := f.audits("client.revoke", f.cc.ID); len(evs) != 1 || evs[0].ActorClientID != f.cc.ID {
			t.Errorf("audit: %+v, want one client.revoke by the key itself", evs)
		}
		// The client secret, sent as client_secret, does the same.
		res := f.post(server.PathKeyRevoke, "application/x-www-form-urlencoded",
			form("client_id", strconv.FormatInt(f.dsp.ID, 10), "client_secret", f.secretOf[f.dsp.ID]))
		if res.status != http.StatusOK || getClient(t, f, f.dsp.ID).Status != storage.StatusDisabled {
			t.Errorf("client_secret: %d %s, want 200 and the client disabled", res.status, res.body)
		}
		// A disabled key that was never switched off by its holder: 200 for
		// the right secret, 401 for a wrong one.
		offKey := f.keyOf(f.off)
		if res := f.post(server.PathKeyRevoke, "", "", "X-API-Key", offKey); res.status != http.StatusOK {
			t.Errorf("already disabled key: %d, want 200", res.status)
		}
		wrongOff, _ := apikey.Format(f.off.ID, other)
		wantError(t, f.post(server.PathKeyRevoke, "", "", "X-API-Key", wrongOff), http.StatusUnauthorized, "invalid_client")
	})
}

// The console's settings page shows and sets the leaked-key policy.
func TestConsoleLeakedKeyPolicy(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		alice := f.browser(t)
		alice.signIn("alice")
		p := alice.get("/console/settings").want(t, http.StatusOK).has(t, `id="effective-leaked">disable`, `<option value="" selected>Inherit (disable)`)
		p = alice.post("/console/settings", "version", p.value(t, "settings-version"), "require_password_for_new_keys", "",
			"keys_managed_by", "", "leaked_key_action", "ignore").want(t, http.StatusUnprocessableEntity)
		if got := p.fieldError(t, "leaked_key_action"); got == "" {
			t.Error("no error beside leaked_key_action")
		}
		alice.post("/console/settings", "version", p.value(t, "settings-version"), "require_password_for_new_keys", "",
			"keys_managed_by", "", "leaked_key_action", "notify").want(t, http.StatusSeeOther, "/console/settings?ok=saved")
		alice.get("/console/settings").want(t, http.StatusOK).has(t, `id="effective-leaked">notify only`, `<option value="notify" selected>`)
		if acc, _ := f.db.GetAccount(t.Context(), f.root.ID); acc.Policies.LeakedKeyAction != storage.LeakedKeyNotify {
			t.Errorf("root leaked_key_action = %q, want notify", acc.Policies.LeakedKeyAction)
		}
		// A form without the field leaves the setting as it is.
		p = alice.get("/console/settings")
		alice.post("/console/settings", "version", p.value(t, "settings-version"), "require_password_for_new_keys", "", "keys_managed_by", "").
			want(t, http.StatusSeeOther, "/console/settings?ok=saved")
		if acc, _ := f.db.GetAccount(t.Context(), f.root.ID); acc.Policies.LeakedKeyAction != storage.LeakedKeyNotify {
			t.Errorf("root leaked_key_action = %q after a form without it, want notify", acc.Policies.LeakedKeyAction)
		}
		// The child inherits it.
		if eff, _ := f.db.EffectivePolicies(t.Context(), f.child.ID); eff.LeakedKeyAction != storage.LeakedKeyNotify {
			t.Errorf("child effective leaked_key_action = %q, want notify", eff.LeakedKeyAction)
		}
	})
}
