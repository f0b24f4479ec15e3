package config

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
)

// MinSecretBytes is the shortest token secret or pepper accepted: 256 bits.
const MinSecretBytes = 32

// Secret is a secret value taken from the environment. It formats, logs and
// marshals as "[redacted]" (or "" when unset), so printing a Config never
// reveals it. Convert with []byte(s) or string(s) to use the value.
type Secret string

const redacted = "[redacted]"

// String returns "[redacted]" for a set secret and "" for an unset one.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// Format makes every fmt verb, including %#v and %x, print String.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.String()) }

// LogValue keeps the value out of slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText keeps the value out of JSON and other text encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Keys is the key material a running server needs, read by Config.LoadKeys.
// TokenSecret and Pepper are nil when none is configured; cmd then generates
// them, which only the embedded default allows (see Config.Validate).
type Keys struct {
	// TokenSecret signs new tokens.
	TokenSecret []byte
	// RotatedTokenSecrets are previous token secrets, accepted for
	// verification only.
	RotatedTokenSecrets [][]byte
	// PepperID names Pepper inside every new secret hash.
	PepperID string
	// Pepper keys new secret hashes.
	Pepper []byte
	// RetiredPeppers maps the id of a previous pepper to its value, so hashes
	// written under it keep verifying.
	RetiredPeppers map[string][]byte
	// KeyEncryptionKey seals the signing keys in the database: 32 bytes,
	// decoded.
	KeyEncryptionKey []byte
}

// KeyEncryptionKeyBytes is the size of the key-encryption key (AES-256).
const KeyEncryptionKeyBytes = 32

// ParseKeyEncryptionKey decodes a key-encryption key given as 64 hex digits
// or as base64 (standard or URL alphabet, padded or not) of 32 bytes. The
// error never quotes the value.
func ParseKeyEncryptionKey(text []byte) ([]byte, error) {
	s := string(bytes.TrimSpace(text))
	if len(s) == 2*KeyEncryptionKeyBytes {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == KeyEncryptionKeyBytes {
			return b, nil
		}
	}
	return nil, fmt.Errorf("want %d bytes as %d hex digits or in base64", KeyEncryptionKeyBytes, 2*KeyEncryptionKeyBytes)
}

// String describes which keys are present without revealing any.
func (k Keys) String() string {
	ids := make([]string, 0, len(k.RetiredPeppers))
	for id := range k.RetiredPeppers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return fmt.Sprintf("config.Keys{TokenSecret:%s RotatedTokenSecrets:%d PepperID:%q Pepper:%s RetiredPeppers:[%s] KeyEncryptionKey:%s}",
		presence(k.TokenSecret), len(k.RotatedTokenSecrets), k.PepperID, presence(k.Pepper), strings.Join(ids, " "),
		presence(k.KeyEncryptionKey))
}

// GoString keeps %#v from dumping the key bytes.
func (k Keys) GoString() string { return k.String() }

// LogValue keeps the key bytes out of slog output.
func (k Keys) LogValue() slog.Value { return slog.StringValue(k.String()) }

func presence(b []byte) string {
	if b == nil {
		return "unset"
	}
	return redacted
}

// LoadKeys reads the key material named by c.Keys: each secret from its
// environment value or from its file (a trailing newline is trimmed). Every
// secret must be at least MinSecretBytes long. All problems are reported
// together; no error message contains a secret.
func (c Config) LoadKeys() (Keys, error) {
	ks := c.Keys
	k := Keys{PepperID: ks.PepperID}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	var err error
	k.TokenSecret, err = loadSecret("token secret", "TOLLGATE_TOKEN_SECRET", ks.TokenSecret, ks.TokenSecretFile)
	add(err)
	for _, path := range ks.RotatedTokenSecretFiles {
		b, err := readSecretFile("rotated token secret", path)
		add(err)
		if b != nil {
			k.RotatedTokenSecrets = append(k.RotatedTokenSecrets, b)
		}
	}
	if len(ks.RotatedTokenSecretFiles) > 0 && !hasSource(ks.TokenSecret, ks.TokenSecretFile) {
		add(errors.New("rotated token secrets are configured without a current token secret"))
	}

	k.Pepper, err = loadSecret("pepper", "TOLLGATE_PEPPER", ks.Pepper, ks.PepperFile)
	add(err)
	ids := make([]string, 0, len(ks.RetiredPepperFiles))
	for id := range ks.RetiredPepperFiles {
		ids = append(ids, id)
	}
	slices.Sort(ids) // deterministic error order
	for _, id := range ids {
		if id == ks.PepperID {
			add(fmt.Errorf("retired pepper id %q is the current pepper id", id))
			continue
		}
		b, err := readSecretFile(fmt.Sprintf("retired pepper %q", id), ks.RetiredPepperFiles[id])
		add(err)
		if b != nil {
			if k.RetiredPeppers == nil {
				k.RetiredPeppers = make(map[string][]byte)
			}
			k.RetiredPeppers[id] = b
		}
	}
	if len(ks.RetiredPepperFiles) > 0 && !hasSource(ks.Pepper, ks.PepperFile) {
		add(errors.New("retired peppers are configured without a current pepper"))
	}

	k.KeyEncryptionKey, err = loadKeyEncryptionKey(ks.KeyEncryptionKey, ks.KeyEncryptionKeyFile)
	add(err)

	if len(errs) > 0 {
		return Keys{}, errors.Join(errs...)
	}
	return k, nil
}

// loadKeyEncryptionKey returns the decoded key-encryption key from value or
// from the file at path, nil when neither is set.
func loadKeyEncryptionKey(value Secret, path string) ([]byte, error) {
	var text []byte
	switch {
	case value != "" && path != "":
		return nil, errors.New("key-encryption key is set both by TOLLGATE_KEY_ENCRYPTION_KEY and by a file; set only one")
	case value != "":
		text = []byte(value)
	case path != "":
		b, err := os.ReadFile(path) // #nosec G304 -- the operator's configuration names the key files
		if err != nil {
			return nil, fmt.Errorf("read key-encryption key: %w", err)
		}
		text = b
	default:
		return nil, nil
	}
	b, err := ParseKeyEncryptionKey(text)
	if err != nil {
		if path != "" {
			return nil, fmt.Errorf("key-encryption key in file %s: %w", path, err)
		}
		return nil, fmt.Errorf("key-encryption key from TOLLGATE_KEY_ENCRYPTION_KEY: %w", err)
	}
	return b, nil
}

func hasSource(value Secret, path string) bool { return value != "" || path != "" }

// loadSecret returns the secret from value or from the file at path, nil when
// neither is set.
func loadSecret(what, envName string, value Secret, path string) ([]byte, error) {
	switch {
	case value != "" && path != "":
		return nil, fmt.Errorf("%s is set both by %s and by a file; set only one", what, envName)
	case value != "":
		if len(value) < MinSecretBytes {
			return nil, fmt.Errorf("%s from %s is too short: want at least %d bytes", what, envName, MinSecretBytes)
		}
		return []byte(value), nil
	case path != "":
		return readSecretFile(what, path)
	}
	return nil, nil
}

func readSecretFile(what, path string) ([]byte, error) {
	if path == "" {
		return nil, fmt.Errorf("%s file path is empty", what)
	}
	b, err := os.ReadFile(path) // #nosec G304 -- the operator's configuration names the key files
	if err != nil {
		// The *PathError names the path and the cause, never the contents.
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	b = bytes.TrimRight(b, "\r\n")
	if len(b) < MinSecretBytes {
		return nil, fmt.Errorf("%s in file %s is too short: want at least %d bytes", what, path, MinSecretBytes)
	}
	return b, nil
}
