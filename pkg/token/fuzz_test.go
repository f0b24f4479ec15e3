package token_test

import (
	"bytes"
	"crypto/hmac"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/pkg/token"
)

// FuzzSignature checks that Signature never panics and never accepts a
// string whose signature part is not the HMAC of its key part under one of
// the Strategy's secrets, recomputed here without fosite. (Non-canonical
// spellings of a valid token are TestSignatureRejectsNonCanonicalEncoding's
// concern; this target guards against forgery.)
func FuzzSignature(f *testing.F) {
	s := newStrategy(f, secretB, secretA)
	// Seeds are fixed strings, the same in every fuzz worker process.
	seed := func(secret []byte, fill byte) string {
		key := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{fill}, 32))
		sig, _ := expectedSignature(secret, key)
		return token.AccessPrefix + key + "." + sig
	}
	tokA, tokB := seed(secretA, 1), seed(secretB, 2)
	tokForeign := seed([]byte("another secret, 32 bytes or more"), 3)
	for _, tok := range []string{tokA, tokB} {
		if _, err := s.Signature(f.Context(), tok); err != nil {
			f.Fatalf("Signature(seed %q) error = %v, want nil", tok, err)
		}
		f.Add(tok)
		f.Add(strings.TrimPrefix(tok, token.AccessPrefix))
		f.Add(tok + "." + tok)
	}
	for _, seed := range []string{
		tokForeign,
		"",
		token.AccessPrefix,
		token.AccessPrefix + ".",
		token.AccessPrefix + "..",
		token.AccessPrefix + "A.A",
		"ory_at_AAAA.BBBB",
		"tg_at_\x00.\xff",
		"tg_at_" + strings.Repeat("A", 300),
	} {
		f.Add(seed)
	}

	f.Fuzz(func(t *testing.T, tok string) {
		sig, err := s.Signature(t.Context(), tok)
		if err != nil {
			if !errors.Is(err, token.ErrMalformed) {
				t.Fatalf("Signature(%q) error = %v, want ErrMalformed", tok, err)
			}
			if sig != "" {
				t.Fatalf("Signature(%q) = %q with error, want \"\"", tok, sig)
			}
			return
		}
		if len(tok) != token.Length {
			t.Fatalf("Signature(%d-byte token) accepted, want only %d-byte tokens", len(tok), token.Length)
		}
		raw, ok := strings.CutPrefix(tok, token.AccessPrefix)
		if !ok {
			t.Fatalf("Signature(%q) = %q, nil for a string without the %q prefix", tok, sig, token.AccessPrefix)
		}
		key, sigPart, ok := strings.Cut(raw, ".")
		if !ok || sigPart != sig {
			t.Fatalf("Signature(%q) = %q, want the part after the dot", tok, sig)
		}
		got, err := base64.RawURLEncoding.DecodeString(sigPart)
		if err != nil {
			t.Fatalf("Signature(%q) = %q, nil, but the signature part is not base64url: %v", tok, sig, err)
		}
		for _, secret := range [][]byte{secretB, secretA} {
			want, ok := expectedSignature(secret, key)
			if !ok {
				t.Fatalf("Signature(%q) = %q, nil, but the key part is not base64url", tok, sig)
			}
			wantMAC, _ := base64.RawURLEncoding.DecodeString(want)
			if hmac.Equal(got, wantMAC) {
				return
			}
		}
		t.Fatalf("Signature(%q) = %q, nil, but no secret's HMAC of the key matches: a forged token was accepted", tok, sig)
	})
}
