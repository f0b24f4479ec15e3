// Package token owns the format of Tollgate's opaque access tokens:
//
//	tg_at_<root>.<account>.<client>[.<user>].<32 random bytes, base64url>.<HMAC, base64url>
//
// the rooted format (rooted.go, ADR 0013): the ids of the root account, the
// token's account, its client and, for a user's token, its user, in
// decimal, and an HMAC-SHA-512/256 of everything before it; and the format
// minted before it, still read:
//
//	tg_at_<32 random bytes, base64url>.<HMAC-SHA-512/256 of them, base64url>
//
// Only the HMAC part, the signature, is ever stored: a leaked token store
// gives away no usable token. The HMAC is fosite's, keyed by the global
// token secret, so rotated secrets keep validating old tokens.
package token

import (
	"context"
	stdhmac "crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/ory/fosite"
	"github.com/ory/fosite/token/hmac"
)

// AccessPrefix starts every access token, so a leaked token is easy to spot
// (secret scanners) and tell apart from other credentials.
const AccessPrefix = "tg_at_"

// partLength is the length of each base64url part: 32 bytes unpadded.
const partLength = 43

// Length is the length of every access token: prefix, key, dot, signature.
const Length = len(AccessPrefix) + partLength + 1 + partLength

// ErrMalformed is returned for a string that is not a token of this server.
var ErrMalformed = errors.New("malformed token")

// Strategy generates and validates access tokens.
type Strategy struct {
	hmac *hmac.HMACStrategy
	// signing is the HMAC key of the signature part (fosite's global
	// secret); reuse keys Derive's key part.
	signing, reuse []byte
	// verifying are the HMAC keys a rooted token's MAC is checked
	// against: signing, then the rotated secrets'.
	verifying [][]byte
}

// NewStrategy returns a Strategy signing with secret (at least 32 bytes) and
// also accepting tokens signed with any of rotated.
func NewStrategy(secret []byte, rotated [][]byte) (*Strategy, error) {
	if len(secret) < 32 {
		return nil, fmt.Errorf("token secret: want at least 32 bytes, got %d", len(secret))
	}
	for i, r := range rotated {
		if len(r) < 32 {
			return nil, fmt.Errorf("rotated token secret %d: want at least 32 bytes, got %d", i+1, len(r))
		}
	}
	// fosite keys its HMAC with the first 32 bytes of a secret only; hashing
	// the whole secret down to 32 bytes makes every byte count.
	derive := func(s []byte) []byte { k := sha256.Sum256(s); return k[:] }
	var old [][]byte
	for _, r := range rotated {
		old = append(old, derive(r))
	}
	cfg := &fosite.Config{GlobalSecret: derive(secret), RotatedGlobalSecrets: old, TokenEntropy: 32}
	reuse := sha256.Sum256(append([]byte("tollgate token reuse\x00"), secret...))
	verifying := append([][]byte{cfg.GlobalSecret}, old...)
	return &Strategy{hmac: &hmac.HMACStrategy{Config: cfg}, signing: cfg.GlobalSecret, reuse: reuse[:], verifying: verifying}, nil
}

// Derive returns the access token derived from seed, and its signature:
// the same seed gives the same token, and nobody without the token secret
// can tell the token from a random one or compute it from the seed. Its
// key part is HMAC-SHA-256 of seed under a key derived from the secret, in
// place of Generate's 32 random bytes; its signature part is made as
// Generate makes it (fosite's HMAC-SHA-512/256), so Signature validates
// it like any other. Reused tokens are derived from what they are reused
// for (see tokens.Service).
func (s *Strategy) Derive(seed []byte) (tok, signature string) {
	m := stdhmac.New(sha256.New, s.reuse)
	m.Write(seed)
	key := m.Sum(nil)
	sm := stdhmac.New(sha512.New512_256, s.signing)
	sm.Write(key)
	sig := base64.RawURLEncoding.EncodeToString(sm.Sum(nil))
	return AccessPrefix + base64.RawURLEncoding.EncodeToString(key) + "." + sig, sig
}

// Generate returns a new access token and its signature, the key it is
// stored under.
func (s *Strategy) Generate(ctx context.Context) (tok, signature string, err error) {
	raw, sig, err := s.hmac.Generate(ctx)
	if err != nil {
		return "", "", fmt.Errorf("generate token: %w", err)
	}
	return AccessPrefix + raw, sig, nil
}

// Signature validates tok's form and HMAC and returns its signature. Any
// string that is not a token minted with one of the secrets gives
// ErrMalformed, without a storage lookup.
func (s *Strategy) Signature(ctx context.Context, tok string) (string, error) {
	// Exactly one spelling of a token is accepted: base64's decoder would
	// also take other final characters and line breaks.
	if len(tok) != Length {
		return "", ErrMalformed
	}
	raw, ok := strings.CutPrefix(tok, AccessPrefix)
	if !ok || raw[partLength] != '.' || !canonical(raw[:partLength]) || !canonical(raw[partLength+1:]) {
		return "", ErrMalformed
	}
	if err := s.hmac.Validate(ctx, raw); err != nil {
		return "", ErrMalformed
	}
	sig := s.hmac.Signature(raw)
	if sig == "" {
		return "", ErrMalformed
	}
	return sig, nil
}

// canonical reports whether part is the one unpadded base64url encoding of
// the bytes it decodes to.
func canonical(part string) bool {
	b, err := base64.RawURLEncoding.Strict().DecodeString(part)
	return err == nil && base64.RawURLEncoding.EncodeToString(b) == part
}
