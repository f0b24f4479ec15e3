package secret

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// hashScheme is the version tag of the keyed hash format:
//
//	tgh1$<pepper id>$<base64url(HMAC-SHA-256(pepper, secret))>
//
// The pepper id lets a deployment rotate its pepper: new hashes use the
// current pepper, old hashes keep verifying with a retired one.
const hashScheme = "tgh1"

// MinPepperSize is the shortest pepper accepted, in bytes.
const MinPepperSize = 32

// ErrMismatch is returned by Compare when the secret does not match the hash.
var ErrMismatch = errors.New("secret does not match")

var pepperIDPattern = regexp.MustCompile(`^[a-z0-9]{1,8}$`)

// Hasher hashes machine-generated secrets with HMAC-SHA-256 keyed by a
// server-side pepper. Secrets of 256 random bits need no slow hash: the
// pepper keeps a stolen database from being checked offline, and the fast
// hash keeps client authentication cheap. It implements fosite.Hasher.
type Hasher struct {
	currentID string
	peppers   map[string][]byte
}

// NewHasher returns a Hasher that hashes with the pepper named currentID and
// verifies with any pepper in peppers.
func NewHasher(currentID string, peppers map[string][]byte) (*Hasher, error) {
	if _, ok := peppers[currentID]; !ok {
		return nil, fmt.Errorf("no pepper with id %q", currentID)
	}
	h := &Hasher{currentID: currentID, peppers: make(map[string][]byte, len(peppers))}
	for id, p := range peppers {
		if !pepperIDPattern.MatchString(id) {
			return nil, fmt.Errorf("pepper id %q: want 1 to 8 characters a-z 0-9", id)
		}
		if len(p) < MinPepperSize {
			return nil, fmt.Errorf("pepper %q: want at least %d bytes, got %d", id, MinPepperSize, len(p))
		}
		h.peppers[id] = append([]byte(nil), p...)
	}
	return h, nil
}

// Hash returns the keyed hash of data with the current pepper.
func (h *Hasher) Hash(_ context.Context, data []byte) ([]byte, error) {
	sum := h.mac(h.peppers[h.currentID], data)
	out := make([]byte, 0, len(hashScheme)+len(h.currentID)+2+base64.RawURLEncoding.EncodedLen(len(sum)))
	out = append(out, hashScheme...)
	out = append(out, '$')
	out = append(out, h.currentID...)
	out = append(out, '$')
	return base64.RawURLEncoding.AppendEncode(out, sum), nil
}

// Compare reports, in constant time, whether data matches hash. It answers
// ErrMismatch for a wrong secret and for a hash it cannot read, so callers
// learn nothing from the difference.
func (h *Hasher) Compare(_ context.Context, hash, data []byte) error {
	scheme, rest, ok := strings.Cut(string(hash), "$")
	if !ok || scheme != hashScheme {
		return ErrMismatch
	}
	id, encoded, ok := strings.Cut(rest, "$")
	if !ok {
		return ErrMismatch
	}
	pepper, ok := h.peppers[id]
	if !ok {
		return ErrMismatch
	}
	want, err := base64.RawURLEncoding.DecodeString(encoded)
	if err != nil {
		return ErrMismatch
	}
	if !hmac.Equal(want, h.mac(pepper, data)) {
		return ErrMismatch
	}
	return nil
}

// NeedsRehash reports whether hash was made with a pepper other than the
// current one (or is not a keyed hash at all).
func (h *Hasher) NeedsRehash(hash []byte) bool {
	return !strings.HasPrefix(string(hash), hashScheme+"$"+h.currentID+"$")
}

func (h *Hasher) mac(pepper, data []byte) []byte {
	m := hmac.New(sha256.New, pepper)
	m.Write(data)
	return m.Sum(nil)
}
