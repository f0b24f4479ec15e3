package assertion_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tollgate/tollgate/pkg/assertion"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/memory"
)

const (
	issuer   = "https://auth.example.test"
	tokenURL = "https://auth.example.test/oauth/token"
	clientID = 42
)

var now = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

type testKey struct {
	priv crypto.Signer
	alg  jose.SignatureAlgorithm
	kid  string
}

func newKey(t testing.TB, alg jose.SignatureAlgorithm, kid string) testKey {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case jose.RS256, jose.PS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("no key for %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return testKey{priv: priv, alg: alg, kid: kid}
}

// jwk returns the key's public JWK as JSON, with alg when withAlg.
func (k testKey) jwk(t testing.TB, withAlg bool) json.RawMessage {
	t.Helper()
	j := jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Use: "sig"}
	if withAlg {
		j.Algorithm = string(k.alg)
	}
	b, err := j.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func keySetJSON(t testing.TB, keys ...json.RawMessage) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sign signs claims with k, naming its kid in the header when it has one.
func (k testKey) sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if k.kid != "" {
		opts = opts.WithHeader("kid", k.kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.priv}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func goodClaims() map[string]any {
	id := strconv.Itoa(clientID)
	return map[string]any{
		"iss": id, "sub": id, "aud": issuer,
		"exp": now.Add(2 * time.Minute).Unix(), "iat": now.Unix(),
		"jti": rand.Text(),
	}
}

func with(c map[string]any, k string, v any) map[string]any {
	c[k] = v
	if v == nil {
		delete(c, k)
	}
	return c
}

func newVerifier(t testing.TB) *assertion.Verifier {
	t.Helper()
	v, err := assertion.NewVerifier(assertion.VerifierOptions{
		Audiences: []string{issuer, tokenURL},
		Used:      memory.NewOneTimeIDs(memory.OneTimeOptions{Now: func() time.Time { return now }}),
		Now:       func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func verify(t *testing.T, v *assertion.Verifier, set *assertion.KeySet, raw string) error {
	t.Helper()
	a, err := assertion.Parse(raw)
	if err != nil {
		return err
	}
	return v.Verify(t.Context(), a, set)
}

func TestVerifyAccepts(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA} {
		for _, withAlg := range []bool{true, false} {
			t.Run(string(alg)+map[bool]string{true: " alg", false: " no alg"}[withAlg], func(t *testing.T) {
				k := newKey(t, alg, "k1")
				set, err := assertion.ParseKeySet(keySetJSON(t, k.jwk(t, withAlg)))
				if err != nil {
					t.Fatalf("ParseKeySet: %v", err)
				}
				v := newVerifier(t)
				if err := verify(t, v, set, k.sign(t, goodClaims())); err != nil {
					t.Fatalf("Verify: got %v, want nil", err)
				}
				// The token endpoint URL is an accepted audience too, and
				// aud may be an array.
				if err := verify(t, v, set, k.sign(t, with(goodClaims(), "aud", []string{"x", tokenURL}))); err != nil {
					t.Fatalf("Verify with aud = token URL: got %v, want nil", err)
				}
			})
		}
	}
}

// Without a kid in the header, every key of the algorithm is tried.
func TestVerifyWithoutKID(t *testing.T) {
	other, k := newKey(t, jose.ES256, "a"), newKey(t, jose.ES256, "b")
	set, err := assertion.ParseKeySet(keySetJSON(t, other.jwk(t, true), k.jwk(t, true)))
	if err != nil {
		t.Fatal(err)
	}
	k.kid = ""
	if err := verify(t, newVerifier(t), set, k.sign(t, goodClaims())); err != nil {
		t.Fatalf("Verify: got %v, want nil", err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	k := newKey(t, jose.ES256, "k1")
	rsaKey := newKey(t, jose.RS256, "r1")
	set, err := assertion.ParseKeySet(keySetJSON(t, k.jwk(t, true), rsaKey.jwk(t, true)))
	if err != nil {
		t.Fatal(err)
	}
	stranger := newKey(t, jose.ES256, "k1") // same kid, another key
	id := strconv.Itoa(clientID)
	// An HS256 assertion keyed with the client's public key as the shared
	// secret (the algorithm confusion attack).
	hsSigner, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(rsaKey.jwk(t, true))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(goodClaims())
	hsJWS, _ := hsSigner.Sign(payload)
	hs, _ := hsJWS.CompactSerialize()
	b64 := base64.RawURLEncoding.EncodeToString
	none := b64([]byte(`{"alg":"none"}`)) + "." + b64(payload) + "."
	// A PS256 header on a key registered for RS256 only.
	psKey := rsaKey
	psKey.alg = jose.PS256

	cases := []struct {
		name string
		raw  string
	}{
		{"alg none", none},
		{"HS256 with the public key as secret", hs},
		{"another key, same kid", stranger.sign(t, goodClaims())},
		{"unknown kid", newKey(t, jose.ES256, "k9").sign(t, goodClaims())},
		{"algorithm the key is not registered for", psKey.sign(t, goodClaims())},
		{"wrong aud", k.sign(t, with(goodClaims(), "aud", "https://evil.example"))},
		{"aud of another endpoint", k.sign(t, with(goodClaims(), "aud", issuer+"/oauth/introspect"))},
		{"no aud", k.sign(t, with(goodClaims(), "aud", nil))},
		{"iss is not sub", k.sign(t, with(goodClaims(), "iss", "43"))},
		{"sub not a number", k.sign(t, with(with(goodClaims(), "sub", "abc"), "iss", "abc"))},
		{"sub with a leading zero", k.sign(t, with(with(goodClaims(), "sub", "0"+id), "iss", "0"+id))},
		{"no iss", k.sign(t, with(goodClaims(), "iss", nil))},
		{"no exp", k.sign(t, with(goodClaims(), "exp", nil))},
		{"expired", k.sign(t, with(goodClaims(), "exp", now.Add(-time.Minute).Unix()))},
		{"exp too far ahead", k.sign(t, with(goodClaims(), "exp", now.Add(time.Hour).Unix()))},
		{"iat in the future", k.sign(t, with(goodClaims(), "iat", now.Add(5*time.Minute).Unix()))},
		{"nbf in the future", k.sign(t, with(goodClaims(), "nbf", now.Add(5*time.Minute).Unix()))},
		{"no jti", k.sign(t, with(goodClaims(), "jti", nil))},
		{"jti too long", k.sign(t, with(goodClaims(), "jti", strings.Repeat("j", 257)))},
		{"exp not a number", k.sign(t, with(goodClaims(), "exp", "soon"))},
		{"oversized", k.sign(t, with(goodClaims(), "pad", strings.Repeat("x", assertion.MaxBytes)))},
		{"not a JWS", "not.a.jws"},
		{"JSON serialization", `{"payload":"e30","signatures":[]}`},
		{"empty", ""},
		{"tampered payload", tamper(k.sign(t, goodClaims()))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := verify(t, newVerifier(t), set, tc.raw)
			if !errors.Is(err, assertion.ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
			if strings.Contains(err.Error(), tc.raw) && tc.raw != "" {
				t.Fatalf("the error holds the assertion: %v", err)
			}
		})
	}
}

// tamper changes the payload of a compact JWS and keeps its signature.
func tamper(raw string) string {
	parts := strings.Split(raw, ".")
	body, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c map[string]any
	_ = json.Unmarshal(body, &c)
	c["exp"] = now.Add(4 * time.Minute).Unix()
	body, _ = json.Marshal(c)
	parts[1] = base64.RawURLEncoding.EncodeToString(body)
	return strings.Join(parts, ".")
}

func TestVerifyRefusesReplay(t *testing.T) {
	k := newKey(t, jose.EdDSA, "k1")
	set, err := assertion.ParseKeySet(keySetJSON(t, k.jwk(t, true)))
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t)
	raw := k.sign(t, goodClaims())
	if err := verify(t, v, set, raw); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if err := verify(t, v, set, raw); !errors.Is(err, assertion.ErrInvalid) {
		t.Fatalf("replay: got %v, want ErrInvalid", err)
	}
	// Another assertion with the same jti is a replay too.
	c := goodClaims()
	c["jti"] = "fixed"
	if err := verify(t, v, set, k.sign(t, c)); err != nil {
		t.Fatalf("first use of jti fixed: %v", err)
	}
	c["iat"] = now.Unix() - 1
	if err := verify(t, v, set, k.sign(t, c)); !errors.Is(err, assertion.ErrInvalid) {
		t.Fatalf("reused jti: got %v, want ErrInvalid", err)
	}
}

type failingIDs struct{}

func (failingIDs) UseOnce(context.Context, string, time.Time) error {
	return errors.New("connection refused")
}

// A store outage is no refusal: the server answers it as unavailable.
func TestVerifyStoreOutage(t *testing.T) {
	k := newKey(t, jose.ES256, "k1")
	set, _ := assertion.ParseKeySet(keySetJSON(t, k.jwk(t, true)))
	v, err := assertion.NewVerifier(assertion.VerifierOptions{Audiences: []string{issuer}, Used: failingIDs{}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	err = verify(t, v, set, k.sign(t, goodClaims()))
	if !errors.Is(err, assertion.ErrUnavailable) || errors.Is(err, assertion.ErrInvalid) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
}

var _ storage.OneTimeIDs = failingIDs{}
