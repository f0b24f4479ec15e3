package secret_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/pkg/secret"
)

// pepper returns a pepper of MinPepperSize bytes, all c.
func pepper(c byte) []byte { return bytes.Repeat([]byte{c}, secret.MinPepperSize) }

func newHasher(t testing.TB, currentID string, peppers map[string][]byte) *secret.Hasher {
	t.Helper()
	h, err := secret.NewHasher(currentID, peppers)
	if err != nil {
		t.Fatalf("NewHasher(%q) error = %v, want nil", currentID, err)
	}
	return h
}

func TestNewHasher(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		currentID string
		peppers   map[string][]byte
		wantErr   bool
	}{
		{name: "one pepper", currentID: "1", peppers: map[string][]byte{"1": pepper('a')}},
		{name: "current and retired", currentID: "2", peppers: map[string][]byte{"1": pepper('a'), "2": pepper('b')}},
		{name: "eight character id", currentID: "abcd1234", peppers: map[string][]byte{"abcd1234": pepper('a')}},
		{name: "long pepper", currentID: "1", peppers: map[string][]byte{"1": bytes.Repeat([]byte("x"), 100)}},
		{name: "unknown current id", currentID: "2", peppers: map[string][]byte{"1": pepper('a')}, wantErr: true},
		{name: "no peppers", currentID: "1", peppers: nil, wantErr: true},
		{name: "short current pepper", currentID: "1", peppers: map[string][]byte{"1": pepper('a')[:secret.MinPepperSize-1]}, wantErr: true},
		{name: "short retired pepper", currentID: "2", peppers: map[string][]byte{"1": []byte("short"), "2": pepper('b')}, wantErr: true},
		{name: "empty pepper", currentID: "1", peppers: map[string][]byte{"1": nil}, wantErr: true},
		{name: "empty id", currentID: "", peppers: map[string][]byte{"": pepper('a')}, wantErr: true},
		{name: "upper-case id", currentID: "A", peppers: map[string][]byte{"A": pepper('a')}, wantErr: true},
		{name: "nine character id", currentID: "abcd12345", peppers: map[string][]byte{"abcd12345": pepper('a')}, wantErr: true},
		{name: "id with dollar", currentID: "a$b", peppers: map[string][]byte{"a$b": pepper('a')}, wantErr: true},
		{name: "bad retired id", currentID: "1", peppers: map[string][]byte{"1": pepper('a'), "old-1": pepper('b')}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, err := secret.NewHasher(tt.currentID, tt.peppers)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("NewHasher(%q) error = %v, want error %t", tt.currentID, err, tt.wantErr)
			}
			if err != nil && h != nil {
				t.Errorf("NewHasher(%q) = %v with error, want nil Hasher", tt.currentID, h)
			}
		})
	}
}

func TestNewHasherCopiesPeppers(t *testing.T) {
	t.Parallel()
	p := pepper('a')
	h := newHasher(t, "1", map[string][]byte{"1": p})
	hash, err := h.Hash(t.Context(), []byte("s3cret"))
	if err != nil {
		t.Fatalf("Hash() error = %v", err)
	}
	p[0] = 'z' // the caller reuses its buffer
	if err := h.Compare(t.Context(), hash, []byte("s3cret")); err != nil {
		t.Errorf("Compare() after the caller changed its pepper slice = %v, want nil", err)
	}
}

func TestHasherHashFormat(t *testing.T) {
	t.Parallel()
	h := newHasher(t, "k7", map[string][]byte{"k7": pepper('a')})
	hash, err := h.Hash(t.Context(), []byte("s3cret"))
	if err != nil {
		t.Fatalf("Hash() error = %v", err)
	}
	rest, ok := strings.CutPrefix(string(hash), "tgh1$k7$")
	if !ok {
		t.Fatalf("Hash() = %q, want prefix %q", hash, "tgh1$k7$")
	}
	mac, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil {
		t.Fatalf("Hash() = %q: decode MAC: %v", hash, err)
	}
	if got, want := len(mac), 32; got != want {
		t.Errorf("Hash() MAC is %d bytes, want %d", got, want)
	}
	again, err := h.Hash(t.Context(), []byte("s3cret"))
	if err != nil {
		t.Fatalf("Hash() error = %v", err)
	}
	if !bytes.Equal(hash, again) {
		t.Errorf("Hash() twice = %q and %q, want equal (keyed hash, no salt)", hash, again)
	}
	other, err := h.Hash(t.Context(), []byte("s3creT"))
	if err != nil {
		t.Fatalf("Hash() error = %v", err)
	}
	if bytes.Equal(hash, other) {
		t.Errorf("Hash() of two different secrets = %q, want different", hash)
	}
	otherPepper := newHasher(t, "k7", map[string][]byte{"k7": pepper('b')})
	peppered, err := otherPepper.Hash(t.Context(), []byte("s3cret"))
	if err != nil {
		t.Fatalf("Hash() error = %v", err)
	}
	if bytes.Equal(hash, peppered) {
		t.Errorf("Hash() under two different peppers = %q, want different", hash)
	}
}

func TestHasherCompare(t *testing.T) {
	t.Parallel()
	h := newHasher(t, "1", map[string][]byte{"1": pepper('a')})
	data := []byte("s3cret")
	hash, err := h.Hash(t.Context(), data)
	if err != nil {
		t.Fatalf("Hash() error = %v", err)
	}
	encoded := strings.TrimPrefix(string(hash), "tgh1$1$")
	// Flip one bit of the MAC, keeping the base64 canonical.
	mac, _ := base64.RawURLEncoding.DecodeString(encoded)
	mac[0] ^= 1
	tampered := "tgh1$1$" + base64.RawURLEncoding.EncodeToString(mac)
	otherPepper := newHasher(t, "1", map[string][]byte{"1": pepper('b')})
	otherHash, err := otherPepper.Hash(t.Context(), data)
	if err != nil {
		t.Fatalf("Hash() error = %v", err)
	}

	tests := []struct {
		name string
		hash string
		data []byte
		ok   bool
	}{
		{name: "right secret", hash: string(hash), data: data, ok: true},
		{name: "wrong secret", hash: string(hash), data: []byte("s3creT")},
		{name: "prefix of secret", hash: string(hash), data: data[:len(data)-1]},
		{name: "empty secret", hash: string(hash), data: []byte{}},
		{name: "tampered MAC", hash: tampered, data: data},
		{name: "truncated MAC", hash: string(hash[:len(hash)-4]), data: data},
		{name: "other pepper", hash: string(otherHash), data: data},
		{name: "other scheme", hash: "tgh2$1$" + encoded, data: data},
		{name: "upper-case scheme", hash: "TGH1$1$" + encoded, data: data},
		{name: "bcrypt hash", hash: "$2a$04$abcdefghijklmnopqrstuu5BYp8RHvIRtfoVA4QzQmWG4aFAxnW9ba", data: data},
		{name: "plain text", hash: string(data), data: data},
		{name: "unknown pepper id", hash: "tgh1$2$" + encoded, data: data},
		{name: "empty pepper id", hash: "tgh1$$" + encoded, data: data},
		{name: "malformed base64", hash: "tgh1$1$" + encoded[:20] + "!" + encoded[21:], data: data},
		{name: "standard base64 alphabet", hash: "tgh1$1$" + strings.NewReplacer("-", "+", "_", "/").Replace(encoded) + "+/", data: data},
		{name: "extra field", hash: string(hash) + "$x", data: data},
		{name: "no MAC", hash: "tgh1$1$", data: data},
		{name: "scheme only", hash: "tgh1", data: data},
		{name: "empty hash", hash: "", data: data},
		{name: "empty hash and secret", hash: "", data: []byte{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := tt.data
			err := h.Compare(t.Context(), []byte(tt.hash), d)
			if tt.ok {
				if err != nil {
					t.Errorf("Compare(%q, %q) = %v, want nil", tt.hash, d, err)
				}
				return
			}
			if !errors.Is(err, secret.ErrMismatch) {
				t.Errorf("Compare(%q, %q) = %v, want ErrMismatch", tt.hash, d, err)
			}
		})
	}
}

func TestHasherSpecialBytes(t *testing.T) {
	t.Parallel()
	h := newHasher(t, "1", map[string][]byte{"1": pepper('a')})
	secrets := []string{"a+b", "a%2Bb", "a:b", "id:se:cret", "%", "+", ":", " ", "\x00", "\xff\xfe", "é", strings.Repeat("x", 4096)}
	hashes := make(map[string]string, len(secrets))
	for _, s := range secrets {
		hash, err := h.Hash(t.Context(), []byte(s))
		if err != nil {
			t.Fatalf("Hash(%q) error = %v", s, err)
		}
		if err := h.Compare(t.Context(), hash, []byte(s)); err != nil {
			t.Errorf("Compare(Hash(%q), %q) = %v, want nil", s, s, err)
		}
		if prev, dup := hashes[string(hash)]; dup {
			t.Errorf("Hash(%q) = Hash(%q) = %q, want different", s, prev, hash)
		}
		hashes[string(hash)] = s
	}
	// The URL-decoded form of a secret is a different secret.
	hash, _ := h.Hash(t.Context(), []byte("a%2Bb"))
	if err := h.Compare(t.Context(), hash, []byte("a+b")); !errors.Is(err, secret.ErrMismatch) {
		t.Errorf("Compare(Hash(%q), %q) = %v, want ErrMismatch", "a%2Bb", "a+b", err)
	}
}

func TestHasherPepperRotation(t *testing.T) {
	t.Parallel()
	data := []byte("s3cret")
	before := newHasher(t, "1", map[string][]byte{"1": pepper('a')})
	oldHash, err := before.Hash(t.Context(), data)
	if err != nil {
		t.Fatalf("Hash() error = %v", err)
	}
	if before.NeedsRehash(oldHash) {
		t.Errorf("NeedsRehash(%q) before rotation = true, want false", oldHash)
	}

	after := newHasher(t, "2", map[string][]byte{"1": pepper('a'), "2": pepper('b')})
	if err := after.Compare(t.Context(), oldHash, data); err != nil {
		t.Errorf("Compare(hash under retired pepper) = %v, want nil", err)
	}
	if err := after.Compare(t.Context(), oldHash, []byte("wrong")); !errors.Is(err, secret.ErrMismatch) {
		t.Errorf("Compare(hash under retired pepper, wrong secret) = %v, want ErrMismatch", err)
	}
	if !after.NeedsRehash(oldHash) {
		t.Errorf("NeedsRehash(%q) after rotation = false, want true", oldHash)
	}

	newHash, err := after.Hash(t.Context(), data)
	if err != nil {
		t.Fatalf("Hash() error = %v", err)
	}
	if !strings.HasPrefix(string(newHash), "tgh1$2$") {
		t.Errorf("Hash() after rotation = %q, want prefix %q", newHash, "tgh1$2$")
	}
	if after.NeedsRehash(newHash) {
		t.Errorf("NeedsRehash(%q) = true, want false", newHash)
	}
	if err := after.Compare(t.Context(), newHash, data); err != nil {
		t.Errorf("Compare(new hash) = %v, want nil", err)
	}

	// Once pepper 1 is dropped, its hashes stop verifying.
	dropped := newHasher(t, "2", map[string][]byte{"2": pepper('b')})
	if err := dropped.Compare(t.Context(), oldHash, data); !errors.Is(err, secret.ErrMismatch) {
		t.Errorf("Compare(hash under dropped pepper) = %v, want ErrMismatch", err)
	}
	// A hash claiming the current id but made with another pepper fails.
	forged := "tgh1$2$" + strings.TrimPrefix(string(oldHash), "tgh1$1$")
	if err := after.Compare(t.Context(), []byte(forged), data); !errors.Is(err, secret.ErrMismatch) {
		t.Errorf("Compare(pepper-1 MAC relabelled as pepper 2) = %v, want ErrMismatch", err)
	}
}

func TestHasherNeedsRehash(t *testing.T) {
	t.Parallel()
	h := newHasher(t, "2", map[string][]byte{"1": pepper('a'), "2": pepper('b'), "22": pepper('c')})
	tests := []struct {
		hash string
		want bool
	}{
		{hash: "tgh1$2$abc", want: false},
		{hash: "tgh1$1$abc", want: true},
		{hash: "tgh1$22$abc", want: true}, // "2" is a prefix of "22"
		{hash: "tgh1$2", want: true},
		{hash: "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5", want: true},
		{hash: "$2a$04$abcdefghijklmnopqrstuu5BYp8RHvIRtfoVA4QzQmWG4aFAxnW9ba", want: true},
		{hash: "plain", want: true},
		{hash: "", want: true},
	}
	for _, tt := range tests {
		if got := h.NeedsRehash([]byte(tt.hash)); got != tt.want {
			t.Errorf("NeedsRehash(%q) = %t, want %t", tt.hash, got, tt.want)
		}
	}
}

func BenchmarkHasherCompare(b *testing.B) {
	h := newHasher(b, "1", map[string][]byte{"1": pepper('a')})
	data, err := secret.Generate()
	if err != nil {
		b.Fatal(err)
	}
	hash, err := h.Hash(b.Context(), []byte(data))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := h.Compare(b.Context(), hash, []byte(data)); err != nil {
			b.Fatal(err)
		}
	}
}
