package main

import (
	"crypto/rand"
	"encoding/base64"
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
	tokenSecretFile = "token_secret"
	pepperFile      = "pepper"
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
	if keys.TokenSecret != nil && keys.Pepper != nil {
		return keys, nil
	}
	if !cfg.Embedded() {
		return keys, errors.New("the token secret and the pepper must be configured (TOLLGATE_TOKEN_SECRET[_FILE], TOLLGATE_PEPPER[_FILE])")
	}
	if keys.TokenSecret == nil {
		if keys.TokenSecret, err = keyFile(filepath.Join(cfg.DataDir, tokenSecretFile)); err != nil {
			return keys, err
		}
	}
	if keys.Pepper == nil {
		if keys.Pepper, err = keyFile(filepath.Join(cfg.DataDir, pepperFile)); err != nil {
			return keys, err
		}
	}
	return keys, nil
}

// keyFile returns the key kept in path, creating it with 48 random bytes
// (base64url) when it does not exist yet.
func keyFile(path string) ([]byte, error) {
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
	raw := make([]byte, 48)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	key := base64.RawURLEncoding.EncodeToString(raw)
	// O_EXCL: if another process created the file meanwhile, use its key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) // #nosec G304 -- a file of the configured data directory
	if errors.Is(err, fs.ErrExist) {
		return keyFile(path)
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
