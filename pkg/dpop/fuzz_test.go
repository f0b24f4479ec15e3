package dpop_test

import (
	"errors"
	"testing"

	"github.com/tollgate/tollgate/pkg/dpop"
)

// FuzzVerify: any bytes as a proof are refused as ErrInvalid or accepted,
// never a panic, never another error.
func FuzzVerify(f *testing.F) {
	m := newMaker(f)
	f.Add(m.make(map[string]any{"htm": "POST", "htu": tokenURL}))
	f.Add(m.make(map[string]any{"htm": "POST", "htu": tokenURL, "iat": 1.5e9, "jti": 7}))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, proof string) {
		v := newVerifier(t)
		_, err := v.Verify(t.Context(), proof, dpop.Request{Method: "POST", URL: tokenURL})
		if err != nil && !errors.Is(err, dpop.ErrInvalid) {
			t.Fatalf("Verify: %v, want nil or ErrInvalid", err)
		}
	})
}
