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

// TestOpenIDClientPrivateKeyJWT: openid-client 6, a client library Tollgate
// did not write, authenticates with private_key_jwt (aud = the issuer) at
// the token, introspection and revocation endpoints, on both backends.
func TestOpenIDClientPrivateKeyJWT(t *testing.T) {
	dir := npmDir(t, "openid-client", openidClientVersion, "run.mjs", openidClientScript)
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
