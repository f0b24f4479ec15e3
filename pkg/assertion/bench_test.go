package assertion_test

import (
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/tollgate/tollgate/pkg/assertion"
)

// BenchmarkParse: reading an assertion (compact JWS, header, unverified
// claims) before the client is known.
func BenchmarkParse(b *testing.B) {
	raw := newKey(b, jose.ES256, "k").sign(b, goodClaims())
	for b.Loop() {
		if _, err := assertion.Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify: a parsed assertion's signature and claims, and its jti
// recorded in memory, per algorithm; the assertions are signed before the
// timer starts.
func BenchmarkVerify(b *testing.B) {
	for _, alg := range []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA} {
		b.Run(string(alg), func(b *testing.B) {
			k := newKey(b, alg, "k")
			set, err := assertion.ParseKeySet(keySetJSON(b, k.jwk(b, true)))
			if err != nil {
				b.Fatal(err)
			}
			v := newVerifier(b)
			parsed := make([]*assertion.Assertion, b.N)
			for i := range parsed {
				if parsed[i], err = assertion.Parse(k.sign(b, goodClaims())); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := v.Verify(b.Context(), parsed[i], set); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
