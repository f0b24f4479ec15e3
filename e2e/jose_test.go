package e2e

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/storage"
)

// joseVersion is the npm jose that verifies a JWT access token as a
// resource server written in JavaScript would.
const joseVersion = "6.2.17"

// joseVerify is the resource server: jose's remote JWK Set and jwtVerify,
// with the issuer, typ and algorithm a verifier should pin.
const joseVerify = `import { createRemoteJWKSet, jwtVerify } from 'jose';
const [jwksURL, token, issuer] = process.argv.slice(2);
const jwks = createRemoteJWKSet(new URL(jwksURL));
const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer, typ: 'at+jwt', algorithms: ['ES256'] });
console.log(JSON.stringify({ payload, protectedHeader }));
`

// TestJoseVerifiesJWTAccessTokens: npm's jose, a verifier Tollgate did not
// write, verifies a JWT access token against the served JWK Set, and
// refuses one whose claims were changed.
func TestJoseVerifiesJWTAccessTokens(t *testing.T) {
	dir := npmDir(t, "jose", joseVersion, "verify.mjs", joseVerify)
	f := newFixture(t, "embedded")
	c := f.client(jwtClient(storage.Client{AccountID: f.root.ID, Name: "jose", GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"}}))
	tok := f.tokenCC(c, "scope", "read")
	verify := func(token string) (string, error) {
		cmd := exec.CommandContext(t.Context(), "node", filepath.Join(dir, "verify.mjs"), f.srv.URL+"/.well-known/jwks.json", token, "https://auth.example.test")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := verify(tok)
	if err != nil {
		t.Fatalf("jose refuses the token: %v\n%s", err, out)
	}
	var got struct {
		Payload         map[string]any `json:"payload"`
		ProtectedHeader map[string]any `json:"protectedHeader"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("jose printed %q: %v", out, err)
	}
	if got.Payload["client_id"] != strconv.FormatInt(c.ID, 10) || got.Payload["scope"] != "read" || got.ProtectedHeader["typ"] != "at+jwt" {
		t.Errorf("jose read %+v", got)
	}

	parts := strings.Split(tok, ".")
	forged := parts[0] + "." + segmentOf(`{"iss":"https://auth.example.test","client_id":"1","scope":"admin"}`) + "." + parts[2]
	if out, err := verify(forged); err == nil {
		t.Errorf("jose accepts a token with changed claims: %s", out)
	} else if !strings.Contains(out, "signature verification failed") {
		t.Errorf("jose refused the forged token for another reason: %s", out)
	}
}
