package assertion

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// MaxExternalBytes bounds a token of an external issuer presented as a
// client assertion (workload identity federation): GitHub Actions and
// Kubernetes service account tokens are under 2 KiB, with room for many
// claims.
const MaxExternalBytes = 16 << 10

// External is a parsed, not yet verified, token of an external OpenID
// Connect issuer (a GitHub Actions or Kubernetes service account token)
// presented as a client assertion for a client that trusts its issuer.
type External struct {
	token  *jwt.JSONWebToken
	alg    jose.SignatureAlgorithm
	kid    string
	digest string
	// Issuer is the unverified iss, which names the keys to verify with.
	Issuer string
}

// ParseExternal reads a compact JWS of an allowed algorithm (never none,
// never HMAC) with one signature and a non-empty string iss, without
// verifying it. Anything else is ErrInvalid.
func ParseExternal(raw string) (*External, error) {
	if len(raw) > MaxExternalBytes {
		return nil, invalid("longer than " + strconv.Itoa(MaxExternalBytes) + " bytes")
	}
	tok, err := jwt.ParseSigned(raw, Algorithms)
	if err != nil {
		return nil, invalid("not a compact JWS of an allowed algorithm")
	}
	if len(tok.Headers) != 1 {
		return nil, invalid("not one signature")
	}
	var c jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		return nil, invalid("claims are not a JSON object of registered claims")
	}
	if c.Issuer == "" {
		return nil, invalid("iss is missing")
	}
	sum := sha256.Sum256([]byte(raw))
	h := tok.Headers[0]
	return &External{token: tok, alg: jose.SignatureAlgorithm(h.Algorithm), kid: h.KeyID,
		digest: hex.EncodeToString(sum[:]), Issuer: c.Issuer}, nil
}

// KID returns the key id the token's header names, "" for none.
func (e *External) KID() string { return e.kid }

// Digest returns the SHA-256 of the token, hex: its identity when it has
// no jti.
func (e *External) Digest() string { return e.digest }

// Verify checks the token's signature with a key of keys of the header's
// kid (any key when there is none) and algorithm, and returns its
// registered claims and every top-level member. A token no key verifies is
// ErrInvalid.
func (e *External) Verify(keys *KeySet) (jwt.Claims, map[string]json.RawMessage, error) {
	for _, k := range keys.candidates(e.kid, e.alg) {
		var c jwt.Claims
		var all map[string]json.RawMessage
		if err := e.token.Claims(k.pub, &c, &all); err == nil {
			return c, all, nil
		}
	}
	return jwt.Claims{}, nil, invalid("signature does not verify")
}
