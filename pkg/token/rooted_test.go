package token_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/pkg/token"
)

// expectedRootedSignature recomputes a rooted token's signature: the
// HMAC-SHA-512/256, under SHA-256(secret), of a label and every byte before
// the last dot.
func expectedRootedSignature(secret []byte, text string) string {
	derived := sha256.Sum256(secret)
	m := hmac.New(sha512.New512_256, derived[:])
	m.Write([]byte("tollgate rooted access token v1\x00"))
	m.Write([]byte(text))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func TestGenerateRooted(t *testing.T) {
	s := newStrategy(t, secretA)
	n := token.Names{Root: 1, Account: 23, Client: 4567}
	tok, sig, err := s.GenerateRooted(n)
	if err != nil {
		t.Fatalf("GenerateRooted: %v", err)
	}
	if !strings.HasPrefix(tok, "tg_at_1.23.4567.") || len(tok) != len("tg_at_1.23.4567.")+43+1+43 {
		t.Errorf("token %q: want tg_at_1.23.4567.<43>.<43>", tok)
	}
	last := strings.LastIndexByte(tok, '.')
	if want := expectedRootedSignature(secretA, tok[:last]); sig != want || tok[last+1:] != want {
		t.Errorf("signature %q, token's %q: want %q", sig, tok[last+1:], want)
	}
	got, gotSig, err := s.RootedSignature(tok)
	if err != nil || got != n || gotSig != sig {
		t.Errorf("RootedSignature: got %+v, %q, %v; want %+v, %q", got, gotSig, err, n, sig)
	}
	if _, err := s.Signature(t.Context(), tok); !errors.Is(err, token.ErrMalformed) {
		t.Errorf("Signature of a rooted token: got %v, want ErrMalformed (another format)", err)
	}
	other, _, _ := s.GenerateRooted(n)
	if other == tok {
		t.Error("two tokens alike: the key part is not random")
	}
	user := token.Names{Root: 1, Account: 23, Client: 4567, User: 89}
	utok, usig, err := s.GenerateRooted(user)
	if err != nil || !strings.HasPrefix(utok, "tg_at_1.23.4567.89.") {
		t.Errorf("a user's token %q (%v): want tg_at_1.23.4567.89.…", utok, err)
	}
	if got, gotSig, err := s.RootedSignature(utok); err != nil || got != user || gotSig != usig {
		t.Errorf("RootedSignature(a user's token): got %+v, %q, %v; want %+v, %q", got, gotSig, err, user, usig)
	}
	for _, bad := range []token.Names{{}, {Root: 1, Account: 1}, {Root: -1, Account: 1, Client: 1}, {Root: 1, Account: 1, Client: 1, User: -1}} {
		if _, _, err := s.GenerateRooted(bad); err == nil {
			t.Errorf("GenerateRooted(%+v): got no error", bad)
		}
	}
}

// The HMAC covers the ids: a token with any id edited, or moved, is
// refused before any lookup.
func TestRootedSignatureCoversTheIDs(t *testing.T) {
	s := newStrategy(t, secretA)
	tok, _, err := s.GenerateRooted(token.Names{Root: 10, Account: 20, Client: 30})
	if err != nil {
		t.Fatal(err)
	}
	utok, _, err := s.GenerateRooted(token.Names{Root: 10, Account: 20, Client: 30, User: 40})
	if err != nil {
		t.Fatal(err)
	}
	rest := strings.TrimPrefix(tok, "tg_at_10.20.30.")
	urest := strings.TrimPrefix(utok, "tg_at_10.20.30.40.")
	ids := func(n ...int64) string {
		var b strings.Builder
		for _, id := range n {
			b.WriteString(strconv.FormatInt(id, 10) + ".")
		}
		return b.String()
	}
	for _, edited := range []string{
		"tg_at_" + ids(11, 20, 30) + rest, "tg_at_" + ids(10, 21, 30) + rest, "tg_at_" + ids(10, 20, 31) + rest,
		"tg_at_" + ids(20, 10, 30) + rest, "tg_at_" + ids(10, 10, 30) + rest, "tg_at_" + ids(30, 20, 10) + rest,
		"tg_at_" + ids(1, 20, 30) + rest,
		// A user named, dropped or changed.
		"tg_at_" + ids(10, 20, 30, 40) + rest, "tg_at_" + ids(10, 20, 30) + urest, "tg_at_" + ids(10, 20, 30, 41) + urest,
		"tg_at_" + ids(10, 20, 40, 30) + urest,
	} {
		if n, _, err := s.RootedSignature(edited); !errors.Is(err, token.ErrMalformed) {
			t.Errorf("%.30s… edited: got %+v, %v; want ErrMalformed", edited, n, err)
		}
	}
}

func TestRootedSignatureMalformed(t *testing.T) {
	s := newStrategy(t, secretA)
	tok, _, err := s.GenerateRooted(token.Names{Root: 10, Account: 20, Client: 30})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(strings.TrimPrefix(tok, "tg_at_"), ".")
	key, mac := parts[3], parts[4]
	// Each spells the same ids or parts another way, or breaks the form.
	for name, bad := range map[string]string{
		"leading zero":    "tg_at_010.20.30." + key + "." + mac,
		"plus sign":       "tg_at_+10.20.30." + key + "." + mac,
		"zero id":         "tg_at_0.20.30." + key + "." + mac,
		"negative id":     "tg_at_-10.20.30." + key + "." + mac,
		"missing id":      "tg_at_10.30." + key + "." + mac,
		"extra id":        "tg_at_10.20.30.40." + key + "." + mac,
		"five ids":        "tg_at_10.20.30.40.50." + key + "." + mac,
		"padded mac":      tok + "=",
		"short key":       "tg_at_10.20.30." + key[1:] + "." + mac,
		"other prefix":    "tg_rt_10.20.30." + key + "." + mac,
		"no prefix":       "10.20.30." + key + "." + mac,
		"id past int64":   "tg_at_9223372036854775808.20.30." + key + "." + mac,
		"trailing bytes":  tok + "\n",
		"empty":           "",
		"twenty digits":   "tg_at_10000000000000000000.20.30." + key + "." + mac,
		"standard base64": "tg_at_10.20.30.+" + key[1:] + "." + mac,
	} {
		if n, sig, err := s.RootedSignature(bad); !errors.Is(err, token.ErrMalformed) || sig != "" || n != (token.Names{}) {
			t.Errorf("%s: got %+v, %q, %v; want ErrMalformed", name, n, sig, err)
		}
	}
}

// Tokens signed with a rotated secret keep validating; a secret that is
// neither the current nor a rotated one does not.
func TestRootedSignatureRotation(t *testing.T) {
	old := newStrategy(t, secretA)
	tok, sig, err := old.GenerateRooted(token.Names{Root: 1, Account: 2, Client: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, got, err := newStrategy(t, secretB, secretA).RootedSignature(tok); err != nil || got != sig {
		t.Errorf("after rotation: got %q, %v; want %q", got, err, sig)
	}
	if _, _, err := newStrategy(t, secretB).RootedSignature(tok); !errors.Is(err, token.ErrMalformed) {
		t.Errorf("under another secret: got %v, want ErrMalformed", err)
	}
}

// A rooted token derived from a seed is the same for the same seed and
// ids, and validates.
func TestDeriveRooted(t *testing.T) {
	s := newStrategy(t, secretA)
	n := token.Names{Root: 1, Account: 2, Client: 3}
	a, sigA := s.DeriveRooted([]byte("seed"), n)
	b, sigB := s.DeriveRooted([]byte("seed"), n)
	c, _ := s.DeriveRooted([]byte("another seed"), n)
	d, _ := s.DeriveRooted([]byte("seed"), token.Names{Root: 1, Account: 2, Client: 4})
	if a != b || sigA != sigB || a == c || a == d {
		t.Errorf("derived %q, %q, %q, %q: want the first two alike, the others not", a, b, c, d)
	}
	if _, got, err := s.RootedSignature(a); err != nil || got != sigA {
		t.Errorf("RootedSignature(derived): got %q, %v", got, err)
	}
}

// FuzzRootedSignature checks that RootedSignature never panics and never
// accepts a string that is not tg_at_<ids>.<key>.<HMAC> with the HMAC of
// everything before it under one of the secrets, recomputed here.
func FuzzRootedSignature(f *testing.F) {
	s := newStrategy(f, secretB, secretA)
	for _, secret := range [][]byte{secretA, secretB} {
		text := "tg_at_1.2.3." + strings.Repeat("A", 43)
		f.Add(text + "." + expectedRootedSignature(secret, text))
	}
	for _, seed := range []string{"", "tg_at_", "tg_at_1.2.3..", "tg_at_1.2.3.4.5.6", "tg_at_" + strings.Repeat("9.", 80)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		n, sig, err := s.RootedSignature(tok)
		if err != nil {
			if !errors.Is(err, token.ErrMalformed) || sig != "" {
				t.Fatalf("RootedSignature(%q): %q, %v; want \"\", ErrMalformed", tok, sig, err)
			}
			return
		}
		last := strings.LastIndexByte(tok, '.')
		if sig != tok[last+1:] || (sig != expectedRootedSignature(secretA, tok[:last]) && sig != expectedRootedSignature(secretB, tok[:last])) {
			t.Fatalf("RootedSignature(%q) accepted %q, not the HMAC of the rest", tok, sig)
		}
		want := "tg_at_" + strconv.FormatInt(n.Root, 10) + "." + strconv.FormatInt(n.Account, 10) + "." + strconv.FormatInt(n.Client, 10) + "."
		if n.User != 0 {
			want += strconv.FormatInt(n.User, 10) + "."
		}
		if !strings.HasPrefix(tok, want) || strings.Count(tok, ".") != strings.Count(want, ".")+1 {
			t.Fatalf("RootedSignature(%q) read ids %+v", tok, n)
		}
	})
}

// BenchmarkSignatures compares reading a token of each format: the HMAC
// check every lookup starts with.
func BenchmarkSignatures(b *testing.B) {
	s := newStrategy(b, secretA, secretB)
	old, _, err := s.Generate(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	rooted, _, err := s.GenerateRooted(token.Names{Root: 12, Account: 345, Client: 6789})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("older", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Signature(b.Context(), old); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("rooted", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := s.RootedSignature(rooted); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestNamesSpelling: the one spelling of the ids that opaque tokens and
// JWT ids share reads back as written, and nothing else reads.
func TestNamesSpelling(t *testing.T) {
	for _, n := range []token.Names{{Root: 1, Account: 2, Client: 3}, {Root: 10, Account: 20, Client: 30, User: 40}} {
		text := string(token.AppendNames(nil, n)) + "last"
		got, last, ok := token.CutNames(text)
		if !ok || got != n || last != "last" {
			t.Errorf("CutNames(%q) = %+v, %q, %v; want %+v, \"last\"", text, got, last, ok, n)
		}
	}
	for _, bad := range []string{"", "1.2.last", "1.2.3.", "1.2.3.4.5.last", "01.2.3.last", "1.+2.3.last", "1.2.0.last",
		"1.2.3.0.last", "1.2.3.-4.last", "1.2.99999999999999999999.last"} {
		if n, last, ok := token.CutNames(bad); ok {
			t.Errorf("CutNames(%q) = %+v, %q: read", bad, n, last)
		}
	}
}
