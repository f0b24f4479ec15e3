package token_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/pkg/token"
)

var (
	secretA = bytes.Repeat([]byte{'A'}, 32)
	secretB = bytes.Repeat([]byte{'B'}, 32)
)

func newStrategy(t testing.TB, secret []byte, rotated ...[]byte) *token.Strategy {
	t.Helper()
	s, err := token.NewStrategy(secret, rotated)
	if err != nil {
		t.Fatalf("NewStrategy() error = %v", err)
	}
	return s
}

func generate(t testing.TB, s *token.Strategy) (tok, sig string) {
	t.Helper()
	tok, sig, err := s.Generate(t.Context())
	if err != nil {
		t.Fatalf("Generate() error = %v", err)
	}
	return tok, sig
}

// expectedSignature recomputes a token's signature without fosite:
// base64url(HMAC-SHA-512/256(SHA-256(secret), key bytes)).
func expectedSignature(secret []byte, encodedKey string) (string, bool) {
	key, err := base64.RawURLEncoding.DecodeString(encodedKey)
	if err != nil {
		return "", false
	}
	derived := sha256.Sum256(secret)
	m := hmac.New(sha512.New512_256, derived[:])
	m.Write(key)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)), true
}

func TestNewStrategy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		secret  []byte
		rotated [][]byte
		wantErr bool
	}{
		{name: "32 bytes", secret: secretA},
		{name: "64 bytes", secret: bytes.Repeat([]byte{'x'}, 64)},
		{name: "with rotated", secret: secretB, rotated: [][]byte{secretA}},
		{name: "31 bytes", secret: secretA[:31], wantErr: true},
		{name: "empty", secret: nil, wantErr: true},
		{name: "short rotated", secret: secretB, rotated: [][]byte{secretA, secretA[:31]}, wantErr: true},
		{name: "empty rotated", secret: secretB, rotated: [][]byte{nil}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := token.NewStrategy(tt.secret, tt.rotated)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("NewStrategy(%d-byte secret) error = %v, want error %t", len(tt.secret), err, tt.wantErr)
			}
			if err != nil && s != nil {
				t.Errorf("NewStrategy() returned a Strategy with error %v, want nil", err)
			}
		})
	}
}

func TestGenerate(t *testing.T) {
	t.Parallel()
	s := newStrategy(t, secretA)
	seen := map[string]bool{}
	for range 32 {
		tok, sig := generate(t, s)
		raw, ok := strings.CutPrefix(tok, token.AccessPrefix)
		if !ok {
			t.Fatalf("Generate() = %q, want prefix %q", tok, token.AccessPrefix)
		}
		if got, want := len(tok), 93; got != want {
			t.Errorf("len(Generate()) = %d, want %d", got, want)
		}
		encodedKey, encodedSig, ok := strings.Cut(raw, ".")
		if !ok {
			t.Fatalf("Generate() = %q, want <key>.<signature> after the prefix", tok)
		}
		key, err := base64.RawURLEncoding.Strict().DecodeString(encodedKey)
		if err != nil {
			t.Fatalf("Generate() key part %q: %v", encodedKey, err)
		}
		if got, want := len(key)*8, 256; got < want {
			t.Errorf("Generate() key has %d bits, want at least %d", got, want)
		}
		if encodedSig != sig {
			t.Errorf("Generate() signature = %q, token's signature part = %q, want equal", sig, encodedSig)
		}
		if want, _ := expectedSignature(secretA, encodedKey); sig != want {
			t.Errorf("Generate() signature = %q, want HMAC-SHA-512/256 %q", sig, want)
		}
		if seen[tok] || seen[sig] {
			t.Errorf("Generate() repeated token %q or signature %q", tok, sig)
		}
		seen[tok], seen[sig] = true, true

		got, err := s.Signature(t.Context(), tok)
		if err != nil {
			t.Fatalf("Signature(%q) error = %v, want nil", tok, err)
		}
		if got != sig {
			t.Errorf("Signature(%q) = %q, want %q", tok, got, sig)
		}
	}
}

func TestSignatureMalformed(t *testing.T) {
	t.Parallel()
	s := newStrategy(t, secretA)
	tok, sig := generate(t, s)
	raw := strings.TrimPrefix(tok, token.AccessPrefix)
	encodedKey, _, _ := strings.Cut(raw, ".")
	otherTok, _ := generate(t, newStrategy(t, secretB))

	// flip changes the character at i to another base64url character whose
	// value differs in the high bits, so the decoded bytes change.
	flip := func(s string, i int) string {
		c := byte('A')
		if s[i] == 'A' {
			c = 'g'
		}
		return s[:i] + string(c) + s[i+1:]
	}
	// A token signed with the right secret but longer than MaxLength: only
	// the length check refuses it.
	longKey := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 200))
	longSig, _ := expectedSignature(secretA, longKey)
	oversizeSigned := token.AccessPrefix + longKey + "." + longSig
	keyStart := len(token.AccessPrefix)
	sigStart := keyStart + len(encodedKey) + 1

	tests := []struct {
		name string
		tok  string
	}{
		{name: "empty", tok: ""},
		{name: "prefix only", tok: token.AccessPrefix},
		{name: "prefix and dot", tok: token.AccessPrefix + "."},
		{name: "no prefix", tok: raw},
		{name: "other prefix", tok: "ory_at_" + raw},
		{name: "refresh prefix", tok: "tg_rt_" + raw},
		{name: "upper-case prefix", tok: "TG_AT_" + raw},
		{name: "prefix twice", tok: token.AccessPrefix + tok},
		{name: "signature alone", tok: token.AccessPrefix + sig},
		{name: "key alone", tok: token.AccessPrefix + encodedKey},
		{name: "no key", tok: token.AccessPrefix + "." + sig},
		{name: "no signature", tok: token.AccessPrefix + encodedKey + "."},
		{name: "tampered signature first char", tok: flip(tok, sigStart)},
		{name: "tampered signature middle", tok: flip(tok, sigStart+20)},
		{name: "tampered key first char", tok: flip(tok, keyStart)},
		{name: "tampered key middle", tok: flip(tok, keyStart+20)},
		{name: "truncated signature", tok: tok[:len(tok)-1]},
		{name: "truncated key", tok: token.AccessPrefix + encodedKey[1:] + "." + sig},
		{name: "key and signature swapped", tok: token.AccessPrefix + sig + "." + encodedKey},
		{name: "other secret", tok: otherTok},
		{name: "extra dot at end", tok: tok + "."},
		{name: "extra part", tok: tok + "." + sig},
		{name: "extra dot inside key", tok: token.AccessPrefix + encodedKey[:10] + "." + encodedKey[10:] + "." + sig},
		{name: "padded base64", tok: tok + "="},
		{name: "standard base64 alphabet", tok: token.AccessPrefix + encodedKey + "+/." + sig},
		{name: "leading space", tok: " " + tok},
		{name: "trailing space", tok: tok + " "},
		{name: "bearer scheme kept", tok: "Bearer " + tok},
		{name: "oversize", tok: tok + strings.Repeat("A", token.Length)},
		{name: "oversize validly signed", tok: oversizeSigned},
		{name: "oversize garbage", tok: token.AccessPrefix + strings.Repeat("A", token.Length)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := s.Signature(t.Context(), tt.tok)
			if !errors.Is(err, token.ErrMalformed) {
				t.Errorf("Signature(%q) = %q, %v; want ErrMalformed", tt.tok, got, err)
			}
			if got != "" {
				t.Errorf("Signature(%q) = %q with error, want \"\"", tt.tok, got)
			}
		})
	}
}

// A token has exactly one accepted spelling. base64 of 32 bytes leaves two
// unused bits in the last character, and Go's base64 decoders skip CR and
// LF: a check that only decodes and compares MACs accepts many spellings of
// one token, and hands back a "signature" that was never stored.
func TestSignatureRejectsNonCanonicalEncoding(t *testing.T) {
	t.Parallel()
	s := newStrategy(t, secretA)
	tok, _ := generate(t, s)
	raw := strings.TrimPrefix(tok, token.AccessPrefix)
	encodedKey, encodedSig, _ := strings.Cut(raw, ".")

	// twin returns enc with the unused low bits of its last character set.
	twin := func(enc string) string {
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		last := strings.IndexByte(alphabet, enc[len(enc)-1])
		return enc[:len(enc)-1] + string(alphabet[last|3])
	}
	tests := []struct {
		name string
		tok  string
	}{
		{name: "key", tok: token.AccessPrefix + twin(encodedKey) + "." + encodedSig},
		{name: "signature", tok: token.AccessPrefix + encodedKey + "." + twin(encodedSig)},
		{name: "trailing LF", tok: tok + "\n"},
		{name: "CRLF inside key", tok: token.AccessPrefix + encodedKey[:20] + "\r\n" + encodedKey[20:] + "." + encodedSig},
		{name: "LF before dot", tok: token.AccessPrefix + encodedKey + "\n." + encodedSig},
		{name: "LF inside signature", tok: token.AccessPrefix + encodedKey + "." + encodedSig[:10] + "\n" + encodedSig[10:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.tok == tok {
				t.Fatalf("twin of %q is itself", tok)
			}
			if got, err := s.Signature(t.Context(), tt.tok); !errors.Is(err, token.ErrMalformed) {
				t.Errorf("Signature(%q) (non-canonical spelling of %q) = %q, %v; want ErrMalformed", tt.tok, tok, got, err)
			}
		})
	}
}

func TestSignatureRotation(t *testing.T) {
	t.Parallel()
	a := newStrategy(t, secretA)
	tokA, sigA := generate(t, a)

	rotated := newStrategy(t, secretB, secretA)
	got, err := rotated.Signature(t.Context(), tokA)
	if err != nil {
		t.Fatalf("Strategy(B, rotated A).Signature(token from A) error = %v, want nil", err)
	}
	if got != sigA {
		t.Errorf("Strategy(B, rotated A).Signature(token from A) = %q, want %q", got, sigA)
	}

	tokB, sigB := generate(t, rotated)
	if want, _ := expectedSignature(secretB, strings.Split(strings.TrimPrefix(tokB, token.AccessPrefix), ".")[0]); sigB != want {
		t.Errorf("Strategy(B, rotated A).Generate() signature = %q, want one made with B %q", sigB, want)
	}
	if got, err := rotated.Signature(t.Context(), tokB); err != nil || got != sigB {
		t.Errorf("Strategy(B, rotated A).Signature(own token) = %q, %v; want %q, nil", got, err, sigB)
	}

	onlyB := newStrategy(t, secretB)
	if got, err := onlyB.Signature(t.Context(), tokA); !errors.Is(err, token.ErrMalformed) {
		t.Errorf("Strategy(B).Signature(token from A) = %q, %v; want ErrMalformed", got, err)
	}
	if got, err := a.Signature(t.Context(), tokB); !errors.Is(err, token.ErrMalformed) {
		t.Errorf("Strategy(A).Signature(token from B) = %q, %v; want ErrMalformed", got, err)
	}
}

func TestDerive(t *testing.T) {
	s := newStrategy(t, secretA)
	tok, sig := s.Derive([]byte("seed 1"))
	if again, _ := s.Derive([]byte("seed 1")); again != tok {
		t.Fatalf("Derive is not deterministic: %q then %q", tok, again)
	}
	if other, _ := s.Derive([]byte("seed 2")); other == tok {
		t.Fatal("two seeds derived the same token")
	}
	if len(tok) != token.Length || !strings.HasPrefix(tok, token.AccessPrefix) {
		t.Fatalf("derived token %q: want %d characters starting with %q", tok, token.Length, token.AccessPrefix)
	}
	if got, err := s.Signature(t.Context(), tok); err != nil || got != sig {
		t.Fatalf("Signature(derived token) = %q, %v; want %q, nil", got, err, sig)
	}
	// Another secret derives another token from the same seed, and the
	// strategy it rotated to still validates the old one.
	rotated := newStrategy(t, secretB, secretA)
	if other, _ := rotated.Derive([]byte("seed 1")); other == tok {
		t.Fatal("another secret derived the same token")
	}
	if got, err := rotated.Signature(t.Context(), tok); err != nil || got != sig {
		t.Fatalf("rotated Signature(derived token) = %q, %v; want %q, nil", got, err, sig)
	}
}
