package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/e2e"
)

// cliResult is what a management command printed and returned.
type cliResult struct {
	stdout, stderr string
	err            error
}

// cli runs a management command in-process against the fixture's server
// with token tok, and vars as further environment.
func (f *fixture) cli(tok string, vars map[string]string, args ...string) cliResult {
	f.t.Helper()
	all := map[string]string{config.CLIServerEnv: f.URL(), config.CLITokenEnv: tok}
	for k, v := range vars {
		all[k] = v
	}
	var stdout, stderr bytes.Buffer
	err := run(f.t.Context(), args, env{stdout: &stdout, stderr: &stderr, lookupEnv: func(k string) (string, bool) {
		v, ok := all[k]
		return v, ok
	}})
	res := cliResult{stdout: stdout.String(), stderr: stderr.String(), err: err}
	if tok != "" && strings.Contains(res.stdout+res.stderr, tok) {
		f.t.Errorf("%v: the Bearer token was printed", args)
	}
	return res
}

// ok fails t unless the command succeeded.
func (r cliResult) ok(t *testing.T, args ...string) cliResult {
	t.Helper()
	if r.err != nil {
		t.Fatalf("%v: %v\nstdout:\n%s\nstderr:\n%s", args, r.err, r.stdout, r.stderr)
	}
	return r
}

// field reads a FIELD  VALUE line of a record printed as a table.
func (r cliResult) field(t *testing.T, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` +(.*)$`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no %q line in:\n%s", name, r.stdout)
	}
	return strings.TrimSpace(m[1])
}

func TestCLIKeysLifecycle(t *testing.T) {
	f := newFixture(t, "embedded")
	tok := f.TokenDSP(f.DSP(), "alice")
	cli := func(args ...string) cliResult { t.Helper(); return f.cli(tok, nil, args...) }
	session := func(key string) int {
		t.Helper()
		return f.PostStatus("/auth/access/session", "", "", "X-API-Key", key)
	}

	created := cli("keys", "create", "--name", "ci key", "--description", "for the pipeline", "--access-rights", "events_contacts").
		ok(t, "keys create")
	id, key := created.field(t, "id"), created.field(t, "key")
	f.HandOut(key, created.field(t, "client_secret"))
	for _, want := range []string{"Shown once", "events contacts", "for the pipeline"} {
		if !strings.Contains(created.stdout, want) {
			t.Errorf("keys create output lacks %q:\n%s", want, created.stdout)
		}
	}
	if got := created.field(t, "access_rights"); got != "events_contacts" {
		t.Errorf("access_rights = %q, want events_contacts", got)
	}
	if !strings.HasPrefix(key, "tgk_"+id+"_") {
		t.Errorf("key = %q, want a tgk_%s_… key", key, id)
	}
	if got := session(key); got != http.StatusOK {
		t.Fatalf("session with the new key: status %d, want 200", got)
	}

	t.Run("list as a table", func(t *testing.T) {
		out := cli("keys", "list").ok(t).stdout
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if !regexp.MustCompile(`^ID +NAME +DESCRIPTION +KEY HINT +IS DEFAULT +ACCESS RIGHTS +SCOPES +STATUS +OWNER ID +CREATED BY +CREATED +LAST USED +EXPIRES$`).MatchString(lines[0]) {
			t.Errorf("header = %q", lines[0])
		}
		row := regexp.MustCompile(`(?m)^` + id + ` +ci key +for the pipeline +tgk_` + id + `_…\S+ +false +events_contacts +events contacts +active +`).FindString(out)
		if row == "" {
			t.Errorf("no row for key %s in:\n%s", id, out)
		}
		if strings.Contains(out, key) {
			t.Errorf("the list shows the key")
		}
	})
	t.Run("list as JSON", func(t *testing.T) {
		var page struct {
			Items []struct {
				ID     json.Number `json:"id"`
				Name   string      `json:"name"`
				Status string      `json:"status"`
			} `json:"items"`
		}
		out := cli("keys", "list", "-o", "json", "--limit", "100").ok(t).stdout
		if err := json.Unmarshal([]byte(out), &page); err != nil {
			t.Fatalf("-o json output is not the API's JSON: %v\n%s", err, out)
		}
		found := false
		for _, it := range page.Items {
			found = found || it.ID.String() == id && it.Name == "ci key" && it.Status == "active"
		}
		if !found {
			t.Errorf("key %s not in %s", id, out)
		}
	})
	t.Run("get with flags after the id", func(t *testing.T) {
		out := cli("keys", "get", id, "-o", "json").ok(t).stdout
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil || m["name"] != "ci key" {
			t.Errorf("keys get -o json = %s (%v)", out, err)
		}
		if _, ok := m["key"]; ok {
			t.Errorf("keys get shows the key")
		}
	})

	rotated := cli("keys", "rotate", id, "--overlap", "0").ok(t, "keys rotate")
	newKey := rotated.field(t, "key")
	f.HandOut(newKey, rotated.field(t, "client_secret"))
	if newKey == key || !strings.Contains(rotated.stdout, "Shown once") {
		t.Errorf("rotate output:\n%s\nwant a new key shown once", rotated.stdout)
	}
	if got := session(key); got != http.StatusUnauthorized {
		t.Errorf("session with the old key after rotate --overlap 0: status %d, want 401", got)
	}
	if got := session(newKey); got != http.StatusOK {
		t.Errorf("session with the new key: status %d, want 200", got)
	}

	t.Run("stale If-Match", func(t *testing.T) {
		res := cli("keys", "edit", id, "--name", "renamed", "--if-match", "1")
		if !errors.Is(res.err, errFailed) || !strings.HasPrefix(res.stderr, "error: 412 ") {
			t.Errorf("edit with a stale If-Match: err %v, stderr %q; want exit 1 and error: 412", res.err, res.stderr)
		}
	})
	version := cli("keys", "get", id).ok(t).field(t, "version")
	edited := cli("keys", "edit", id, "--name", "renamed", "--scopes", "events", "--if-match", version).ok(t, "keys edit")
	if edited.field(t, "name") != "renamed" || edited.field(t, "scopes") != "events" || edited.field(t, "access_rights") != "-" {
		t.Errorf("edit output:\n%s", edited.stdout)
	}

	limited := cli("keys", "edit", id, "--rate-limits", "default=5:10,reports=2", "-o", "json").ok(t, "keys edit --rate-limits")
	if !strings.Contains(limited.stdout, `"default":{"rate":5,"burst":10}`) || !strings.Contains(limited.stdout, `"reports":{"rate":2,"burst":2}`) {
		t.Errorf("rate limits after edit:\n%s", limited.stdout)
	}
	if out := cli("keys", "edit", id, "--rate-limits", "none", "-o", "json").ok(t, "keys edit --rate-limits none").stdout; strings.Contains(out, "rate_limits") {
		t.Errorf("rate limits after none:\n%s", out)
	}
	if res := cli("keys", "edit", id, "--rate-limits", "default=0"); res.err == nil {
		t.Error("--rate-limits default=0 accepted")
	}

	disabled := cli("keys", "disable", id).ok(t, "keys disable")
	if got := disabled.field(t, "status"); got != "disabled" {
		t.Errorf("status after disable = %q", got)
	}
	if got := session(newKey); got != http.StatusUnauthorized {
		t.Errorf("session with a disabled key: status %d, want 401", got)
	}
	if got := cli("keys", "enable", id).ok(t).field(t, "status"); got != "active" {
		t.Errorf("status after enable = %q", got)
	}

	if out := cli("keys", "delete", id).ok(t, "keys delete").stdout; strings.TrimSpace(out) != "deleted key "+id {
		t.Errorf("delete output = %q", out)
	}
	gone := cli("keys", "get", id)
	if !errors.Is(gone.err, errFailed) || exitStatus(gone.err) != 1 || !strings.HasPrefix(gone.stderr, "error: 404 ") {
		t.Errorf("get of a deleted key: err %v, stderr %q; want exit 1 and error: 404", gone.err, gone.stderr)
	}

	audit := cli("audit", "list", "--limit", "100").ok(t, "audit list").stdout
	for _, want := range []string{"ACTION", "key.create", "key.rotate_secret", "key.delete"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit list lacks %q:\n%s", want, audit)
		}
	}
}

func TestCLIErrors(t *testing.T) {
	f := newFixture(t, "embedded")
	tok := f.TokenDSP(f.DSP(), "alice")
	dir := t.TempDir()

	res := f.cli(tok, nil, "keys", "create", "--name", " ", "--access-rights", "nope", "--expires-at", "tomorrow")
	if !errors.Is(res.err, errFailed) || exitStatus(res.err) != 1 {
		t.Errorf("invalid create: err %v, want exit status 1", res.err)
	}
	if !strings.HasPrefix(res.stderr, "error: 422 ") {
		t.Errorf("stderr = %q, want error: 422 …", res.stderr)
	}
	for _, field := range []string{"name", "access_rights", "expires_at"} {
		if !strings.Contains(res.stderr, "\n  "+field+": ") {
			t.Errorf("stderr does not name field %s:\n%s", field, res.stderr)
		}
	}

	if res := f.cli("not-a-token", nil, "keys", "list"); !errors.Is(res.err, errFailed) || !strings.HasPrefix(res.stderr, "error: 401 ") {
		t.Errorf("bad token: err %v, stderr %q; want exit 1 and error: 401", res.err, res.stderr)
	}

	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	usage := []struct {
		name string
		tok  string
		args []string
	}{
		{"no verb", tok, []string{"keys"}},
		{"unknown verb", tok, []string{"keys", "frobnicate"}},
		{"id not a number", tok, []string{"keys", "get", "abc"}},
		{"missing id", tok, []string{"keys", "get"}},
		{"extra argument", tok, []string{"keys", "list", "12"}},
		{"no token", "", []string{"keys", "list"}},
		{"token and token file", tok, []string{"keys", "list", "--token", tok, "--token-file", tokenFile}},
		{"bad output", tok, []string{"keys", "list", "-o", "yaml"}},
		{"bad server", tok, []string{"keys", "list", "--server", "ftp://example.test"}},
		{"no password flag", tok, []string{"users", "create", "--username", "erin", "--password", "x"}},
		{"no password source", tok, []string{"users", "create", "--username", "erin"}},
		{"bad overlap", tok, []string{"keys", "rotate", "1", "--overlap", "soon"}},
		{"edit with nothing", tok, []string{"keys", "edit", "1"}},
		{"keys have no grant types", tok, []string{"keys", "create", "--name", "k", "--grant-types", "eskimi_dsp"}},
		{"keys have no token", tok, []string{"keys", "token", "1"}},
	}
	for _, tc := range usage {
		t.Run(tc.name, func(t *testing.T) {
			res := f.cli(tc.tok, nil, tc.args...)
			if !errors.Is(res.err, errUsage) || exitStatus(res.err) != 2 {
				t.Errorf("%v: err %v, want a usage error (exit status 2); stderr %q", tc.args, res.err, res.stderr)
			}
		})
	}

	t.Run("token file", func(t *testing.T) {
		f.cli("", nil, "keys", "list", "--token-file", tokenFile).ok(t)
	})
	t.Run("server unreachable", func(t *testing.T) {
		res := f.cli(tok, map[string]string{config.CLIServerEnv: "http://127.0.0.1:1"}, "keys", "list")
		if !errors.Is(res.err, errFailed) || !strings.HasPrefix(res.stderr, "error: ") {
			t.Errorf("err %v, stderr %q; want exit 1 and an error line", res.err, res.stderr)
		}
	})
}

func TestCLIUsersAndClients(t *testing.T) {
	f := newFixture(t, "embedded")
	tok := f.TokenDSP(f.DSP(), "alice")
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "password")
	if err := os.WriteFile(pwFile, []byte(e2e.TestPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	acc := f.cli(tok, nil, "accounts", "create", "--name", "team").ok(t, "accounts create")
	accID := acc.field(t, "id")
	if got := acc.field(t, "name"); got != "team" {
		t.Errorf("account name = %q", got)
	}
	if out := f.cli(tok, nil, "accounts", "children", strconv.FormatInt(f.Root().ID, 10)).ok(t).stdout; !strings.Contains(out, "team") {
		t.Errorf("children of root lack the new account:\n%s", out)
	}

	user := f.cli(tok, nil, "users", "create", "--username", "erin", "--account", accID, "--password-file", pwFile).ok(t, "users create")
	if user.field(t, "username") != "erin" || user.field(t, "account_id") != accID || user.field(t, "role") != "member" {
		t.Errorf("users create output:\n%s", user.stdout)
	}
	if strings.Contains(user.stdout+user.stderr, e2e.TestPassword) {
		t.Errorf("users create printed the password")
	}
	f.TokenDSP(f.DSP(), "erin") // the password works
	userID := user.field(t, "id")
	if out := f.cli(tok, nil, "users", "list", "--account", accID).ok(t).stdout; !regexp.MustCompile(`(?m)^` + userID + ` +` + accID + ` +erin +member +active`).MatchString(out) {
		t.Errorf("users list:\n%s", out)
	}
	if got := f.cli(tok, nil, "users", "set-role", userID, "--role", "admin").ok(t).field(t, "role"); got != "admin" {
		t.Errorf("role after set-role = %q", got)
	}
	newPassword := "a new password of erin"
	res := f.cli(tok, map[string]string{config.CLIPasswordEnv: newPassword}, "users", "reset-password", userID).ok(t, "users reset-password")
	if strings.Contains(res.stdout, newPassword) {
		t.Errorf("reset-password printed the password")
	}

	client := f.cli(tok, nil, "clients", "create", "--name", "reporting", "--scopes", "reports,events",
		"--grant-types", "client_credentials", "--token-lifetime", "2h", "--expires-at", "2100-01-01T00:00:00Z",
		"--access-token-strategy", "jwt").ok(t, "clients create")
	clientID := client.field(t, "id")
	f.HandOut(client.field(t, "client_secret"))
	if client.field(t, "token_lifetime") != "7200" || client.field(t, "scopes") != "reports events" ||
		client.field(t, "expires_at") != "2100-01-01T00:00:00Z" || !strings.Contains(client.stdout, "Shown once") ||
		client.field(t, "access_token_strategy") != "jwt" {
		t.Errorf("clients create output:\n%s", client.stdout)
	}
	if strings.Contains(client.stdout, "\nkey ") {
		t.Errorf("a client shows a key:\n%s", client.stdout)
	}
	wrong := f.cli(tok, map[string]string{config.CLIPasswordEnv: "not the password"}, "clients", "token", clientID)
	if !errors.Is(wrong.err, errFailed) || !strings.HasPrefix(wrong.stderr, "error: 403 ") {
		t.Errorf("clients token with a wrong password: err %v, stderr %q", wrong.err, wrong.stderr)
	}
	minted := f.cli(tok, map[string]string{config.CLIPasswordEnv: e2e.TestPassword}, "clients", "token", clientID, "--lifetime", "720h").ok(t, "clients token")
	access := minted.field(t, "access_token")
	if minted.field(t, "expires_in") != "2592000" || !strings.Contains(minted.stdout, "Shown once") || !f.Active(access) {
		t.Errorf("clients token output:\n%s", minted.stdout)
	}
	if !strings.HasPrefix(access, "eyJ") || strings.Count(access, ".") != 2 {
		t.Errorf("the token of a jwt client is not a JWT: %.12s…", access)
	}
	edited := f.cli(tok, nil, "clients", "edit", clientID, "--access-token-strategy", "opaque").ok(t, "clients edit")
	if got := edited.field(t, "access_token_strategy"); got != "opaque" {
		t.Errorf("access_token_strategy after clients edit = %q, want opaque", got)
	}
	if got := edited.field(t, "dpop_bound_access_tokens"); got != "false" {
		t.Errorf("dpop_bound_access_tokens of a new client = %q, want false", got)
	}
	edited = f.cli(tok, nil, "clients", "edit", clientID, "--dpop-bound-access-tokens").ok(t, "clients edit")
	if got := edited.field(t, "dpop_bound_access_tokens"); got != "true" {
		t.Errorf("dpop_bound_access_tokens after clients edit --dpop-bound-access-tokens = %q, want true", got)
	}

	if out := f.cli(tok, nil, "users", "delete", userID).ok(t).stdout; strings.TrimSpace(out) != "deleted user "+userID {
		t.Errorf("users delete output = %q", out)
	}
	if out := f.cli(tok, nil, "accounts", "disable", accID, "-o", "json").ok(t).stdout; !strings.Contains(out, `"status":"disabled"`) {
		t.Errorf("accounts disable -o json = %s", out)
	}
}

// TestCLIUsage keeps the top-level usage in step with the verbs.
func TestCLIUsage(t *testing.T) {
	for _, r := range cliResources() {
		line := regexp.MustCompile(`(?m)^  ` + r.name + ` +(\S+)$`).FindStringSubmatch(usageText)
		if line == nil {
			t.Errorf("usage does not list %s", r.name)
			continue
		}
		var names []string
		for _, v := range r.verbs {
			names = append(names, v.name)
		}
		if got, want := line[1], strings.Join(names, "|"); got != want {
			t.Errorf("usage lists %s verbs %s, want %s", r.name, got, want)
		}
		var stdout bytes.Buffer
		if err := run(t.Context(), []string{r.name, "-h"}, env{stdout: &stdout, stderr: &stdout, lookupEnv: func(string) (string, bool) { return "", false }}); err != nil {
			t.Errorf("%s -h: %v", r.name, err)
		}
		for _, v := range r.verbs {
			if !strings.Contains(stdout.String(), "  "+v.name+" ") {
				t.Errorf("%s -h does not list %s:\n%s", r.name, v.name, stdout.String())
			}
		}
	}
}

// TestCLIVariablesDoNotBreakServe checks that a shell set up for the
// management commands can still load the server's configuration.
func TestCLIVariablesDoNotBreakServe(t *testing.T) {
	for _, name := range []string{config.CLIServerEnv, config.CLITokenEnv, config.CLIPasswordEnv, config.CLIClientSecretEnv, config.CLIAPIKeyEnv} {
		t.Setenv(name, "set")
	}
	t.Setenv("TOLLGATE_NOT_A_SETTING", "set")
	_, err := config.Load("", os.LookupEnv)
	if err == nil || !strings.Contains(err.Error(), "TOLLGATE_NOT_A_SETTING") {
		t.Fatalf("Load = %v, want an error naming only TOLLGATE_NOT_A_SETTING", err)
	}
	for _, name := range []string{config.CLIServerEnv, config.CLITokenEnv, config.CLIPasswordEnv, config.CLIClientSecretEnv, config.CLIAPIKeyEnv} {
		if strings.Contains(err.Error(), name) {
			t.Errorf("Load refuses %s: %v", name, err)
		}
	}
}

// TestAdminExpiredKeyReadsExpired: a key past its expiry is refused at
// once, so the API and the CLI say "expired" at once too, not "active"
// until the sweeper's next run.
func TestAdminExpiredKeyReadsExpired(t *testing.T) {
	f := newFixture(t, "embedded")
	tok := f.TokenDSP(f.DSP(), "alice")
	alice := "Bearer " + tok
	expires := f.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	created := f.APIJSON("POST", "/keys", alice, `{"name":"short lived","expires_at":"`+expires+`"}`, http.StatusCreated)
	f.HandOut(created["key"].(string), created["client_secret"].(string))
	kid := e2e.ID(created)
	statusOf := func() (get, listed, cli string) {
		t.Helper()
		get, _ = f.APIJSON("GET", "/keys/"+kid, alice, "", http.StatusOK)["status"].(string)
		for _, it := range e2e.AdmItems(t, f.APIJSON("GET", "/keys?limit=100", alice, "", http.StatusOK)) {
			if e2e.ID(it) == kid {
				listed, _ = it["status"].(string)
			}
		}
		cli = f.cli(tok, nil, "keys", "get", kid).ok(t, "keys get").field(t, "status")
		return get, listed, cli
	}
	tests := []struct {
		name    string
		advance time.Duration
		want    string
		session int
	}{
		{"before its expiry", 0, "active", http.StatusOK},
		{"past its expiry, before the sweep", 90 * time.Minute, "expired", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		f.Advance(tt.advance)
		if got := f.PostStatus("/auth/access/session", "", "", "X-API-Key", created["key"].(string)); got != tt.session {
			t.Errorf("%s: key session status %d, want %d", tt.name, got, tt.session)
		}
		get, listed, cli := statusOf()
		if get != tt.want || listed != tt.want || cli != tt.want {
			t.Errorf("%s: status GET %q, list %q, CLI %q; want %q", tt.name, get, listed, cli, tt.want)
		}
	}
	// The stored status is untouched: enabling is not needed, and writing
	// "expired" is not a thing.
	f.APIProblem(t, "PATCH", "/keys/"+kid, alice, `{"status":"expired"}`, http.StatusUnprocessableEntity, "status")
}

// TestCLIPrivateKeyJWTClient: a client registered with a JWK Set file is
// shown no secret, and moves to a jwks_uri and back to a secret.
func TestCLIPrivateKeyJWTClient(t *testing.T) {
	f := newFixture(t, "embedded")
	tok := f.TokenDSP(f.DSP(), "alice")
	jwks := filepath.Join(t.TempDir(), "jwks.json")
	set := `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1","alg":"EdDSA"}]}`
	if err := os.WriteFile(jwks, []byte(set), 0o600); err != nil {
		t.Fatal(err)
	}
	created := f.cli(tok, nil, "clients", "create", "--name", "signer", "--grant-types", "client_credentials",
		"--token-endpoint-auth-method", "private_key_jwt", "--jwks-file", jwks).ok(t, "clients create")
	if got := created.field(t, "token_endpoint_auth_method"); got != "private_key_jwt" {
		t.Errorf("token_endpoint_auth_method = %q, want private_key_jwt", got)
	}
	if strings.Contains(created.stdout, "client_secret ") || strings.Contains(created.stdout, "Shown once") {
		t.Errorf("a private_key_jwt client was shown a secret:\n%s", created.stdout)
	}
	id := created.field(t, "id")
	edited := f.cli(tok, nil, "clients", "edit", id, "--jwks-uri", "https://keys.example.com/jwks.json").ok(t, "clients edit")
	if got := edited.field(t, "jwks_uri"); got != "https://keys.example.com/jwks.json" {
		t.Errorf("jwks_uri = %q", got)
	}
	bad := f.cli(tok, nil, "clients", "edit", id, "--jwks-uri", "https://169.254.169.254/latest/meta-data/")
	if !errors.Is(bad.err, errFailed) || !strings.Contains(bad.stderr, "jwks_uri") {
		t.Errorf("a metadata-address jwks_uri: err %v, stderr %q; want a refusal naming jwks_uri", bad.err, bad.stderr)
	}
	if err := os.WriteFile(jwks, []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if res := f.cli(tok, nil, "clients", "edit", id, "--jwks-file", jwks); !errors.Is(res.err, errFailed) {
		t.Errorf("a symmetric key: err %v, want a refusal", res.err)
	}
	back := f.cli(tok, nil, "clients", "edit", id, "--token-endpoint-auth-method", "client_secret_basic").ok(t, "clients edit")
	if got := back.field(t, "token_endpoint_auth_method"); got != "client_secret_basic" {
		t.Errorf("token_endpoint_auth_method after the switch = %q", got)
	}
}

// TestCLIFederatedCredentials: a client's federated credentials are added
// with claim conditions, listed and deleted; an http issuer is refused.
func TestCLIFederatedCredentials(t *testing.T) {
	f := newFixture(t, "embedded")
	tok := f.TokenDSP(f.DSP(), "alice")
	created := f.cli(tok, nil, "clients", "create", "--name", "deployer", "--grant-types", "client_credentials").ok(t, "clients create")
	id := created.field(t, "id")
	added := f.cli(tok, nil, "clients", "federated-add", id, "--issuer", "https://token.actions.githubusercontent.com",
		"--subject", "repo:octo-org/deploy:ref:refs/heads/main", "--audience", "https://tollgate.example",
		"--claim", "repository_id=123456789", "--claim", "job_workflow_ref=octo-org/deploy/.github/workflows/release.yml@refs/heads/main",
		"--name", "release").ok(t, "clients federated-add")
	if got := added.field(t, "subject"); got != "repo:octo-org/deploy:ref:refs/heads/main" {
		t.Errorf("subject = %q", got)
	}
	if !strings.Contains(added.stdout, "repository_id") {
		t.Errorf("the claim conditions are not shown:\n%s", added.stdout)
	}
	fid := added.field(t, "id")
	listed := f.cli(tok, nil, "clients", "federated-list", id).ok(t, "clients federated-list")
	if !strings.Contains(listed.stdout, "release") || !strings.Contains(listed.stdout, "https://token.actions.githubusercontent") {
		t.Errorf("list:\n%s", listed.stdout)
	}
	bad := f.cli(tok, nil, "clients", "federated-add", id, "--issuer", "http://issuer.example", "--subject", "s", "--audience", "a")
	if !errors.Is(bad.err, errFailed) || !strings.Contains(bad.stderr, "issuer") {
		t.Errorf("an http issuer: err %v, stderr %q; want a refusal naming issuer", bad.err, bad.stderr)
	}
	if res := f.cli(tok, nil, "clients", "federated-add", id, "--issuer", "https://i.example", "--subject", "s", "--audience", "a", "--claim", "novalue"); res.err == nil {
		t.Error("--claim without = was accepted")
	}
	f.cli(tok, nil, "clients", "federated-delete", id, "--credential", fid).ok(t, "clients federated-delete")
	if res := f.cli(tok, nil, "clients", "federated-delete", id, "--credential", fid); !errors.Is(res.err, errFailed) {
		t.Errorf("deleting twice: err %v, want a refusal", res.err)
	}
}

// tollgate usage show prints a credential's rolled-up usage as a table or
// as the API's JSON, and refuses a query without exactly one of its ids.
func TestCLIUsageShow(t *testing.T) {
	f := newFixture(t, "embedded")
	tok := f.TokenDSP(f.DSP(), "alice")
	cli := func(args ...string) cliResult { t.Helper(); return f.cli(tok, nil, args...) }
	_, ccID := f.TokenCC()
	f.TokenCC()
	f.RollUp(t)
	id := strconv.FormatInt(ccID, 10)
	out := cli("usage", "show", "--credential", id, "--granularity", "minute").ok(t, "usage show").stdout
	for _, want := range []string{"TIME", "CREDENTIAL ID", "OUTCOME", "COUNT", id, "token", "allowed"} {
		if !strings.Contains(strings.ToUpper(out), strings.ToUpper(want)) {
			t.Errorf("usage show lacks %q:\n%s", want, out)
		}
	}
	js := cli("usage", "show", "--credential", id, "--granularity", "day", "-o", "json").ok(t, "usage show -o json").stdout
	var body struct {
		Items []struct {
			CredentialID int64  `json:"credential_id"`
			Outcome      string `json:"outcome"`
			Count        int64  `json:"count"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(js), &body); err != nil || len(body.Items) != 1 || body.Items[0].Count != 2 || body.Items[0].Outcome != "allowed" {
		t.Errorf("usage show -o json = %s (%v), want one day of 2 allowed", js, err)
	}
	for _, args := range [][]string{
		{"usage", "show"},
		{"usage", "show", "--credential", id, "--account", "1"},
		{"usage", "show", "--credential", id, "--from", "yesterday"},
	} {
		if res := cli(args...); !errors.Is(res.err, errUsage) {
			t.Errorf("%v: err %v, want a usage error", args, res.err)
		}
	}
	if res := cli("usage", "show", "--credential", id, "--granularity", "week"); !errors.Is(res.err, errFailed) || !strings.Contains(res.stderr, "400") {
		t.Errorf("an unknown granularity: err %v, stderr %q; want the server's 400", res.err, res.stderr)
	}
}

// TestCLIWebhooks: create shows the secret once with its warning, get and
// list never; edit, test, deliveries, rotate and delete work; a URL of a
// non-public address is refused naming url.
func TestCLIWebhooks(t *testing.T) {
	f := newFixture(t, "embedded")
	tok := f.TokenDSP(f.DSP(), "alice")
	created := f.cli(tok, nil, "webhooks", "create", "--url", "https://hooks.example.com/tollgate", "--events", "credential.created,credential.leaked",
		"--description", "ops").ok(t, "webhooks create")
	if !strings.Contains(created.stdout, "Shown once") || !strings.Contains(created.stdout, "whsec_") {
		t.Fatalf("create does not show the secret once:\n%s", created.stdout)
	}
	id := created.field(t, "id")
	got := f.cli(tok, nil, "webhooks", "get", id).ok(t, "webhooks get")
	listed := f.cli(tok, nil, "webhooks", "list").ok(t, "webhooks list")
	for _, out := range []string{got.stdout, listed.stdout} {
		if strings.Contains(out, "whsec_") || !strings.Contains(out, "hooks.example.com") {
			t.Errorf("get or list:\n%s", out)
		}
	}
	if edited := f.cli(tok, nil, "webhooks", "edit", id, "--enabled=false").ok(t, "webhooks edit"); edited.field(t, "enabled") != "false" {
		t.Errorf("edit:\n%s", edited.stdout)
	}
	f.cli(tok, nil, "webhooks", "test", id).ok(t, "webhooks test")
	if log := f.cli(tok, nil, "webhooks", "deliveries", id).ok(t, "webhooks deliveries"); !strings.Contains(log.stdout, "webhook.test") {
		t.Errorf("deliveries:\n%s", log.stdout)
	}
	if rotated := f.cli(tok, nil, "webhooks", "rotate", id).ok(t, "webhooks rotate"); !strings.Contains(rotated.stdout, "whsec_") {
		t.Errorf("rotate:\n%s", rotated.stdout)
	}
	bad := f.cli(tok, nil, "webhooks", "create", "--url", "https://169.254.169.254/latest", "--events", "credential.created")
	if !errors.Is(bad.err, errFailed) || !strings.Contains(bad.stderr, "url") {
		t.Errorf("a metadata URL: err %v, stderr %q", bad.err, bad.stderr)
	}
	f.cli(tok, nil, "webhooks", "delete", id).ok(t, "webhooks delete")
}
