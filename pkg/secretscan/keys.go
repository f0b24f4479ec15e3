package secretscan

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
	"time"
)

// DefaultKeysURL is where GitHub publishes the keys that sign its
// secret-scanning reports.
const DefaultKeysURL = "https://api.github.com/meta/public_keys/secret_scanning"

// Bounds of the key document and its cache.
const (
	// maxKeys is how many keys of the document are kept; GitHub publishes
	// two or three.
	maxKeys = 32
	// maxKeyIDLength bounds a key identifier (GitHub's are 64 hex digits).
	maxKeyIDLength = 128
	// DefaultRefetchInterval is the least time between two fetches of the
	// key document: an unknown key identifier fetches it at most this
	// often, however many reports name one.
	DefaultRefetchInterval = time.Minute
	// DefaultMaxAge is how long a fetched document is used before it is
	// fetched again (a key GitHub withdrew stops verifying within it).
	DefaultMaxAge = 24 * time.Hour
)

// ErrUnknownKey is returned for a key identifier the key document does not
// hold, even after it was fetched again.
var ErrUnknownKey = errors.New("secretscan: unknown key identifier")

// ErrKeysUnavailable is returned when the key document cannot be fetched
// or read and no cached key answers: the report should be retried.
var ErrKeysUnavailable = errors.New("secretscan: signing keys unavailable")

// Fetcher fetches a document (*egress.Client: https only, no private
// addresses, a deadline and a body cap).
type Fetcher interface {
	Get(ctx context.Context, rawURL string) ([]byte, error)
}

// KeysOptions configure a Keys.
type KeysOptions struct {
	URL     string
	Fetcher Fetcher
	// RefetchInterval: DefaultRefetchInterval when 0.
	RefetchInterval time.Duration
	// MaxAge: DefaultMaxAge when 0.
	MaxAge time.Duration
	Now    func() time.Time
}

// Keys is the cache of the partner's public keys, by identifier: fetched on
// first use, again when it is older than MaxAge, and again for an unknown
// identifier at most once per RefetchInterval.
type Keys struct {
	opts KeysOptions

	mu          sync.Mutex
	keys        map[string]*ecdsa.PublicKey
	fetchedAt   time.Time // of the document in keys
	attemptedAt time.Time // of the last fetch, good or not
	failed      bool      // the last fetch failed
}

// NewKeys returns an empty cache of the keys published at opts.URL.
func NewKeys(opts KeysOptions) *Keys {
	if opts.RefetchInterval <= 0 {
		opts.RefetchInterval = DefaultRefetchInterval
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Keys{opts: opts}
}

// Key returns the key of identifier id. It answers ErrUnknownKey for an
// identifier the current document does not hold, and ErrKeysUnavailable
// when the document could not be fetched and no cached key answers.
func (k *Keys) Key(ctx context.Context, id string) (*ecdsa.PublicKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.opts.Now()
	key, known := k.keys[id]
	stale := k.keys == nil || now.Sub(k.fetchedAt) >= k.opts.MaxAge
	if known && !stale {
		return key, nil
	}
	// Fetch at most once per interval, whatever the reports name.
	if !k.attemptedAt.IsZero() && now.Sub(k.attemptedAt) < k.opts.RefetchInterval {
		switch {
		case known:
			return key, nil
		case k.failed:
			// Perhaps a new key the failed fetch would have brought:
			// ask for a retry rather than refuse.
			return nil, ErrKeysUnavailable
		}
		return nil, ErrUnknownKey
	}
	k.attemptedAt = now
	keys, err := k.fetch(ctx)
	k.failed = err != nil
	if err != nil {
		if known {
			// A stale key still verifies while GitHub is unreachable.
			return key, nil
		}
		return nil, fmt.Errorf("%w: %w", ErrKeysUnavailable, err)
	}
	k.keys, k.fetchedAt = keys, now
	if key, ok := keys[id]; ok {
		return key, nil
	}
	return nil, ErrUnknownKey
}

// keyDocument is GitHub's document of public keys.
type keyDocument struct {
	PublicKeys []struct {
		KeyIdentifier string `json:"key_identifier"`
		Key           string `json:"key"`
		IsCurrent     bool   `json:"is_current"`
	} `json:"public_keys"`
}

// fetch reads the key document: every ECDSA P-256 key in it, up to
// maxKeys; one that does not parse is skipped.
func (k *Keys) fetch(ctx context.Context) (map[string]*ecdsa.PublicKey, error) {
	body, err := k.opts.Fetcher.Get(ctx, k.opts.URL)
	if err != nil {
		return nil, err
	}
	var doc keyDocument
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("read the key document: %w", err)
	}
	keys := make(map[string]*ecdsa.PublicKey)
	for _, e := range doc.PublicKeys {
		if len(keys) == maxKeys {
			break
		}
		if e.KeyIdentifier == "" || len(e.KeyIdentifier) > maxKeyIDLength {
			continue
		}
		if key, err := parseKey(e.Key); err == nil {
			keys[e.KeyIdentifier] = key
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("the key document holds no ECDSA P-256 key")
	}
	return keys, nil
}

// parseKey reads a PEM "PUBLIC KEY" holding an ECDSA P-256 key.
func parseKey(text string) (*ecdsa.PublicKey, error) {
	block, _ := pem.Decode([]byte(text))
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("not a PEM public key")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	key, ok := pub.(*ecdsa.PublicKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, errors.New("not an ECDSA P-256 key")
	}
	return key, nil
}
