package signing

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// sealVersion is the first byte of every sealed key: the format, so that a
// later one (another key-encryption key, say) can be told apart.
const sealVersion = 1

// errUnseal is returned for a sealed key that does not open: the wrong
// key-encryption key, another key's id, or damaged bytes.
var errUnseal = errors.New("sealed key does not open under the key-encryption key")

// seal encrypts plaintext under kek with AES-256-GCM, the key id as
// associated data, so that a sealed key moved to another id does not open.
func seal(kek []byte, kid string, plaintext []byte) ([]byte, error) {
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	out := make([]byte, 0, 1+len(nonce)+len(plaintext)+aead.Overhead())
	out = append(append(out, sealVersion), nonce...)
	return aead.Seal(out, nonce, plaintext, []byte(kid)), nil
}

// unseal reverses seal.
func unseal(kek []byte, kid string, sealed []byte) ([]byte, error) {
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	if len(sealed) < 1+aead.NonceSize()+aead.Overhead() || sealed[0] != sealVersion {
		return nil, errUnseal
	}
	nonce, ciphertext := sealed[1:1+aead.NonceSize()], sealed[1+aead.NonceSize():]
	plain, err := aead.Open(nil, nonce, ciphertext, []byte(kid))
	if err != nil {
		return nil, errUnseal
	}
	return plain, nil
}

func newAEAD(kek []byte) (cipher.AEAD, error) {
	if len(kek) != KeyEncryptionKeySize {
		return nil, fmt.Errorf("key-encryption key: got %d bytes, want %d", len(kek), KeyEncryptionKeySize)
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("key-encryption key: %w", err)
	}
	return cipher.NewGCM(block)
}

// Seal encrypts plaintext under the key-encryption key kek (AES-256-GCM),
// bound to context: what opens it must name the same context, so that a
// sealed value moved to another record does not open. Other secrets the
// installation must read back (webhook signing secrets) are sealed with it.
func Seal(kek []byte, context string, plaintext []byte) ([]byte, error) {
	return seal(kek, context, plaintext)
}

// Unseal reverses Seal.
func Unseal(kek []byte, context string, sealed []byte) ([]byte, error) {
	return unseal(kek, context, sealed)
}
