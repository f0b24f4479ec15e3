package assertion_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tollgate/tollgate/pkg/assertion"
	"github.com/tollgate/tollgate/storage"
)

func TestParseKeySetRefuses(t *testing.T) {
	ec := newKey(t, jose.ES256, "e1")
	rsaPriv := newKey(t, jose.RS256, "r1")
	privJWK, err := jose.JSONWebKey{Key: rsaPriv.priv, KeyID: "r1"}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallJWK, _ := jose.JSONWebKey{Key: &small.PublicKey}.MarshalJSON()
	withMember := func(raw json.RawMessage, k string, v any) json.RawMessage {
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		m[k] = v
		b, _ := json.Marshal(m)
		return b
	}
	many := make([]json.RawMessage, assertion.MaxKeys+1)
	for i := range many {
		many[i] = newKey(t, jose.EdDSA, "").jwk(t, false)
	}
	cases := []struct {
		name, raw string
	}{
		{"private RSA key", string(keySetJSON(t, privJWK))},
		{"private member d", string(keySetJSON(t, withMember(ec.jwk(t, true), "d", "AAAA")))},
		{"private member p", string(keySetJSON(t, withMember(rsaPriv.jwk(t, true), "p", "AAAA")))},
		{"symmetric key", `{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}]}`},
		{"symmetric key without k", `{"keys":[{"kty":"oct"}]}`},
		{"alg none", string(keySetJSON(t, withMember(ec.jwk(t, false), "alg", "none")))},
		{"alg HS256", string(keySetJSON(t, withMember(ec.jwk(t, false), "alg", "HS256")))},
		{"alg of another key type", string(keySetJSON(t, withMember(ec.jwk(t, false), "alg", "RS256")))},
		{"alg unknown", string(keySetJSON(t, withMember(ec.jwk(t, false), "alg", "XX999")))},
		{"use enc", string(keySetJSON(t, withMember(ec.jwk(t, true), "use", "enc")))},
		{"RSA 1024", string(keySetJSON(t, smallJWK))},
		{"repeated kid", string(keySetJSON(t, ec.jwk(t, true), ec.jwk(t, true)))},
		{"too many keys", string(keySetJSON(t, many...))},
		{"no keys", `{"keys":[]}`},
		{"keys missing", `{}`},
		{"not an object", `[]`},
		{"trailing data", string(keySetJSON(t, ec.jwk(t, true))) + `{}`},
		{"repeated member", `{"keys":[],"keys":[` + string(ec.jwk(t, true)) + `]}`},
		{"unknown kty", `{"keys":[{"kty":"XYZ","x":"AA"}]}`},
		{"bad point", `{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}]}`},
		{"too large", `{"keys":[` + string(withMember(ec.jwk(t, true), "pad", strings.Repeat("x", assertion.MaxKeySetBytes))) + `]}`},
		{"kid not a string", string(keySetJSON(t, withMember(ec.jwk(t, true), "kid", 7)))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set, err := assertion.ParseKeySet([]byte(tc.raw))
			if !errors.Is(err, assertion.ErrKeySet) {
				t.Fatalf("got %v, %v; want ErrKeySet", set, err)
			}
		})
	}
}

// fetcher serves a key set and counts the fetches.
type fetcher struct {
	body  atomic.Pointer[[]byte]
	err   error
	calls atomic.Int32
}

func (f *fetcher) Get(context.Context, string) ([]byte, error) {
	f.calls.Add(1)
	if f.err != nil {
		return nil, f.err
	}
	return *f.body.Load(), nil
}

func TestKeySourceRemote(t *testing.T) {
	clock := now
	k1, k2 := newKey(t, jose.ES256, "k1"), newKey(t, jose.ES256, "k2")
	f := &fetcher{}
	body := keySetJSON(t, k1.jwk(t, true))
	f.body.Store(&body)
	src := assertion.NewKeySource(assertion.SourceOptions{Fetcher: f, MaxAge: 10 * time.Minute, RefetchInterval: 30 * time.Second,
		Now: func() time.Time { return clock }})
	c := storage.Client{ID: 7, JWKSURI: "https://keys.example.com/jwks.json"}
	get := func(kid string) (*assertion.KeySet, error) { return src.Keys(t.Context(), c, kid) }

	if set, err := get("k1"); err != nil || !set.HasKID("k1") {
		t.Fatalf("first Keys: %v, %v", set, err)
	}
	if _, err := get("k1"); err != nil || f.calls.Load() != 1 {
		t.Fatalf("cached Keys: err %v, fetches %d, want 1", err, f.calls.Load())
	}
	// The client rotates to k2: an unknown kid refetches at once...
	body2 := keySetJSON(t, k2.jwk(t, true))
	f.body.Store(&body2)
	clock = clock.Add(31 * time.Second)
	if set, err := get("k2"); err != nil || !set.HasKID("k2") || f.calls.Load() != 2 {
		t.Fatalf("Keys of a new kid: %v, %v, fetches %d, want 2", set, err, f.calls.Load())
	}
	// ...but a stream of unknown kids costs one fetch per interval.
	for range 50 {
		_, _ = get("nope")
	}
	if got := f.calls.Load(); got != 2 {
		t.Fatalf("fetches after unknown kids within the interval: got %d, want 2", got)
	}
	clock = clock.Add(31 * time.Second)
	_, _ = get("nope")
	if got := f.calls.Load(); got != 3 {
		t.Fatalf("fetches after the interval: got %d, want 3", got)
	}
	// Past MaxAge the set is fetched again whatever the kid.
	clock = clock.Add(11 * time.Minute)
	_, _ = get("k2")
	if got := f.calls.Load(); got != 4 {
		t.Fatalf("fetches after MaxAge: got %d, want 4", got)
	}
	// A fetch failure is a refusal, and is not retried within the interval.
	f.err = errors.New("dial tcp: i/o timeout")
	clock = clock.Add(11 * time.Minute)
	if _, err := get("k2"); !errors.Is(err, assertion.ErrInvalid) {
		t.Fatalf("Keys while unreachable: got %v, want ErrInvalid", err)
	}
	if _, err := get("k2"); !errors.Is(err, assertion.ErrInvalid) || f.calls.Load() != 5 {
		t.Fatalf("Keys again while unreachable: %v, fetches %d, want 5", err, f.calls.Load())
	}
	// A document that is not a valid key set is a refusal too.
	f.err = nil
	bad := []byte(`{"keys":[{"kty":"oct","k":"AAAA"}]}`)
	f.body.Store(&bad)
	clock = clock.Add(time.Minute)
	if _, err := get("k2"); !errors.Is(err, assertion.ErrInvalid) {
		t.Fatalf("Keys of a bad document: got %v, want ErrInvalid", err)
	}
}

func TestKeySourceInline(t *testing.T) {
	k := newKey(t, jose.EdDSA, "k1")
	src := assertion.NewKeySource(assertion.SourceOptions{})
	c := storage.Client{ID: 7, JWKS: string(keySetJSON(t, k.jwk(t, true))), Version: 1}
	if set, err := src.Keys(t.Context(), c, "k1"); err != nil || !set.HasKID("k1") {
		t.Fatalf("Keys: %v, %v", set, err)
	}
	// A new version of the client is parsed anew.
	k2 := newKey(t, jose.EdDSA, "k2")
	c.JWKS, c.Version = string(keySetJSON(t, k2.jwk(t, true))), 2
	if set, err := src.Keys(t.Context(), c, "k2"); err != nil || !set.HasKID("k2") {
		t.Fatalf("Keys after an update: %v, %v", set, err)
	}
	if _, err := src.Keys(t.Context(), storage.Client{ID: 8}, ""); !errors.Is(err, assertion.ErrInvalid) {
		t.Fatalf("Keys of a client without keys: got %v, want ErrInvalid", err)
	}
	if _, err := assertion.NewKeySource(assertion.SourceOptions{}).Keys(t.Context(), storage.Client{ID: 9, JWKSURI: "https://x.example"}, ""); !errors.Is(err, assertion.ErrInvalid) {
		t.Fatalf("Keys of a jwks_uri without a fetcher: got %v, want ErrInvalid", err)
	}
}
