package signing_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tollgate/tollgate/pkg/signing"
	"github.com/tollgate/tollgate/storage"
	sqlstore "github.com/tollgate/tollgate/storage/sql"
	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

// clock is a settable clock shared by the rings of a test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

var kek = bytes.Repeat([]byte{0x5c}, signing.KeyEncryptionKeySize)

func openStore(t *testing.T) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(t.Context(), sqlstore.Options{URL: sqltest.SQLite(t), QueryTimeout: time.Minute})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func newRing(t *testing.T, store storage.SigningKeys, c *clock, alg jose.SignatureAlgorithm, key []byte) *signing.Ring {
	t.Helper()
	r, err := signing.New(signing.Options{
		Store: store, KeyEncryptionKey: key, Algorithm: alg,
		RotationPeriod: 10 * 24 * time.Hour, PublishAhead: time.Hour, Retain: 48 * time.Hour, Now: c.now,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

func refresh(t *testing.T, r *signing.Ring) {
	t.Helper()
	if err := r.Refresh(t.Context()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
}

// jwks parses the ring's JWK Set as a verifier would.
func jwks(t *testing.T, r *signing.Ring) jose.JSONWebKeySet {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(r.JWKS(), &set); err != nil {
		t.Fatalf("JWKS is not a JWK Set: %v\n%s", err, r.JWKS())
	}
	return set
}

func kids(set jose.JSONWebKeySet) []string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

func signerID(t *testing.T, r *signing.Ring) string {
	t.Helper()
	k, err := r.Signer()
	if err != nil {
		t.Fatalf("Signer: %v", err)
	}
	return k.ID
}

// TestAlgorithms: each algorithm's key signs what its published public key
// verifies, and the JWK Set carries the public members only.
func TestAlgorithms(t *testing.T) {
	for _, tc := range []struct {
		alg     jose.SignatureAlgorithm
		members []string
	}{
		{jose.ES256, []string{"kty", "crv", "x", "y", "kid", "alg", "use"}},
		{jose.RS256, []string{"kty", "n", "e", "kid", "alg", "use"}},
		{jose.EdDSA, []string{"kty", "crv", "x", "kid", "alg", "use"}},
	} {
		t.Run(string(tc.alg), func(t *testing.T) {
			c := &clock{t: time.Date(2026, 5, 1, 10, 0, 30, 0, time.UTC)}
			r := newRing(t, openStore(t), c, tc.alg, kek)
			if _, err := r.Signer(); !errors.Is(err, signing.ErrNoKey) {
				t.Fatalf("Signer before Refresh: got error %v, want %v", err, signing.ErrNoKey)
			}
			refresh(t, r)
			k, err := r.Signer()
			if err != nil {
				t.Fatalf("Signer: %v", err)
			}
			var raw struct {
				Keys []map[string]any `json:"keys"`
			}
			if err := json.Unmarshal(r.JWKS(), &raw); err != nil || len(raw.Keys) != 1 {
				t.Fatalf("JWKS: got %s (%v), want one key", r.JWKS(), err)
			}
			got := raw.Keys[0]
			if len(got) != len(tc.members) {
				t.Errorf("JWK members: got %v, want exactly %v", got, tc.members)
			}
			for _, m := range tc.members {
				if _, ok := got[m]; !ok {
					t.Errorf("JWK lacks %q: %v", m, got)
				}
			}
			if got["alg"] != string(tc.alg) || got["use"] != "sig" || got["kid"] != k.ID {
				t.Errorf("JWK alg, use, kid: got %v %v %v, want %s sig %s", got["alg"], got["use"], got["kid"], tc.alg, k.ID)
			}

			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.Algorithm, Key: k.Private}, nil)
			if err != nil {
				t.Fatalf("NewSigner: %v", err)
			}
			obj, err := signer.Sign([]byte("payload"))
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			compact, _ := obj.CompactSerialize()
			parsed, err := jose.ParseSignedCompact(compact, []jose.SignatureAlgorithm{tc.alg})
			if err != nil {
				t.Fatalf("ParseSigned: %v", err)
			}
			set := jwks(t, r)
			pub := set.Key(k.ID)
			if len(pub) != 1 || !pub[0].IsPublic() {
				t.Fatalf("JWKS key %s: got %+v, want one public key", k.ID, pub)
			}
			if out, err := parsed.Verify(pub[0]); err != nil || string(out) != "payload" {
				t.Errorf("Verify with the published key: got %q, %v", out, err)
			}
		})
	}
}

// TestSchedule follows one key's life: published ahead, signing, retired,
// still published until its last token expired, deleted.
func TestSchedule(t *testing.T) {
	start := time.Date(2026, 5, 1, 10, 0, 30, 0, time.UTC)
	c := &clock{t: start}
	store := openStore(t)
	r := newRing(t, store, c, jose.ES256, kek)
	refresh(t, r)
	k1 := signerID(t, r)
	first := start.Truncate(time.Minute)

	steps := []struct {
		at        time.Time
		published int
		signerOld bool
	}{
		{first.Add(10*24*time.Hour - time.Hour - time.Second), 1, true}, // not due yet
		{first.Add(10*24*time.Hour - time.Hour), 2, true},               // k2 published, k1 signs
		{first.Add(10*24*time.Hour - time.Second), 2, true},
		{first.Add(10 * 24 * time.Hour), 2, false},           // k2 signs
		{first.Add(12*24*time.Hour - time.Second), 2, false}, // k1's last tokens live
		{first.Add(12 * 24 * time.Hour), 1, false},           // k1 deleted
	}
	for _, s := range steps {
		c.set(s.at)
		refresh(t, r)
		if got := len(jwks(t, r).Keys); got != s.published {
			t.Errorf("at %v: got %d published keys, want %d", s.at, got, s.published)
		}
		if got := signerID(t, r) == k1; got != s.signerOld {
			t.Errorf("at %v: the first key signs: got %v, want %v", s.at, got, s.signerOld)
		}
	}
	stored, err := store.ListSigningKeys(t.Context())
	if err != nil || len(stored) != 1 || stored[0].ID == k1 {
		t.Errorf("stored keys at the end: got %+v, %v, want the second key only", stored, err)
	}
}

// TestInstancesShareKeys: instances on one database make one key between
// them, rotation included, and each follows a rotation made elsewhere on
// its next reload.
func TestInstancesShareKeys(t *testing.T) {
	c := &clock{t: time.Date(2026, 5, 1, 10, 0, 30, 0, time.UTC)}
	store := openStore(t)
	a, b := newRing(t, store, c, jose.ES256, kek), newRing(t, store, c, jose.ES256, kek)
	refresh(t, a)
	refresh(t, b)
	if ka, kb := signerID(t, a), signerID(t, b); ka != kb {
		t.Fatalf("instances sign with different keys: %s and %s", ka, kb)
	}
	c.set(c.now().Add(10 * 24 * time.Hour))
	refresh(t, a)
	refresh(t, b)
	if got := kids(jwks(t, b)); len(got) != 2 || !slicesEqual(got, kids(jwks(t, a))) {
		t.Errorf("after a scheduled rotation on both: got %v and %v, want the same two keys", kids(jwks(t, a)), got)
	}

	// On demand, on a.
	id, activeAt, err := a.Rotate(t.Context())
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if want := c.now().Add(time.Hour).Truncate(time.Second); !activeAt.Equal(want) {
		t.Errorf("Rotate: signs from %v, want %v (one publish-ahead from now)", activeAt, want)
	}
	if _, ok := b.Key(id); ok {
		t.Fatal("b knows the new key before reloading")
	}
	refresh(t, b)
	if _, ok := b.Key(id); !ok {
		t.Fatal("b does not publish the new key after reloading")
	}
	c.set(activeAt)
	if got := signerID(t, b); got != id {
		t.Errorf("at the new key's ActiveAt b signs with %s, want %s (no reload needed)", got, id)
	}
}

func slicesEqual(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

// TestWrongKeyEncryptionKey: keys sealed under another key-encryption key,
// or moved to another id, do not load, and the ring keeps what it had.
func TestWrongKeyEncryptionKey(t *testing.T) {
	c := &clock{t: time.Date(2026, 5, 1, 10, 0, 30, 0, time.UTC)}
	store := openStore(t)
	refresh(t, newRing(t, store, c, jose.ES256, kek))

	other := newRing(t, store, c, jose.ES256, bytes.Repeat([]byte{0x11}, signing.KeyEncryptionKeySize))
	if err := other.Refresh(t.Context()); err == nil {
		t.Error("Refresh under another key-encryption key succeeded")
	}
	if _, err := other.Signer(); !errors.Is(err, signing.ErrNoKey) {
		t.Errorf("Signer after a failed load: got %v, want %v", err, signing.ErrNoKey)
	}

	keys, err := store.ListSigningKeys(t.Context())
	if err != nil || len(keys) != 1 {
		t.Fatalf("ListSigningKeys: %v, %v", keys, err)
	}
	moved := keys[0]
	moved.ID, moved.ActiveAt = "another-id", moved.ActiveAt.Add(time.Hour)
	if err := store.CreateSigningKey(t.Context(), moved); err != nil {
		t.Fatalf("CreateSigningKey: %v", err)
	}
	if err := newRing(t, store, c, jose.ES256, kek).Refresh(t.Context()); err == nil {
		t.Error("Refresh of a sealed key stored under another id succeeded")
	}

	if _, err := signing.New(signing.Options{Store: store, KeyEncryptionKey: kek[:16]}); err == nil {
		t.Error("New with a 16-byte key-encryption key succeeded")
	}
	if _, err := signing.New(signing.Options{Store: store, KeyEncryptionKey: kek, Algorithm: jose.HS256}); err == nil {
		t.Error("New with HS256 succeeded")
	}
}
