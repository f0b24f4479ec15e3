package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/tollgate/tollgate/storage"
)

// openidClientVersion is the npm openid-client whose private_key_jwt client
// authentication gets, introspects and revokes tokens.
const openidClientVersion = "6.9.1"

// openidClientScript authenticates with openid-client's PrivateKeyJwt (aud
// = the issuer, its own jti and exp) at the token, introspection and
// revocation endpoints. The private JWK comes in the environment.
const openidClientScript = `import * as client from 'openid-client';
const [base, issuer, clientId, kid] = process.argv.slice(2);
const jwk = JSON.parse(process.env.PKJWT_PRIVATE_JWK);
const key = await crypto.subtle.importKey('jwk', jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
const server = { issuer, token_endpoint: base + '/oauth/token', introspection_endpoint: base + '/oauth/introspect',
  revocation_endpoint: base + '/oauth/revoke' };
const config = new client.Configuration(server, clientId, {}, client.PrivateKeyJwt({ key, kid }));
client.allowInsecureRequests(config);
const tokens = await client.clientCredentialsGrant(config, { scope: 'read' });
const before = await client.tokenIntrospection(config, tokens.access_token);
await client.tokenRevocation(config, tokens.access_token);
const after = await client.tokenIntrospection(config, tokens.access_token);
console.log(JSON.stringify({ token_type: tokens.token_type, scope: tokens.scope, client_id: before.client_id,
  before: before.active, after: after.active }));
`

// npmDir returns a directory with pkg@version installed by npm and script
// written as run.mjs, made once per version. CI installs Node (.ci/run):
// under CI=true its absence fails the test instead of skipping it.
func npmDir(t *testing.T, pkg, version, script string) string {
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
	if err := os.WriteFile(filepath.Join(dir, "run.mjs"), []byte(script), 0o644); err != nil { // #nosec G306 -- a test script
		t.Fatal(err)
	}
	return dir
}

// TestOpenIDClientPrivateKeyJWT: openid-client 6, a client library Tollgate
// did not write, authenticates with private_key_jwt (aud = the issuer) at
// the token, introspection and revocation endpoints, on both backends.
func TestOpenIDClientPrivateKeyJWT(t *testing.T) {
	dir := npmDir(t, "openid-client", openidClientVersion, openidClientScript)
	forEachBackend(t, func(t *testing.T, f *fixture) {
		k := newClientKey(t, jose.ES256, "node")
		c := f.pkjwtClient("openid-client", keySet(t, k), func(c *storage.Client) { c.MayIntrospect = true })
		priv, err := jose.JSONWebKey{Key: k.priv}.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(t.Context(), "node", filepath.Join(dir, "run.mjs"), f.srv.URL, f.cfg.Issuer, strconv.FormatInt(c.ID, 10), k.kid)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PKJWT_PRIVATE_JWK="+string(priv))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("openid-client: %v\n%s", err, out)
		}
		var got struct {
			TokenType string `json:"token_type"`
			Scope     string `json:"scope"`
			ClientID  string `json:"client_id"`
			Before    bool   `json:"before"`
			After     bool   `json:"after"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("openid-client printed %q: %v", out, err)
		}
		if got.TokenType != "bearer" || got.Scope != "read" || !got.Before || got.After || got.ClientID != strconv.FormatInt(c.ID, 10) {
			t.Errorf("openid-client saw %+v, want scope read, active before the revocation and not after", got)
		}
	})
}
