package dpop_test

import (
	"errors"
	"strings"
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

// FuzzNormalizeURL: an htu or a request URL either is refused or
// normalises to a URL that normalises to itself, without query or
// fragment.
func FuzzNormalizeURL(f *testing.F) {
	for _, s := range []string{tokenURL, "HTTP://A.example:80/x?y#z", "https://[::1]:8443/a%2Fb", "https://u@h/", "/rel", "https://h:99999/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := dpop.NormalizeURL(raw)
		if err != nil {
			return
		}
		again, err := dpop.NormalizeURL(got)
		if err != nil || again != got {
			t.Fatalf("NormalizeURL(%q) = %q, which normalises to %q, %v", raw, got, again, err)
		}
		if strings.ContainsAny(got, "?#") {
			t.Fatalf("NormalizeURL(%q) = %q keeps a query or fragment", raw, got)
		}
	})
}
