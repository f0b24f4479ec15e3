// Package secret owns Tollgate's credential material: generating client
// secrets and user passwords, the keyed fast hash that stores
// machine-generated secrets (HMAC-SHA-256 with a server-side pepper), and the
// slow password hash (argon2id) for secrets people choose.
package secret

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
)

// Size is the number of random bytes in a generated secret: 256 bits.
const Size = 32

// Generate returns a new secret of Size random bytes from crypto/rand,
// encoded as unpadded base64url. The alphabet (A-Z a-z 0-9 - _) is within
// RFC 3986's unreserved set, so the secret survives the URL-decoding that
// RFC 6749 §2.3.1 applies to Basic credentials.
func Generate() (string, error) {
	return generate(Size)
}

func generate(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
