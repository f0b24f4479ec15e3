package secret_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/tollgate/tollgate/pkg/secret"
)

// fastParams keep argon2id cheap so the tests run quickly; one test uses
// DefaultArgon2Params.
var fastParams = secret.Argon2Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

func newPasswords(t testing.TB, p secret.Argon2Params) *secret.Passwords {
	t.Helper()
	pw, err := secret.NewPasswords(p)
	if err != nil {
		t.Fatalf("NewPasswords(%+v) error = %v", p, err)
	}
	return pw
}

func mustHash(t testing.TB, pw *secret.Passwords, password string) string {
	t.Helper()
	hash, err := pw.Hash(password)
	if err != nil {
		t.Fatalf("Hash(%q) error = %v", password, err)
	}
	return hash
}

func TestPasswordsHashFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		params secret.Argon2Params
		prefix string
	}{
		{name: "default", params: secret.DefaultArgon2Params, prefix: "$argon2id$v=19$m=19456,t=2,p=1$"},
		{name: "fast", params: fastParams, prefix: "$argon2id$v=19$m=64,t=1,p=1$"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pw := newPasswords(t, tt.params)
			hash := mustHash(t, pw, "correct horse")
			rest, ok := strings.CutPrefix(hash, tt.prefix)
			if !ok {
				t.Fatalf("Hash() = %q, want prefix %q", hash, tt.prefix)
			}
			saltB64, keyB64, ok := strings.Cut(rest, "$")
			if !ok {
				t.Fatalf("Hash() = %q, want $<salt>$<key> after the parameters", hash)
			}
			salt, err := base64.RawStdEncoding.Strict().DecodeString(saltB64)
			if err != nil || len(salt) != int(tt.params.SaltLength) {
				t.Errorf("Hash() salt %q: %d bytes, error %v; want %d bytes", saltB64, len(salt), err, tt.params.SaltLength)
			}
			key, err := base64.RawStdEncoding.Strict().DecodeString(keyB64)
			if err != nil || len(key) != int(tt.params.KeyLength) {
				t.Errorf("Hash() key %q: %d bytes, error %v; want %d bytes", keyB64, len(key), err, tt.params.KeyLength)
			}
			if again := mustHash(t, pw, "correct horse"); again == hash {
				t.Errorf("Hash() twice = %q, want a fresh salt each time", hash)
			}

			ok, err = pw.Verify(hash, "correct horse")
			if err != nil || !ok {
				t.Errorf("Verify(hash, right password) = %t, %v; want true, nil", ok, err)
			}
			ok, err = pw.Verify(hash, "correct horsf")
			if err != nil || ok {
				t.Errorf("Verify(hash, wrong password) = %t, %v; want false, nil", ok, err)
			}
		})
	}
}

func TestPasswordsVerify(t *testing.T) {
	t.Parallel()
	pw := newPasswords(t, fastParams)
	argon := mustHash(t, pw, "correct horse")
	empty := mustHash(t, pw, "")
	special := mustHash(t, pw, "p+a%2B:ß\x00")
	// A hash made with other parameters verifies: they are read from the hash.
	other := mustHash(t, newPasswords(t, secret.Argon2Params{Memory: 128, Iterations: 2, Parallelism: 2, SaltLength: 8, KeyLength: 16}), "correct horse")
	// tamper flips a bit in the last byte of a hash's key.
	tamper := func(hash string) string {
		i := strings.LastIndexByte(hash, '$')
		key, err := base64.RawStdEncoding.DecodeString(hash[i+1:])
		if err != nil {
			t.Fatalf("decode key of %q: %v", hash, err)
		}
		key[len(key)-1] ^= 1
		return hash[:i+1] + base64.RawStdEncoding.EncodeToString(key)
	}
	bcryptHash := func(password string, prefix string) string {
		t.Helper()
		h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
		if err != nil {
			t.Fatalf("bcrypt.GenerateFromPassword() error = %v", err)
		}
		return prefix + string(h[len("$2a$"):])
	}

	tests := []struct {
		name     string
		hash     string
		password string
		want     bool
	}{
		{name: "argon2id right", hash: argon, password: "correct horse", want: true},
		{name: "argon2id wrong", hash: argon, password: "correct horse "},
		{name: "argon2id empty password", hash: argon, password: ""},
		{name: "argon2id key tampered", hash: tamper(argon), password: "correct horse"},
		{name: "argon2id of empty password", hash: empty, password: "", want: true},
		{name: "argon2id special bytes", hash: special, password: "p+a%2B:ß\x00", want: true},
		{name: "argon2id special bytes decoded", hash: special, password: "p a+:ß\x00"},
		{name: "argon2id other parameters", hash: other, password: "correct horse", want: true},
		{name: "argon2id other parameters wrong", hash: other, password: "correct horsf"},
		{name: "bcrypt 2a right", hash: bcryptHash("hunter2", "$2a$"), password: "hunter2", want: true},
		{name: "bcrypt 2b right", hash: bcryptHash("hunter2", "$2b$"), password: "hunter2", want: true},
		{name: "bcrypt 2y right", hash: bcryptHash("hunter2", "$2y$"), password: "hunter2", want: true},
		{name: "bcrypt wrong", hash: bcryptHash("hunter2", "$2a$"), password: "hunter3"},
		{name: "bcrypt empty password", hash: bcryptHash("hunter2", "$2a$"), password: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := pw.Verify(tt.hash, tt.password)
			if err != nil {
				t.Fatalf("Verify(%q, %q) error = %v, want nil", tt.hash, tt.password, err)
			}
			if got != tt.want {
				t.Errorf("Verify(%q, %q) = %t, want %t", tt.hash, tt.password, got, tt.want)
			}
		})
	}
}

func TestPasswordsVerifyBadHash(t *testing.T) {
	t.Parallel()
	pw := newPasswords(t, fastParams)
	good := mustHash(t, pw, "pw")
	parts := strings.Split(good, "$") // "", argon2id, v=19, m=..., salt, key
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	salt, key := parts[4], parts[5]
	b64 := func(n int) string { return base64.RawStdEncoding.EncodeToString(make([]byte, n)) }

	tests := []struct {
		name string
		hash string
	}{
		{name: "empty", hash: ""},
		{name: "plain text", hash: "pw"},
		{name: "dollar only", hash: "$"},
		{name: "too few parts", hash: strings.Join(parts[:5], "$")},
		{name: "too many parts", hash: good + "$x"},
		{name: "no leading dollar", hash: good[1:]},
		{name: "argon2i", hash: with(1, "argon2i")},
		{name: "argon2d", hash: with(1, "argon2d")},
		{name: "upper-case algorithm", hash: with(1, "ARGON2ID")},
		{name: "version 16", hash: with(2, "v=16")},
		{name: "version 20", hash: with(2, "v=20")},
		{name: "version missing", hash: with(2, "v=")},
		{name: "version not a number", hash: with(2, "v=x")},
		{name: "version negative overflow", hash: with(2, "v=-99999999999999999999")},
		{name: "params missing", hash: with(3, "")},
		{name: "params reordered", hash: with(3, "t=1,m=64,p=1")},
		{name: "params missing p", hash: with(3, "m=64,t=1")},
		{name: "memory zero", hash: with(3, "m=0,t=1,p=1")},
		{name: "memory over 1 GiB", hash: with(3, fmt.Sprintf("m=%d,t=1,p=1", 1<<20+1))},
		{name: "memory max uint32", hash: with(3, "m=4294967295,t=1,p=1")},
		{name: "memory overflows uint32", hash: with(3, "m=4294967296,t=1,p=1")},
		{name: "memory negative", hash: with(3, "m=-1,t=1,p=1")},
		{name: "iterations zero", hash: with(3, "m=64,t=0,p=1")},
		{name: "iterations 17", hash: with(3, "m=64,t=17,p=1")},
		{name: "iterations max uint32", hash: with(3, "m=64,t=4294967295,p=1")},
		{name: "parallelism zero", hash: with(3, "m=64,t=1,p=0")},
		{name: "parallelism overflows uint8", hash: with(3, "m=64,t=1,p=256")},
		{name: "salt bad base64", hash: with(4, "!!!!"+salt[4:])},
		{name: "salt padded base64", hash: with(4, salt+"==")},
		{name: "salt empty", hash: with(4, "")},
		{name: "salt 7 bytes", hash: with(4, b64(7))},
		{name: "key bad base64", hash: with(5, key[:len(key)-1]+"*")},
		{name: "key empty", hash: with(5, "")},
		{name: "key 15 bytes", hash: with(5, b64(15))},
		{name: "key 65 bytes", hash: with(5, b64(65))},
		{name: "key huge", hash: with(5, b64(1<<16))},
		{name: "bcrypt truncated", hash: "$2a$04$abc"},
		{name: "bcrypt bad cost", hash: "$2a$xx$abcdefghijklmnopqrstuu5BYp8RHvIRtfoVA4QzQmWG4aFAxnW9ba"},
		{name: "bcrypt cost over 31", hash: "$2a$32$abcdefghijklmnopqrstuu5BYp8RHvIRtfoVA4QzQmWG4aFAxnW9ba"},
		{name: "bcrypt 2x", hash: "$2x$04$abcdefghijklmnopqrstuu5BYp8RHvIRtfoVA4QzQmWG4aFAxnW9ba"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ok, err := pw.Verify(tt.hash, "pw")
			if ok {
				t.Errorf("Verify(%q, %q) = true, want false", tt.hash, "pw")
			}
			if err == nil {
				t.Errorf("Verify(%q, %q) error = nil, want an error for an unreadable hash", tt.hash, "pw")
			}
		})
	}
}

// A crafted bcrypt hash must not buy unbounded CPU, just as decodeArgon2id
// refuses argon2id parameters over its limits. Cost 31 is 2^31 rounds of
// the key schedule: hours of CPU for one Verify.
func TestPasswordsVerifyRefusesExpensiveBcrypt(t *testing.T) {
	t.Parallel()
	pw := newPasswords(t, fastParams)
	h, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatalf("bcrypt.GenerateFromPassword() error = %v", err)
	}
	crafted := "$2a$31$" + string(h[len("$2a$04$"):])
	type result struct {
		ok  bool
		err error
	}
	done := make(chan result, 1)
	// If Verify does run the full cost, this goroutine keeps one CPU busy
	// until the test binary exits; the test still fails promptly.
	go func() {
		ok, err := pw.Verify(crafted, "pw")
		done <- result{ok, err}
	}()
	select {
	case r := <-done:
		if r.ok || r.err == nil {
			t.Errorf("Verify(bcrypt cost 31) = %t, %v; want false and an error", r.ok, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("Verify(bcrypt cost 31) still running after 5s, want it refused like an over-limit argon2id hash")
	}
}

func TestPasswordsTooLong(t *testing.T) {
	t.Parallel()
	pw := newPasswords(t, fastParams)
	atMax := strings.Repeat("a", secret.MaxPasswordLength)
	overMax := atMax + "a"

	hash, err := pw.Hash(atMax)
	if err != nil {
		t.Fatalf("Hash(%d bytes) error = %v, want nil", len(atMax), err)
	}
	if ok, err := pw.Verify(hash, atMax); err != nil || !ok {
		t.Errorf("Verify(hash, %d bytes) = %t, %v; want true, nil", len(atMax), ok, err)
	}

	if got, err := pw.Hash(overMax); !errors.Is(err, secret.ErrPasswordTooLong) || got != "" {
		t.Errorf("Hash(%d bytes) = %q, %v; want \"\", ErrPasswordTooLong", len(overMax), got, err)
	}
	if ok, err := pw.Verify(hash, overMax); ok || err != nil {
		t.Errorf("Verify(hash, %d bytes) = %t, %v; want false, nil", len(overMax), ok, err)
	}
	// Even a hash whose prefix matches must not verify an over-long password.
	if ok, _ := pw.Verify(hash, atMax+"\x00"); ok {
		t.Errorf("Verify(hash of %d bytes, same plus NUL) = true, want false", len(atMax))
	}
	bh, err := bcrypt.GenerateFromPassword([]byte(strings.Repeat("a", 72)), bcrypt.MinCost)
	if err != nil {
		t.Fatalf("bcrypt.GenerateFromPassword() error = %v", err)
	}
	if ok, err := pw.Verify(string(bh), overMax); ok || err != nil {
		t.Errorf("Verify(bcrypt hash, %d bytes) = %t, %v; want false, nil", len(overMax), ok, err)
	}
}

// VerifyDummy, for an unknown user, computes exactly the hashes that
// verifying a known user's wrong password computes, so the two cannot be
// told apart by their time.
func TestPasswordsVerifyDummy(t *testing.T) {
	t.Parallel()
	pw := newPasswords(t, fastParams)
	hash := mustHash(t, pw, "the user's password")
	work := func(f func()) int64 {
		before := pw.Derivations()
		f()
		return pw.Derivations() - before
	}
	for _, p := range []string{"", "tollgate-dummy-password", "x", "a wrong password", strings.Repeat("x", secret.MaxPasswordLength+1)} {
		wrong := work(func() { _, _ = pw.Verify(hash, p) })
		if got := work(func() { pw.VerifyDummy(p) }); got != wrong {
			t.Errorf("VerifyDummy(%d bytes): %d hashes computed, want %d as Verify of a wrong password", len(p), got, wrong)
		}
		if len(p) <= secret.MaxPasswordLength && wrong != 1 {
			t.Errorf("Verify(%d bytes): %d hashes computed, want 1", len(p), wrong)
		}
	}
}

func BenchmarkPasswordsVerify(b *testing.B) {
	pw := newPasswords(b, secret.DefaultArgon2Params)
	hash := mustHash(b, pw, "correct horse battery staple")
	b.ReportAllocs()
	for b.Loop() {
		ok, err := pw.Verify(hash, "correct horse battery staple")
		if err != nil || !ok {
			b.Fatalf("Verify() = %t, %v; want true, nil", ok, err)
		}
	}
}
