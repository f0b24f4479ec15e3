package secret_test

import (
	"encoding/base64"
	"testing"

	"github.com/tollgate/tollgate/pkg/secret"
)

func TestGenerate(t *testing.T) {
	t.Parallel()
	const n = 64
	seen := make(map[string]bool, n)
	for range n {
		s, err := secret.Generate()
		if err != nil {
			t.Fatalf("Generate() error = %v, want nil", err)
		}
		if got, want := len(s), 43; got != want {
			t.Errorf("len(Generate()) = %d, want %d (%q)", got, want, s)
		}
		for i := 0; i < len(s); i++ {
			if !isBase64URL(s[i]) {
				t.Errorf("Generate() = %q: byte %d is %q, want one of A-Z a-z 0-9 - _", s, i, s[i])
			}
		}
		raw, err := base64.RawURLEncoding.Strict().DecodeString(s)
		if err != nil {
			t.Errorf("Generate() = %q: strict base64url decode error = %v", s, err)
		}
		if got, want := len(raw), secret.Size; got != want {
			t.Errorf("Generate() = %q decodes to %d bytes, want %d", s, got, want)
		}
		if seen[s] {
			t.Errorf("Generate() returned %q twice", s)
		}
		seen[s] = true
	}
}

func isBase64URL(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}
