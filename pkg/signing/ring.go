// Package signing owns the keys that sign JWT access tokens: making them,
// sealing them under the key-encryption key for the database every instance
// shares, the key ring each instance reloads so that it follows a rotation
// without a restart, scheduled and on-demand rotation, and the public JWK
// Set that verifiers fetch.
//
// A key is published from its creation and signs from its ActiveAt, one
// PublishAhead later, until the next key's ActiveAt; it stays published
// Retain longer (the longest token lifetime), so every token it signed
// verifies until it expires, and is deleted then.
package signing

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tollgate/tollgate/storage"
)

// KeyEncryptionKeySize is the size of the key-encryption key: AES-256.
const KeyEncryptionKeySize = 32

// Algorithms are the JWS algorithms a signing key may use.
var Algorithms = []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA}

// rsaBits is the size of new RSA keys.
const rsaBits = 2048

// ErrNoKey is returned by Signer before any key is loaded.
var ErrNoKey = errors.New("no signing key loaded")

// Options configure a Ring.
type Options struct {
	// Store holds the sealed keys every instance shares.
	Store storage.SigningKeys
	// KeyEncryptionKey seals and opens the keys: KeyEncryptionKeySize bytes.
	KeyEncryptionKey []byte
	// Algorithm of new keys; empty: ES256.
	Algorithm jose.SignatureAlgorithm
	// RotationPeriod is how long a key signs before the next one takes
	// over; 0 rotates only on demand (Rotate).
	RotationPeriod time.Duration
	// PublishAhead is how long a new key is published before it signs.
	PublishAhead time.Duration
	// Retain is how long a key stays published after it stopped signing:
	// the longest lifetime of a token.
	Retain time.Duration
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Logger receives rotations and failed reloads; nil discards.
	Logger *slog.Logger
}

// Key is an opened signing key.
type Key struct {
	// ID is the key id, the JWS "kid".
	ID string
	// Algorithm is the JWS algorithm it signs with.
	Algorithm jose.SignatureAlgorithm
	// Private signs.
	Private crypto.Signer
	// ActiveAt is when it starts signing.
	ActiveAt time.Time
}

// Public returns the key's public JWK: no private part.
func (k *Key) Public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.Private.Public(), KeyID: k.ID, Algorithm: string(k.Algorithm), Use: "sig"}
}

// snapshot is what one reload found; readers never see it change.
type snapshot struct {
	published []*Key // oldest ActiveAt first
	byID      map[string]*Key
	jwks      []byte
}

// Ring holds the published keys of the installation and the one that
// signs now. It is safe for concurrent use; Refresh (or Run) reloads it.
type Ring struct {
	opts Options
	now  func() time.Time
	log  *slog.Logger

	mu     sync.Mutex      // serialises reloads; guards opened
	opened map[string]*Key // keys unsealed by earlier reloads, by id
	cur    atomic.Pointer[snapshot]
}

// New returns a Ring with no key loaded: call Refresh before use.
func New(opts Options) (*Ring, error) {
	if len(opts.KeyEncryptionKey) != KeyEncryptionKeySize {
		return nil, fmt.Errorf("key-encryption key: got %d bytes, want %d", len(opts.KeyEncryptionKey), KeyEncryptionKeySize)
	}
	if opts.Algorithm == "" {
		opts.Algorithm = jose.ES256
	}
	if !validAlgorithm(opts.Algorithm) {
		return nil, fmt.Errorf("signing algorithm %q: want ES256, RS256 or EdDSA", opts.Algorithm)
	}
	if opts.RotationPeriod < 0 || opts.PublishAhead < 0 || opts.Retain < 0 {
		return nil, errors.New("signing key periods must not be negative")
	}
	r := &Ring{opts: opts, now: opts.Now, log: opts.Logger, opened: make(map[string]*Key)}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.cur.Store(&snapshot{byID: map[string]*Key{}, jwks: []byte(`{"keys":[]}`)})
	return r, nil
}

func validAlgorithm(alg jose.SignatureAlgorithm) bool {
	for _, a := range Algorithms {
		if a == alg {
			return true
		}
	}
	return false
}

// Signer returns the key that signs now: the published key with the latest
// ActiveAt not after now.
func (r *Ring) Signer() (*Key, error) {
	s, now := r.cur.Load(), r.now()
	for i := len(s.published) - 1; i >= 0; i-- {
		if !s.published[i].ActiveAt.After(now) {
			return s.published[i], nil
		}
	}
	return nil, ErrNoKey
}

// Key returns the published key kid, for verification.
func (r *Ring) Key(kid string) (*Key, bool) {
	k, ok := r.cur.Load().byID[kid]
	return k, ok
}

// JWKS returns the JSON of the public JWK Set: every published key.
func (r *Ring) JWKS() []byte { return r.cur.Load().jwks }

// Run reloads the ring every interval until ctx is done. A failed reload is
// logged; the ring keeps the keys it had.
func (r *Ring) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.Refresh(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("reload signing keys", "error", err)
			}
		}
	}
}

// Refresh makes the first key when there is none, makes the next one when
// the schedule says it is due, deletes the keys whose last token has
// expired, and loads the rest.
func (r *Ring) Refresh(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys, err := r.opts.Store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("list signing keys: %w", err)
	}
	now := r.now()
	if at, due := r.nextActiveAt(keys, now); due {
		// Every instance computes the same ActiveAt, which is unique: when
		// several rotate at once, one key is made.
		if _, err := r.create(ctx, at); err != nil && !errors.Is(err, storage.ErrAlreadyExists) {
			return err
		}
		if keys, err = r.opts.Store.ListSigningKeys(ctx); err != nil {
			return fmt.Errorf("list signing keys: %w", err)
		}
	}
	published := make([]*Key, 0, len(keys))
	for i, sk := range keys {
		if i+1 < len(keys) && !now.Before(keys[i+1].ActiveAt.Add(r.opts.Retain)) {
			// Every token this key signed has expired.
			if err := r.opts.Store.DeleteSigningKey(ctx, sk.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("delete signing key %s: %w", sk.ID, err)
			}
			r.log.Info("deleted retired signing key", "kid", sk.ID)
			continue
		}
		k, err := r.open(sk)
		if err != nil {
			return err
		}
		published = append(published, k)
	}
	return r.publish(published)
}

// nextActiveAt says whether a key is to be made now, and when it signs: at
// once when there is none (on a minute, so that instances starting together
// make one), else one rotation period after the newest key, once that is
// less than PublishAhead away.
func (r *Ring) nextActiveAt(keys []storage.SigningKey, now time.Time) (time.Time, bool) {
	if len(keys) == 0 {
		return now.UTC().Truncate(time.Minute), true
	}
	period := r.opts.RotationPeriod
	if period == 0 {
		return time.Time{}, false
	}
	next := keys[len(keys)-1].ActiveAt.Add(period)
	if now.Before(next.Add(-r.opts.PublishAhead)) {
		return time.Time{}, false
	}
	// After a long stop, the next slot of the schedule still published
	// PublishAhead before it signs.
	for next.Before(now.Add(r.opts.PublishAhead)) {
		next = next.Add(period)
	}
	return next, true
}

// Rotate makes a new key on demand, signing PublishAhead from now, and
// reloads the ring. It returns the new key's id and when it signs.
func (r *Ring) Rotate(ctx context.Context) (string, time.Time, error) {
	at := r.now().UTC().Add(r.opts.PublishAhead).Truncate(time.Second)
	sk, err := func() (storage.SigningKey, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.create(ctx, at)
	}()
	if err != nil {
		return "", time.Time{}, err
	}
	if err := r.Refresh(ctx); err != nil {
		return "", time.Time{}, err
	}
	return sk.ID, sk.ActiveAt, nil
}

// create makes, seals and stores a new key signing from activeAt.
func (r *Ring) create(ctx context.Context, activeAt time.Time) (storage.SigningKey, error) {
	priv, err := generate(r.opts.Algorithm)
	if err != nil {
		return storage.SigningKey{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("encode signing key: %w", err)
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return storage.SigningKey{}, fmt.Errorf("key id: %w", err)
	}
	kid := base64.RawURLEncoding.EncodeToString(id[:])
	sealed, err := seal(r.opts.KeyEncryptionKey, kid, der)
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("seal signing key: %w", err)
	}
	sk := storage.SigningKey{ID: kid, Algorithm: string(r.opts.Algorithm), Sealed: sealed, CreatedAt: r.now().UTC(), ActiveAt: activeAt}
	if err := r.opts.Store.CreateSigningKey(ctx, sk); err != nil {
		return storage.SigningKey{}, fmt.Errorf("store signing key: %w", err)
	}
	r.log.Info("created signing key", "kid", kid, "alg", sk.Algorithm, "active_at", activeAt)
	return sk, nil
}

// generate returns a new private key for alg.
func generate(alg jose.SignatureAlgorithm) (crypto.Signer, error) {
	var (
		k   crypto.Signer
		err error
	)
	switch alg {
	case jose.ES256:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.RS256:
		k, err = rsa.GenerateKey(rand.Reader, rsaBits)
	case jose.EdDSA:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("signing algorithm %q is not supported", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", alg, err)
	}
	return k, nil
}

// open returns the unsealed key of sk, from the keys opened before when it
// is there.
func (r *Ring) open(sk storage.SigningKey) (*Key, error) {
	if k, ok := r.opened[sk.ID]; ok {
		return k, nil
	}
	der, err := unseal(r.opts.KeyEncryptionKey, sk.ID, sk.Sealed)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", sk.ID, err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: parse: %w", sk.ID, err)
	}
	priv, ok := parsed.(crypto.Signer)
	alg := jose.SignatureAlgorithm(sk.Algorithm)
	if !ok || !matches(alg, priv) {
		return nil, fmt.Errorf("signing key %s: not a %s key", sk.ID, sk.Algorithm)
	}
	k := &Key{ID: sk.ID, Algorithm: alg, Private: priv, ActiveAt: sk.ActiveAt}
	r.opened[sk.ID] = k
	return k, nil
}

// matches reports whether priv is a key of alg.
func matches(alg jose.SignatureAlgorithm, priv crypto.Signer) bool {
	switch p := priv.(type) {
	case *ecdsa.PrivateKey:
		return alg == jose.ES256 && p.Curve == elliptic.P256()
	case *rsa.PrivateKey:
		return alg == jose.RS256 && p.N.BitLen() >= rsaBits
	case ed25519.PrivateKey:
		return alg == jose.EdDSA
	}
	return false
}

// publish makes keys the ring's published keys and forgets opened keys no
// longer among them.
func (r *Ring) publish(keys []*Key) error {
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, len(keys))}
	byID := make(map[string]*Key, len(keys))
	for i, k := range keys {
		set.Keys[i] = k.Public()
		byID[k.ID] = k
	}
	b, err := json.Marshal(set)
	if err != nil {
		return fmt.Errorf("encode jwks: %w", err)
	}
	for id := range r.opened {
		if _, ok := byID[id]; !ok {
			delete(r.opened, id)
		}
	}
	r.cur.Store(&snapshot{published: keys, byID: byID, jwks: b})
	return nil
}
