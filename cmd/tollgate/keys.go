package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tollgate/tollgate/config"
)

// Key files of the embedded default, inside the data directory.
const (
	tokenSecretFile      = "token_secret"
	pepperFile           = "pepper"
	keyEncryptionKeyFile = "key_encryption_key"
)

// resolveKeys loads the configured key material. Production (PostgreSQL or
// Redis) must configure it; config.Validate already refuses a production
// configuration without it. The embedded default instead generates each
// missing key once and keeps it, mode 0600, in the data directory, so a
// restart keeps tokens and secrets valid.
func resolveKeys(cfg config.Config) (config.Keys, error) {
	keys, err := cfg.LoadKeys()
	if err != nil {
		return keys, err
	}
	if keys.TokenSecret != nil && keys.Pepper != nil && keys.KeyEncryptionKey != nil {
		return keys, nil
	}
	if !cfg.Embedded() {
		return keys, errors.New("the token secret, the pepper and the key-encryption key must be configured " +
			"(TOLLGATE_TOKEN_SECRET[_FILE], TOLLGATE_PEPPER[_FILE], TOLLGATE_KEY_ENCRYPTION_KEY[_FILE])")
	}
	if keys.TokenSecret == nil {
		if keys.TokenSecret, err = keyFile(filepath.Join(cfg.DataDir, tokenSecretFile), newSecret); err != nil {
			return keys, err
		}
	}
	if keys.Pepper == nil {
		if keys.Pepper, err = keyFile(filepath.Join(cfg.DataDir, pepperFile), newSecret); err != nil {
			return keys, err
		}
	}
	if keys.KeyEncryptionKey == nil {
		path := filepath.Join(cfg.DataDir, keyEncryptionKeyFile)
		text, err := keyFile(path, newKeyEncryptionKey)
		if err != nil {
			return keys, err
		}
		if keys.KeyEncryptionKey, err = config.ParseKeyEncryptionKey(text); err != nil {
			return keys, fmt.Errorf("key file %s: %w", path, err)
		}
	}
	return keys, nil
}

// newSecret returns a token secret or pepper: 48 random bytes, base64url.
func newSecret() (string, error) {
	raw := make([]byte, 48)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generate key: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(raw), nil
}

// newKeyEncryptionKey returns a key-encryption key: 32 random bytes, hex.
func newKeyEncryptionKey() (string, error) {
	raw := make([]byte, config.KeyEncryptionKeyBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generate key: %w", err)
	}
	return hex.EncodeToString(raw), nil
}

// keyFile returns the key kept in path, creating it with newKey when it
// does not exist yet.
func keyFile(path string, newKey func() (string, error)) ([]byte, error) {
	b, err := os.ReadFile(path) // #nosec G304 -- a file of the configured data directory
	if err == nil {
		key := strings.TrimRight(string(b), "\r\n")
		if len(key) < config.MinSecretBytes {
			return nil, fmt.Errorf("key file %s: want at least %d bytes", path, config.MinSecretBytes)
		}
		return []byte(key), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	// O_EXCL: if another process created the file meanwhile, use its key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) // #nosec G304 -- a file of the configured data directory
	if errors.Is(err, fs.ErrExist) {
		return keyFile(path, newKey)
	}
	if err != nil {
		return nil, fmt.Errorf("create key file: %w", err)
	}
	if _, err := f.WriteString(key + "\n"); err != nil {
		_ = f.Close() // the error being returned is the one to report
		return nil, fmt.Errorf("write key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write key file: %w", err)
	}
	return []byte(key), nil
}
