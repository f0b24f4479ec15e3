package assertion_test

import (
	"errors"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/tollgate/tollgate/pkg/assertion"
)

// FuzzParse: any bytes are parsed as a client assertion and then verified
// against a fixed key set; every failure is ErrInvalid, nothing panics.
func FuzzParse(f *testing.F) {
	k := newKey(f, jose.ES256, "k1")
	set, err := assertion.ParseKeySet(keySetJSON(f, k.jwk(f, true)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(k.sign(f, goodClaims()))
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.")
	f.Add("a.b.c")
	f.Add("")
	v := newVerifier(f)
	f.Fuzz(func(t *testing.T, raw string) {
		a, err := assertion.Parse(raw)
		if err != nil {
			if !errors.Is(err, assertion.ErrInvalid) {
				t.Fatalf("Parse: %v, want ErrInvalid", err)
			}
			return
		}
		if a.ClientID <= 0 {
			t.Fatalf("Parse accepted client id %d", a.ClientID)
		}
		if err := v.Verify(t.Context(), a, set); err != nil && !errors.Is(err, assertion.ErrInvalid) {
			t.Fatalf("Verify: %v, want nil or ErrInvalid", err)
		}
	})
}

// FuzzParseKeySet: any bytes are read as a registered JWK Set; a refusal
// is ErrKeySet, and an accepted set has between 1 and MaxKeys keys.
func FuzzParseKeySet(f *testing.F) {
	f.Add(string(keySetJSON(f, newKey(f, jose.EdDSA, "a").jwk(f, true), newKey(f, jose.RS256, "b").jwk(f, false))))
	f.Add(`{"keys":[{"kty":"oct","k":"AAAA"}]}`)
	f.Add(`{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA","d":"AA"}]}`)
	f.Add(`{}`)
	f.Fuzz(func(t *testing.T, raw string) {
		set, err := assertion.ParseKeySet([]byte(raw))
		if err != nil {
			if !errors.Is(err, assertion.ErrKeySet) {
				t.Fatalf("ParseKeySet: %v, want ErrKeySet", err)
			}
			return
		}
		if set.Len() < 1 || set.Len() > assertion.MaxKeys {
			t.Fatalf("accepted a set of %d keys", set.Len())
		}
	})
}
