package secret

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// FuzzHasherCompare checks that Compare never panics and accepts a hash
// only when its MAC is HMAC-SHA-256 of data under the named pepper, which
// the oracle recomputes without the Hasher.
func FuzzHasherCompare(f *testing.F) {
	peppers := map[string][]byte{
		"1": bytes.Repeat([]byte{'a'}, MinPepperSize),
		"2": bytes.Repeat([]byte{'b'}, MinPepperSize+7),
	}
	h, err := NewHasher("2", peppers)
	if err != nil {
		f.Fatal(err)
	}
	retired, err := NewHasher("1", peppers)
	if err != nil {
		f.Fatal(err)
	}
	for _, data := range []string{"s3cret", "", "a+b%2B:c", "\xff"} {
		for _, hasher := range []*Hasher{h, retired} {
			hash, err := hasher.Hash(f.Context(), []byte(data))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(hash, []byte(data))
			f.Add(hash, []byte(data+"x"))
		}
	}
	f.Add([]byte("tgh1$1$"), []byte(""))
	f.Add([]byte("tgh1$$$"), []byte("x"))
	f.Add([]byte("tgh1$9$AAAA"), []byte("x"))
	f.Add([]byte("$2a$04$abcdefghijklmnopqrstuu5BYp8RHvIRtfoVA4QzQmWG4aFAxnW9ba"), []byte("x"))
	f.Add([]byte(""), []byte(""))

	f.Fuzz(func(t *testing.T, hash, data []byte) {
		err := h.Compare(t.Context(), hash, data)
		if err != nil && !errors.Is(err, ErrMismatch) {
			t.Fatalf("Compare(%q, %q) = %v, want nil or ErrMismatch", hash, data, err)
		}
		if err == nil {
			parts := strings.SplitN(string(hash), "$", 3)
			if len(parts) != 3 || parts[0] != "tgh1" || peppers[parts[1]] == nil {
				t.Fatalf("Compare(%q, %q) = nil for a hash not in tgh1$<known id>$ form", hash, data)
			}
			mac := hmac.New(sha256.New, peppers[parts[1]])
			mac.Write(data)
			got, decErr := base64.RawURLEncoding.DecodeString(parts[2])
			if decErr != nil || !hmac.Equal(got, mac.Sum(nil)) {
				t.Fatalf("Compare(%q, %q) = nil, but the MAC is not HMAC-SHA-256(pepper %q, data)", hash, data, parts[1])
			}
		}

		// Whatever data is, its own hash verifies and needs no rehash.
		own, err := h.Hash(t.Context(), data)
		if err != nil {
			t.Fatalf("Hash(%q) error = %v", data, err)
		}
		if err := h.Compare(t.Context(), own, data); err != nil {
			t.Fatalf("Compare(Hash(%q), %q) = %v, want nil", data, data, err)
		}
		if h.NeedsRehash(own) {
			t.Fatalf("NeedsRehash(Hash(%q)) = true, want false", data)
		}
	})
}

// FuzzPasswordsVerify feeds hostile hash strings to Verify: it must not
// panic, an error must come with false, and any hash the parser accepts must
// be within the cost limits.
func FuzzPasswordsVerify(f *testing.F) {
	pw, err := NewPasswords(Argon2Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	if err != nil {
		f.Fatal(err)
	}
	// Seeds are fixed strings: each fuzz worker runs this function again, so
	// a hash made here with a random salt would differ between processes.
	const good = "$argon2id$v=19$m=64,t=1,p=1$ILZsnOGhoUz8fD3NU9aUDg$1GOwhoWTkUjakWGVdHfLD/JRoDrHmsU+TY76bTf54eg" // "pw"
	const goodBcrypt = "$2a$04$XKEhdGLSRS6FC2Nwxnqu1O1BPtRjB9ZwOrxTNjzRZiz/IvIWl2vbC"                             // "pw"
	seeds := []string{
		good,
		goodBcrypt,
		"",
		"$",
		"$argon2id$",
		"$argon2id$v=19$m=64,t=1,p=1$$",
		"$argon2id$v=19$m=1048577,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=99999999999,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1,p=255$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1,p=1$!!!!$a2V5",
		"$argon2id$v=16$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$2a$04$abc",
		"$2y$",
	}
	for _, s := range seeds {
		f.Add(s, "pw")
	}
	if ok, err := pw.Verify(good, "pw"); !ok || err != nil {
		f.Fatalf("Verify(seed hash, %q) = %t, %v; want true, nil", "pw", ok, err)
	}
	if ok, err := pw.Verify(goodBcrypt, "pw"); !ok || err != nil {
		f.Fatalf("Verify(seed bcrypt hash, %q) = %t, %v; want true, nil", "pw", ok, err)
	}

	f.Fuzz(func(t *testing.T, hash, password string) {
		p, salt, key, decErr := decodeArgon2id(hash)
		if decErr == nil {
			if p.Memory == 0 || p.Memory > 1<<20 || p.Iterations == 0 || p.Iterations > 16 || p.Parallelism == 0 ||
				len(salt) < 8 || len(key) < 16 || len(key) > 64 {
				t.Fatalf("decodeArgon2id(%q) = %+v, %d-byte salt, %d-byte key: outside the limits", hash, p, len(salt), len(key))
			}
			// Verify only what is cheap enough for a fuzz iteration; the
			// parser itself has been exercised above.
			if uint64(p.Memory)*uint64(p.Iterations) > 4096 {
				return
			}
		}
		isBcrypt := strings.HasPrefix(hash, "$2a$") || strings.HasPrefix(hash, "$2b$") || strings.HasPrefix(hash, "$2y$")
		if isBcrypt {
			if cost, err := bcrypt.Cost([]byte(hash)); err == nil && cost > bcrypt.MinCost {
				return // see TestPasswordsVerifyRefusesExpensiveBcrypt
			}
		}
		ok, err := pw.Verify(hash, password)
		if err != nil && ok {
			t.Fatalf("Verify(%q, %q) = true, %v; want false with an error", hash, password, err)
		}
		if !ok {
			return
		}
		// true only when the hash really is one of password.
		if isBcrypt {
			if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
				t.Fatalf("Verify(%q, %q) = true, bcrypt disagrees", hash, password)
			}
			return
		}
		if decErr != nil {
			t.Fatalf("Verify(%q, %q) = true for a hash decodeArgon2id refuses: %v", hash, password, decErr)
		}
		want := argon2.IDKey([]byte(password), salt, p.Iterations, p.Memory, p.Parallelism, uint32(len(key)))
		if !bytes.Equal(want, key) {
			t.Fatalf("Verify(%q, %q) = true, but the key is not argon2id of the password", hash, password)
		}
	})
}
