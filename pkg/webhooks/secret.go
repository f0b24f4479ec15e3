// Package webhooks owns the lifecycle webhooks in the Standard Webhooks
// format: the event types and their payloads, the signing secrets (made,
// sealed under the key-encryption key, opened to sign), the outbox (a store
// decorator that writes a delivery row for every subscription in the
// transaction of the audited change it tells of), the worker that claims
// due rows and POSTs them through pkg/egress with retries, the quota
// threshold events of the check endpoint, and the expiry warnings.
package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tollgate/tollgate/pkg/signing"
)

// SecretPrefix starts every signing secret (Standard Webhooks).
const SecretPrefix = "whsec_"

// secretBytes is the size of a new secret's key: 32 random bytes.
const secretBytes = 32

// NewSecret returns a new signing secret: whsec_ and the base64 of 32
// random bytes.
func NewSecret() (string, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("webhook secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// secretKey returns the HMAC key of secret: the bytes its base64 encodes.
func secretKey(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil || len(key) == 0 {
		return nil, errors.New("webhook secret: not whsec_ and base64")
	}
	return key, nil
}

// Sign returns the webhook-signature header value of a message: v1, and
// the base64 HMAC-SHA256 of "id.timestamp.body" keyed with the secret's
// bytes.
func Sign(secret, id string, timestamp int64, body []byte) (string, error) {
	key, err := secretKey(secret)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(timestamp, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// Secrets seals and opens signing secrets under the key-encryption key,
// each bound to its webhook's id.
type Secrets struct {
	kek []byte
}

// NewSecrets returns Secrets over the key-encryption key kek (32 bytes).
func NewSecrets(kek []byte) (*Secrets, error) {
	if len(kek) != signing.KeyEncryptionKeySize {
		return nil, fmt.Errorf("webhook secrets: key-encryption key: got %d bytes, want %d", len(kek), signing.KeyEncryptionKeySize)
	}
	return &Secrets{kek: kek}, nil
}

func sealContext(webhookID int64) string { return "webhook:" + strconv.FormatInt(webhookID, 10) }

// Seal encrypts the secret of webhook webhookID.
func (s *Secrets) Seal(webhookID int64, secret string) ([]byte, error) {
	return signing.Seal(s.kek, sealContext(webhookID), []byte(secret))
}

// Open decrypts the sealed secret of webhook webhookID.
func (s *Secrets) Open(webhookID int64, sealed []byte) (string, error) {
	b, err := signing.Unseal(s.kek, sealContext(webhookID), sealed)
	if err != nil {
		return "", fmt.Errorf("webhook %d secret: %w", webhookID, err)
	}
	return string(b), nil
}
