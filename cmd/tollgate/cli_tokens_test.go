package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/e2e"
)

// TestCLITokensExchange: `tokens exchange` narrows a management client's
// token to a child account (which then manages the child and not its
// parent), exchanges an API key, shows the server's invalid_scope for a
// wider scope, and refuses to run without the client's secret.
func TestCLITokensExchange(t *testing.T) {
	for _, backend := range e2e.TestBackends {
		t.Run(backend, func(t *testing.T) {
			f := newFixture(t, backend)
			dir := t.TempDir()
			write := func(name, content string) string {
				t.Helper()
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				return p
			}
			root, child := strconv.FormatInt(f.Root().ID, 10), strconv.FormatInt(f.Child().ID, 10)
			mgr, secret := f.AdmManager(f.Root())
			mgrID := strconv.FormatInt(mgr.ID, 10)
			secretFile := write("secret", secret)
			// The exchange needs no management token: none is set.
			exchange := func(vars map[string]string, args ...string) cliResult {
				t.Helper()
				res := f.cli("", vars, append([]string{"tokens", "exchange"}, args...)...)
				if strings.Contains(res.stdout+res.stderr, secret) {
					t.Errorf("%v: the client secret was printed", args)
				}
				return res
			}

			narrowed := exchange(nil, "--client-id", mgrID, "--client-secret-file", secretFile, "--account", child).ok(t, "tokens exchange --account")
			tok := narrowed.field(t, "access_token")
			f.HandOut(tok)
			if strings.Contains(narrowed.stderr, tok) {
				t.Error("the token was printed on stderr")
			}
			for name, want := range map[string]string{"token_type": "bearer", "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
				"scope": "tollgate:manage"} {
				if got := narrowed.field(t, name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			if n, err := strconv.Atoi(narrowed.field(t, "expires_in")); err != nil || n <= 0 {
				t.Errorf("expires_in = %q, want a positive number", narrowed.field(t, "expires_in"))
			}
			if got := f.cli(tok, nil, "accounts", "get", child).ok(t, "accounts get child").field(t, "name"); got != "child" {
				t.Errorf("the narrowed token reading the child: name %q, want child", got)
			}
			parent := f.cli(tok, nil, "accounts", "get", root)
			if !errors.Is(parent.err, errFailed) || !strings.HasPrefix(parent.stderr, "error: 404 ") {
				t.Errorf("the narrowed token reading the parent: err %v, stderr %q; want exit 1 and error: 404", parent.err, parent.stderr)
			}

			t.Run("subject token from a file, secret from the variable, JSON", func(t *testing.T) {
				whole := exchange(map[string]string{config.CLIClientSecretEnv: secret}, "--client-id", mgrID).ok(t, "tokens exchange")
				subject := whole.field(t, "access_token")
				f.HandOut(subject)
				out := exchange(map[string]string{config.CLIClientSecretEnv: secret}, "--client-id", mgrID,
					"--subject-token-file", write("subject", subject), "--account", child, "-o", "json").ok(t, "tokens exchange -o json").stdout
				var got struct {
					AccessToken string `json:"access_token"`
					TokenType   string `json:"token_type"`
					ExpiresIn   int64  `json:"expires_in"`
				}
				if err := json.Unmarshal([]byte(out), &got); err != nil || got.AccessToken == "" || got.ExpiresIn <= 0 {
					t.Fatalf("-o json = %s (%v), want the token's JSON", out, err)
				}
				f.HandOut(got.AccessToken)
				if got.AccessToken == subject {
					t.Error("the exchange answered the subject token itself")
				}
				if res := f.cli(got.AccessToken, nil, "accounts", "get", root); !errors.Is(res.err, errFailed) {
					t.Errorf("a token exchanged from a given subject reading the parent: err %v, want exit 1", res.err)
				}
			})

			t.Run("API key", func(t *testing.T) {
				alice := f.TokenDSP(f.DSP(), "alice")
				created := f.cli(alice, nil, "keys", "create", "--name", "exchanged", "--access-rights", "events_contacts").ok(t, "keys create")
				key := created.field(t, "key")
				f.HandOut(key, created.field(t, "client_secret"))
				for name, res := range map[string]cliResult{
					"file":     exchange(nil, "--api-key-file", write("key", key), "--scope", "events"),
					"variable": exchange(map[string]string{config.CLIAPIKeyEnv: key}, "--scope", "events"),
				} {
					res.ok(t, "tokens exchange --api-key-file ("+name+")")
					if strings.Contains(res.stdout+res.stderr, key) {
						t.Errorf("%s: the API key was printed", name)
					}
					kt := res.field(t, "access_token")
					f.HandOut(kt)
					if got := res.field(t, "scope"); got != "events" {
						t.Errorf("%s: scope = %q, want events", name, got)
					}
					if !f.Active(kt) {
						t.Errorf("%s: the key token is not active", name)
					}
				}
				if res := exchange(nil, "--api-key-file", write("wrong", typo(key))); !errors.Is(res.err, errFailed) || !strings.HasPrefix(res.stderr, "error: 401 ") {
					t.Errorf("a wrong key: err %v, stderr %q; want exit 1 and error: 401", res.err, res.stderr)
				}
			})

			t.Run("wider scope", func(t *testing.T) {
				res := exchange(nil, "--client-id", mgrID, "--client-secret-file", secretFile, "--scope", "tollgate:manage", "--scope", "read")
				if !errors.Is(res.err, errFailed) || exitStatus(res.err) != 1 || !strings.HasPrefix(res.stderr, "error: 400 invalid_scope") {
					t.Errorf("a wider scope: err %v, stderr %q; want exit 1 and error: 400 invalid_scope", res.err, res.stderr)
				}
				if res.stdout != "" {
					t.Errorf("stdout = %q, want nothing", res.stdout)
				}
			})

			t.Run("wrong secret", func(t *testing.T) {
				res := exchange(nil, "--client-id", mgrID, "--client-secret-file", write("wrong-secret", typo(secret)))
				if !errors.Is(res.err, errFailed) || !strings.HasPrefix(res.stderr, "error: 401 ") {
					t.Errorf("a wrong secret: err %v, stderr %q; want exit 1 and error: 401", res.err, res.stderr)
				}
			})

			t.Run("usage errors", func(t *testing.T) {
				for _, tc := range []struct {
					name string
					vars map[string]string
					args []string
					want string
				}{
					{"no secret", nil, []string{"--client-id", mgrID}, config.CLIClientSecretEnv},
					{"empty secret file", nil, []string{"--client-id", mgrID, "--client-secret-file", write("empty", "")}, "empty"},
					{"missing secret file", nil, []string{"--client-id", mgrID, "--client-secret-file", filepath.Join(dir, "absent")}, "--client-secret-file"},
					{"no credentials", nil, nil, "--api-key-file"},
					{"client and key", nil, []string{"--client-id", mgrID, "--client-secret-file", secretFile, "--api-key-file", secretFile}, "not both"},
					{"subject without client", map[string]string{config.CLIAPIKeyEnv: "tgk_1_x"}, []string{"--subject-token-file", secretFile}, "--client-id"},
					{"secret as a token flag", nil, []string{"--client-id", mgrID, "--client-secret-file", secretFile, "--token", "x"}, "not defined: -token"},
					{"account zero", nil, []string{"--client-id", mgrID, "--client-secret-file", secretFile, "--account", "0"}, "--account"},
					{"positional argument", nil, []string{"--client-id", mgrID, "--client-secret-file", secretFile, "12"}, "unexpected"},
				} {
					res := exchange(tc.vars, tc.args...)
					if !errors.Is(res.err, errUsage) || exitStatus(res.err) != 2 || !strings.Contains(res.stderr, tc.want) {
						t.Errorf("%s: err %v, stderr %q; want a usage error naming %q", tc.name, res.err, res.stderr, tc.want)
					}
				}
			})
		})
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
