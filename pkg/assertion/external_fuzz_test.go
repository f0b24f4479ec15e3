package assertion_test

import (
	"errors"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/tollgate/tollgate/pkg/assertion"
)

// FuzzParseExternal: any bytes are parsed as an external issuer's token
// and then verified against a fixed key set; every failure is ErrInvalid,
// nothing panics.
func FuzzParseExternal(f *testing.F) {
	k := newKey(f, jose.ES256, "k1")
	set, err := assertion.ParseKeySet(keySetJSON(f, k.jwk(f, true)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(k.sign(f, map[string]any{"iss": "https://token.actions.githubusercontent.com", "sub": "repo:o/r:ref:refs/heads/main", "aud": "x", "exp": 1}))
	f.Add("eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, raw string) {
		e, err := assertion.ParseExternal(raw)
		if err != nil {
			if !errors.Is(err, assertion.ErrInvalid) {
				t.Fatalf("ParseExternal: %v, want ErrInvalid", err)
			}
			return
		}
		if e.Issuer == "" || len(e.Digest()) != 64 {
			t.Fatalf("ParseExternal(%q): issuer %q, digest %q", raw, e.Issuer, e.Digest())
		}
		if _, _, err := e.Verify(set); err != nil && !errors.Is(err, assertion.ErrInvalid) {
			t.Fatalf("Verify: %v, want nil or ErrInvalid", err)
		}
	})
}
