package jwt_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tollgate/tollgate/pkg/signing"
	"github.com/tollgate/tollgate/pkg/token"
	"github.com/tollgate/tollgate/pkg/tokens"
	"github.com/tollgate/tollgate/pkg/tokens/jwt"
	"github.com/tollgate/tollgate/storage"
	sqlstore "github.com/tollgate/tollgate/storage/sql"
	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

const issuer = "https://auth.example.test"

var secret = bytes.Repeat([]byte{7}, 32)

// newFormat returns the format over a ring of alg on a fresh SQLite
// database.
func newFormat(tb testing.TB, alg jose.SignatureAlgorithm) (*jwt.Format, *signing.Ring) {
	tb.Helper()
	store, err := sqlstore.Open(tb.Context(), sqlstore.Options{URL: sqltest.SQLite(tb.(*testing.T)), QueryTimeout: time.Minute})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = store.Close() })
	if _, err := store.Migrate(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	ring, err := signing.New(signing.Options{Store: store, KeyEncryptionKey: bytes.Repeat([]byte{9}, 32), Algorithm: alg,
		PublishAhead: time.Hour, Retain: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	if err := ring.Refresh(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	f, err := jwt.New(jwt.Options{Issuer: issuer, Keys: ring, Secret: secret})
	if err != nil {
		tb.Fatal(err)
	}
	return f, ring
}

func record() storage.Token {
	now := time.Now().Truncate(time.Second)
	return storage.Token{ClientID: 42, AccountID: 7, Scopes: []string{"read", "write"}, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
}

func TestMintAndRead(t *testing.T) {
	for _, alg := range signing.Algorithms {
		t.Run(string(alg), func(t *testing.T) {
			f, ring := newFormat(t, alg)
			value, id, err := f.Mint(t.Context(), record(), 0)
			if err != nil {
				t.Fatalf("Mint: %v", err)
			}
			got, err := f.ID(t.Context(), value)
			if err != nil || got != id {
				t.Fatalf("ID: got %q, %v, want %q", got, err, id)
			}
			// A verifier with the JWK Set alone.
			var set jose.JSONWebKeySet
			if err := json.Unmarshal(ring.JWKS(), &set); err != nil {
				t.Fatal(err)
			}
			jws, err := jose.ParseSignedCompact(value, []jose.SignatureAlgorithm{alg})
			if err != nil {
				t.Fatal(err)
			}
			payload, err := jws.Verify(set.Keys[0])
			if err != nil {
				t.Fatalf("the JWK Set does not verify: %v", err)
			}
			var c map[string]any
			_ = json.Unmarshal(payload, &c)
			if c["jti"] != id || c["sub"] != "42" || c["client_id"] != "42" || c["scope"] != "read write" || c["iss"] != issuer {
				t.Errorf("claims %v", c)
			}
			if jws.Signatures[0].Header.ExtraHeaders[jose.HeaderType] != "at+jwt" {
				t.Errorf("typ: got %v", jws.Signatures[0].Header.ExtraHeaders[jose.HeaderType])
			}
		})
	}
}

func TestDerive(t *testing.T) {
	f, _ := newFormat(t, jose.ES256)
	v1, id1, err := f.Derive(t.Context(), []byte("seed"), record(), 0)
	if err != nil {
		t.Fatal(err)
	}
	_, id2, _ := f.Derive(t.Context(), []byte("seed"), record(), 0)
	_, id3, _ := f.Derive(t.Context(), []byte("other seed"), record(), 0)
	if id1 != id2 || id1 == id3 {
		t.Errorf("derived ids: %q %q %q, want the first two equal and the third different", id1, id2, id3)
	}
	if got, err := f.ID(t.Context(), v1); err != nil || got != id1 {
		t.Errorf("ID of a derived token: got %q, %v", got, err)
	}
}

func segment(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// respell spells the same bytes as part (unpadded base64url) another way:
// its last character with other unused bits, which a lenient decoder
// ignores. part's length must leave unused bits (not a multiple of 4).
func respell(part string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, part[len(part)-1])
	unused := map[int]int{2: 15, 3: 3}[len(part)%4] // the bits of the last character past the data
	return part[:len(part)-1] + string(alphabet[last^unused])
}

// TestNames: with its root known, a token's jti names its root, account,
// client and user, which Names reads back once the token is verified; a
// token whose jti names nothing is left to ID, and a JWS whose signature
// fails is refused outright.
func TestNames(t *testing.T) {
	f, ring := newFormat(t, jose.ES256)
	user := record()
	user.Subject = "9"
	for name, tc := range map[string]struct {
		rec  storage.Token
		want token.Names
	}{
		"client token": {record(), token.Names{Root: 3, Account: 7, Client: 42}},
		"user token":   {user, token.Names{Root: 3, Account: 7, Client: 42, User: 9}},
	} {
		t.Run(name, func(t *testing.T) {
			value, id, err := f.Mint(t.Context(), tc.rec, 3)
			if err != nil {
				t.Fatal(err)
			}
			prefix := "a" + string(token.AppendNames(nil, tc.want))
			if !strings.HasPrefix(id, prefix) || len(id) != len(prefix)+43 {
				t.Errorf("jti %q, want %s and 43 random characters", id, prefix)
			}
			n, got, err := f.Names(t.Context(), value)
			if err != nil || n != tc.want || got != id {
				t.Errorf("Names: %+v, %q, %v, want %+v, %q", n, got, err, tc.want, id)
			}
			if got, err := f.ID(t.Context(), value); err != nil || got != id {
				t.Errorf("ID: %q, %v, want %q", got, err, id)
			}
			v1, d1, _ := f.Derive(t.Context(), []byte("seed"), tc.rec, 3)
			_, d2, _ := f.Derive(t.Context(), []byte("seed"), tc.rec, 3)
			if n, got, err := f.Names(t.Context(), v1); d1 != d2 || err != nil || n != tc.want || got != d1 {
				t.Errorf("a derived token: jtis %q, %q; Names %+v, %q, %v", d1, d2, n, got, err)
			}
		})
	}

	// Root unknown (or the legacy format asked for): the jti names nothing.
	value, id, err := f.Mint(t.Context(), record(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.Names(t.Context(), value); !errors.Is(err, tokens.ErrMalformed) {
		t.Errorf("Names of a token naming nothing: %v, want %v", err, tokens.ErrMalformed)
	}
	if got, err := f.ID(t.Context(), value); err != nil || got != id {
		t.Errorf("ID of a token naming nothing: %q, %v", got, err)
	}

	// Signed with the installation's key, but with a jti that names
	// something else than the claims, or names it in another spelling.
	key, _ := ring.Signer()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: key.Algorithm, Key: jose.JSONWebKey{Key: key.Private, KeyID: key.ID}},
		(&jose.SignerOptions{}).WithType(jwt.Type))
	if err != nil {
		t.Fatal(err)
	}
	signed := func(jti string, account int) string {
		obj, err := signer.Sign([]byte(fmt.Sprintf(`{"iss":%q,"jti":%q,"client_id":"42","account_id":%d}`, issuer, jti, account)))
		if err != nil {
			t.Fatal(err)
		}
		out, _ := obj.CompactSerialize()
		return out
	}
	if n, _, err := f.Names(t.Context(), signed("a3.7.42.random", 7)); err != nil || n != (token.Names{Root: 3, Account: 7, Client: 42}) {
		t.Fatalf("a well-made jti: %+v, %v", n, err)
	}
	for name, v := range map[string]string{
		"another account in the claims": signed("a3.7.42.random", 8),
		"another client in the jti":     signed("a3.7.43.random", 7),
		"too few ids":                   signed("a3.7.random", 7),
		"no a":                          signed("3.7.42.random", 7),
		"a leading zero":                signed("a3.07.42.random", 7),
		"a negative user":               signed("a3.7.42.-1.random", 7),
		"user zero":                     signed("a3.7.42.0.random", 7),
		"no random part":                signed("a3.7.42.", 7),
		"a dot in the random part":      signed("a3.7.42.9.ran.dom", 7),
		"root zero":                     signed("a0.7.42.random", 7),
		"not a JWS":                     "tg_at_3.7.42.key.mac",
		"empty":                         "",
	} {
		if n, id, err := f.Names(t.Context(), v); !errors.Is(err, tokens.ErrMalformed) {
			t.Errorf("%s: %+v, %q, %v, want %v", name, n, id, err, tokens.ErrMalformed)
		}
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forged, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: other, KeyID: key.ID}},
		(&jose.SignerOptions{}).WithType(jwt.Type))
	if err != nil {
		t.Fatal(err)
	}
	obj, _ := forged.Sign([]byte(fmt.Sprintf(`{"iss":%q,"jti":"a3.7.42.random","client_id":"42","account_id":7}`, issuer)))
	bad, _ := obj.CompactSerialize()
	if _, _, err := f.Names(t.Context(), bad); !errors.Is(err, tokens.ErrInactive) {
		t.Errorf("a JWS signed with another key: %v, want %v", err, tokens.ErrInactive)
	}
}

func TestHostile(t *testing.T) {
	f, ring := newFormat(t, jose.ES256)
	value, _, err := f.Mint(t.Context(), record(), 0)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ring.Signer()
	parts := strings.Split(value, ".")
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sign := func(k any, alg jose.SignatureAlgorithm, kid, typ string, payload []byte) string {
		opts := &jose.SignerOptions{}
		if typ != "" {
			opts = opts.WithType(jose.ContentType(typ))
		}
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: k, KeyID: kid}}, opts)
		if err != nil {
			t.Fatal(err)
		}
		obj, _ := s.Sign(payload)
		out, _ := obj.CompactSerialize()
		return out
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	otherIssuer := bytes.Replace(payload, []byte(issuer), []byte("https://evil.example"), 1)
	for name, v := range map[string]string{
		"opaque token":       "tg_at_abc.def",
		"alg none":           segment(`{"alg":"none","typ":"at+jwt","kid":"`+key.ID+`"}`) + "." + parts[1] + ".",
		"HS256 with the kid": sign([]byte("0123456789abcdef0123456789abcdef"), jose.HS256, key.ID, "at+jwt", payload),
		"another key":        sign(other, jose.ES256, key.ID, "at+jwt", payload),
		"unknown kid":        sign(other, jose.ES256, "nope", "at+jwt", payload),
		"no typ":             sign(key.Private, jose.ES256, key.ID, "", payload),
		"typ JWT":            sign(key.Private, jose.ES256, key.ID, "JWT", payload),
		"another issuer":     sign(key.Private, jose.ES256, key.ID, "at+jwt", otherIssuer),
		"no jti":             sign(key.Private, jose.ES256, key.ID, "at+jwt", []byte(`{"iss":"`+issuer+`"}`)),
		"claims not JSON":    sign(key.Private, jose.ES256, key.ID, "at+jwt", []byte(`not json`)),
		"tampered claims":    parts[0] + "." + segment(`{"iss":"`+issuer+`","jti":"x"}`) + "." + parts[2],
		"oversized":          value + strings.Repeat("A", jwt.MaxBytes),
		"another spelling":   parts[0] + "." + parts[1] + "." + respell(parts[2]),
		"a line break":       parts[0] + "." + parts[1] + "." + parts[2][:10] + "\n" + parts[2][10:],
		"JSON serialization": `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`,
		"empty":              "",
	} {
		if id, err := f.ID(t.Context(), v); !errors.Is(err, tokens.ErrMalformed) {
			t.Errorf("%s: got %q, %v, want %v", name, id, err, tokens.ErrMalformed)
		}
	}
	// The right key under the right kid, signed anew, is read: the cases
	// above fail for the reason they name.
	if _, err := f.ID(t.Context(), sign(key.Private, jose.ES256, key.ID, "at+jwt", payload)); err != nil {
		t.Errorf("a well-made token: %v", err)
	}
}

// countingKeys is one signing key, without a database (what the fuzz
// target needs, thousands of times a second), that can be taken out of the
// ring, and counts the lookups by kid (one per signature verified).
type countingKeys struct {
	key     *signing.Key
	gone    atomic.Bool
	lookups atomic.Int64
}

func (k *countingKeys) Signer() (*signing.Key, error) { return k.key, nil }
func (k *countingKeys) Key(kid string) (*signing.Key, bool) {
	k.lookups.Add(1)
	return k.key, kid == k.key.ID && !k.gone.Load()
}

// TestVerifiedTokensRemembered: a verified token's signature is checked
// once per VerifiedTTL, not on every read; a token that fails is never
// remembered; a token of a key that left the ring is refused once its
// memory ends; the memory holds at most MaxVerified tokens.
func TestVerifiedTokensRemembered(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys := &countingKeys{key: &signing.Key{ID: "k1", Algorithm: jose.ES256, Private: priv}}
	now := time.Now()
	f, err := jwt.New(jwt.Options{Issuer: issuer, Secret: secret, Keys: keys, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	value, id, err := f.Mint(t.Context(), record(), 3)
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string, wantLookups int64) {
		t.Helper()
		keys.lookups.Store(0)
		if got, err := f.ID(t.Context(), value); err != nil || got != id {
			t.Fatalf("%s: ID %q, %v", name, got, err)
		}
		if _, got, err := f.Names(t.Context(), value); err != nil || got != id {
			t.Fatalf("%s: Names %q, %v", name, got, err)
		}
		if got := keys.lookups.Load(); got != wantLookups {
			t.Errorf("%s: %d signatures verified, want %d", name, got, wantLookups)
		}
	}
	read("first reads", 1)
	read("reads within the minute", 0)
	now = now.Add(jwt.VerifiedTTL)
	read("reads once the minute is over", 1)

	// A bad signature is verified, and refused, every time.
	i := len(value) - 10
	flipped := byte('A')
	if value[i] == 'A' {
		flipped = 'B'
	}
	bad := value[:i] + string(flipped) + value[i+1:]
	keys.lookups.Store(0)
	for range 3 {
		if _, err := f.ID(t.Context(), bad); !errors.Is(err, tokens.ErrMalformed) {
			t.Fatalf("a bad signature: %v", err)
		}
	}
	if got := keys.lookups.Load(); got != 3 {
		t.Errorf("a bad signature read 3 times: %d verifications, want 3", got)
	}

	// The key leaves the ring: its token is taken until its memory ends.
	keys.gone.Store(true)
	if _, err := f.ID(t.Context(), value); err != nil {
		t.Errorf("within the minute after its key left: %v", err)
	}
	now = now.Add(jwt.VerifiedTTL)
	if _, err := f.ID(t.Context(), value); !errors.Is(err, tokens.ErrMalformed) {
		t.Errorf("after the minute: %v, want %v", err, tokens.ErrMalformed)
	}
	keys.gone.Store(false)

	// Bounded: more tokens than it holds.
	for range jwt.MaxVerified + 50 {
		v, _, err := f.Mint(t.Context(), record(), 3)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.ID(t.Context(), v); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.Remembered(); n != jwt.MaxVerified {
		t.Errorf("%d tokens remembered, want %d", n, jwt.MaxVerified)
	}
}

// FuzzID: whatever bytes are presented, ID answers ErrMalformed or, only for
// a value carrying what the key signed, that value's jti, and Names
// ErrMalformed, ErrInactive or the ids that jti names; neither panics.
func FuzzID(f *testing.F) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	format, err := jwt.New(jwt.Options{Issuer: issuer, Secret: secret,
		Keys: &countingKeys{key: &signing.Key{ID: "k1", Algorithm: jose.ES256, Private: priv}}})
	if err != nil {
		f.Fatal(err)
	}
	value, jti, err := format.Mint(f.Context(), record(), 3)
	if err != nil {
		f.Fatal(err)
	}
	names := token.Names{Root: 3, Account: 7, Client: 42}
	parts := strings.Split(value, ".")
	f.Add(value)
	f.Add("")
	f.Add("a.b.c")
	f.Add(segment(`{"alg":"none","typ":"at+jwt","kid":"k1"}`) + "." + parts[1] + ".")
	f.Add(segment(`{"alg":"HS256","typ":"at+jwt","kid":"k1"}`) + "." + parts[1] + "." + parts[2])
	f.Add(parts[0] + "." + segment(`{"iss":"`+issuer+`","jti":"x"}`) + "." + parts[2])
	f.Fuzz(func(t *testing.T, v string) {
		id, err := format.ID(t.Context(), v)
		switch {
		case err == nil && id != jti:
			t.Fatalf("ID(%q) = %q: read a jti the key never signed", v, id)
		case err != nil && !errors.Is(err, tokens.ErrMalformed):
			t.Fatalf("ID(%q): got error %v, want %v", v, err, tokens.ErrMalformed)
		}
		n, id, err := format.Names(t.Context(), v)
		switch {
		case err == nil && (id != jti || n != names):
			t.Fatalf("Names(%q) = %+v, %q: read ids the key never signed", v, n, id)
		case err != nil && !errors.Is(err, tokens.ErrMalformed) && !errors.Is(err, tokens.ErrInactive):
			t.Fatalf("Names(%q): got error %v, want %v or %v", v, err, tokens.ErrMalformed, tokens.ErrInactive)
		}
	})
}

// benchFormat is the format over one in-memory key of alg.
func benchFormat(b *testing.B, alg jose.SignatureAlgorithm, now func() time.Time) *jwt.Format {
	b.Helper()
	var key *signing.Key
	switch alg {
	case jose.ES256:
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		key = &signing.Key{ID: "k1", Algorithm: alg, Private: priv}
	default:
		b.Fatalf("no benchmark key for %s", alg)
	}
	f, err := jwt.New(jwt.Options{Issuer: issuer, Secret: secret, Keys: &countingKeys{key: key}, Now: now})
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// BenchmarkMint: one ES256 JWT access token signed.
func BenchmarkMint(b *testing.B) {
	f := benchFormat(b, jose.ES256, nil)
	rec := record()
	for b.Loop() {
		if _, _, err := f.Mint(b.Context(), rec, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkID: one ES256 JWT access token read back: verified (parse,
// signature, claims; a clock that moves past the memory's minute on every
// read), and remembered (verified within the minute).
func BenchmarkID(b *testing.B) {
	var now time.Time
	for name, clock := range map[string]func() time.Time{
		"verified":   func() time.Time { now = now.Add(jwt.VerifiedTTL); return now },
		"remembered": func() time.Time { return now },
	} {
		b.Run(name, func(b *testing.B) {
			f := benchFormat(b, jose.ES256, clock)
			value, _, err := f.Mint(b.Context(), record(), 3)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := f.ID(b.Context(), value); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
