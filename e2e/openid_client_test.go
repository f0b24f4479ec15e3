package e2e

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/storage"
)

// openidClientVersion is the npm openid-client whose DPoP support gets a
// bound token and uses it, as a JavaScript client of the platform would.
const openidClientVersion = "6.8.9"

// openidClientDPoP gets a client_credentials token with a DPoP proof of a
// fresh ES256 key pair, then calls an API with it through
// fetchProtectedResource. Its fetch is the network: requests to the issuer
// go to Tollgate (the issuer's URL, not Tollgate's, is what the proofs
// name, as behind a proxy), and the API is played by a gateway that asks
// /auth/check, forwarding the API request's method and URL. It also replays
// the API call's proof, and sends the bound token as Bearer.
const openidClientDPoP = `import * as client from 'openid-client';
const [tollgate, issuer, clientId, clientSecret, api] = process.argv.slice(2);
const config = new client.Configuration({ issuer, token_endpoint: issuer + '/oauth/token',
  dpop_signing_alg_values_supported: ['ES256'] }, clientId, clientSecret);
const checks = [];
let lastProof;
const check = async (u, method, headers) => {
  const h = new Headers(headers);
  h.set('X-Forwarded-Method', method);
  h.set('X-Forwarded-Proto', u.protocol.slice(0, -1));
  h.set('X-Forwarded-Host', u.host);
  h.set('X-Forwarded-Uri', u.pathname + u.search);
  h.set('X-Tollgate-Scope', 'read');
  const res = await fetch(tollgate + '/auth/check', { method: 'POST', headers: h });
  return { status: res.status, www: res.headers.get('www-authenticate'), client: res.headers.get('x-tollgate-client-id') };
};
config[client.customFetch] = async (url, options) => {
  const u = new URL(url);
  if (u.origin === new URL(issuer).origin) {
    return fetch(tollgate + u.pathname + u.search, options);
  }
  const headers = new Headers(options.headers);
  lastProof = headers.get('dpop');
  const got = await check(u, options.method, headers);
  checks.push(got);
  return new Response(JSON.stringify(got), { status: 200, headers: { 'content-type': 'application/json' } });
};
const DPoP = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
const tokens = await client.clientCredentialsGrant(config, { scope: 'read' }, { DPoP });
const url = new URL(api);
await client.fetchProtectedResource(config, tokens.access_token, url, 'GET', null, undefined, { DPoP });
const replay = await check(url, 'GET', { authorization: 'DPoP ' + tokens.access_token, dpop: lastProof });
const bearer = await check(url, 'GET', { authorization: 'Bearer ' + tokens.access_token });
console.log(JSON.stringify({ token_type: tokens.token_type, check: checks[0], replay, bearer }));
`

// npmDir returns a directory with pkg@version installed by npm (once per
// version) and script written in it as file name. CI installs Node
// (.ci/run): under CI=true its absence fails the test instead of skipping
// it.
func npmDir(t *testing.T, pkg, version, name, script string) string {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found (CI=true, not skipping): apt-get install -y nodejs npm", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cache, "tollgate-tools", "npm-"+pkg+"-"+version)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(t.Context(), "npm", "install", "--no-audit", "--no-fund", "--prefix", dir, pkg+"@"+version)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm install %s@%s: %v\n%s", pkg, version, err, out)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o644); err != nil { // #nosec G306 -- a test script
		t.Fatal(err)
	}
	return dir
}

// TestOpenIDClientDPoP: openid-client, a DPoP implementation Tollgate did
// not write, gets a bound token for a client with dpop_bound_access_tokens
// and calls an API with it through a gateway asking /auth/check; the
// API call's proof is good once, and the token is no Bearer token.
func TestOpenIDClientDPoP(t *testing.T) {
	dir := npmDir(t, "openid-client", openidClientVersion, "dpop.mjs", openidClientDPoP)
	for _, backend := range testBackends {
		t.Run(backend, func(t *testing.T) {
			f := newFixture(t, backend)
			c := f.client(dpopClient(storage.Client{AccountID: f.root.ID, Name: "openid-client", GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"}}))
			cmd := exec.CommandContext(t.Context(), "node", filepath.Join(dir, "dpop.mjs"), f.srv.URL, "https://auth.example.test",
				strconv.FormatInt(c.ID, 10), f.secretOf[c.ID], "https://api.example.test/v1/events?page=2")
			cmd.Dir = dir
			out, err := cmd.Output()
			if err != nil {
				stderr := ""
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					stderr = string(ee.Stderr)
				}
				t.Fatalf("openid-client: %v\n%s%s", err, out, stderr)
			}
			type checked struct {
				Status int    `json:"status"`
				WWW    string `json:"www"`
				Client string `json:"client"`
			}
			var got struct {
				TokenType string  `json:"token_type"`
				Check     checked `json:"check"`
				Replay    checked `json:"replay"`
				Bearer    checked `json:"bearer"`
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("openid-client printed %q: %v", out, err)
			}
			if !strings.EqualFold(got.TokenType, "DPoP") {
				t.Errorf("token_type = %q, want DPoP", got.TokenType)
			}
			if got.Check.Status != http.StatusOK || got.Check.Client != strconv.FormatInt(c.ID, 10) {
				t.Errorf("/auth/check with openid-client's proof: %+v, want 200 for client %d", got.Check, c.ID)
			}
			if got.Replay.Status != http.StatusUnauthorized || !strings.Contains(got.Replay.WWW, `error="invalid_dpop_proof"`) {
				t.Errorf("the proof replayed: %+v, want 401 invalid_dpop_proof", got.Replay)
			}
			if got.Bearer.Status != http.StatusUnauthorized || !strings.HasPrefix(got.Bearer.WWW, "DPoP ") {
				t.Errorf("the bound token as Bearer: %+v, want 401 with a DPoP challenge", got.Bearer)
			}
		})
	}
}
