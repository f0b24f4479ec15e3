package federation_test

import (
	"testing"

	"github.com/tollgate/tollgate/pkg/federation"
)

// FuzzParseDiscovery: any bytes either parse into a non-empty issuer and
// jwks_uri within bounds or are refused; nothing panics.
func FuzzParseDiscovery(f *testing.F) {
	f.Add([]byte(`{"issuer":"https://token.actions.githubusercontent.com","jwks_uri":"https://token.actions.githubusercontent.com/.well-known/jwks"}`))
	f.Add([]byte(`{"issuer":"a","issuer":"b","jwks_uri":"c"}`))
	f.Add([]byte(`{"issuer":1,"jwks_uri":"c"}`))
	f.Add([]byte(`{"ISSUER":"a","jwks_uri":"c"}`))
	f.Add([]byte(`{"issuer":"a","jwks_uri":"c"} {}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := federation.ParseDiscovery(raw)
		if err != nil {
			return
		}
		if d.Issuer == "" || d.JWKSURI == "" || len(d.Issuer) > 2048 || len(d.JWKSURI) > 2048 {
			t.Fatalf("ParseDiscovery(%q) = %+v, want a bounded non-empty issuer and jwks_uri", raw, d)
		}
		if len(raw) > federation.MaxDiscoveryBytes {
			t.Fatalf("ParseDiscovery accepted %d bytes", len(raw))
		}
	})
}
