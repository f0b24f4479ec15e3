// Package apikey owns the format of Tollgate's API keys. An API key is a
// client credential in one string: the client id and the client secret,
// behind a recognisable prefix and followed by a checksum:
//
//	tgk_<client id>_<secret, 43 base64url characters><checksum, 6 base62 characters>
//
// The prefix lets secret scanners spot a leaked key; the checksum (CRC-32 of
// everything before it) rejects a mistyped key before any lookup. The secret
// is the client's secret: a key works wherever the client's credentials do.
package apikey

import (
	"errors"
	"hash/crc32"
	"strconv"
	"strings"
)

// Prefix starts every API key.
const Prefix = "tgk_"

const (
	secretLength   = 43
	checksumLength = 6
	maxIDDigits    = 19
	// MaxLength is the length of the longest possible key.
	MaxLength = len(Prefix) + maxIDDigits + 1 + secretLength + checksumLength
)

// ErrMalformed is returned for a string that is not a well-formed key, or
// whose checksum does not match.
var ErrMalformed = errors.New("malformed API key")

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Format returns the key of client id with secret, which must be a secret
// made by secret.Generate (43 base64url characters).
func Format(clientID int64, secret string) (string, error) {
	if clientID <= 0 || len(secret) != secretLength || !base64URL(secret) {
		return "", errors.New("apikey: want a positive client id and a 43-character generated secret")
	}
	body := Prefix + strconv.FormatInt(clientID, 10) + "_" + secret
	return body + checksum(body), nil
}

// Parse splits key into client id and secret, checking its form and its
// checksum.
func Parse(key string) (clientID int64, secret string, err error) {
	if len(key) > MaxLength || !strings.HasPrefix(key, Prefix) {
		return 0, "", ErrMalformed
	}
	rest := key[len(Prefix):]
	digits, tail, ok := strings.Cut(rest, "_")
	if !ok || len(tail) != secretLength+checksumLength || !decimal(digits) {
		return 0, "", ErrMalformed
	}
	body := key[:len(key)-checksumLength]
	if checksum(body) != key[len(key)-checksumLength:] {
		return 0, "", ErrMalformed
	}
	secret = tail[:secretLength]
	if !base64URL(secret) {
		return 0, "", ErrMalformed
	}
	id, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || id <= 0 {
		return 0, "", ErrMalformed
	}
	return id, secret, nil
}

// Looks reports whether s has the key prefix, so callers can tell a key
// (perhaps a malformed one) from other credentials.
func Looks(s string) bool { return strings.HasPrefix(s, Prefix) }

// hintSecretLength is how many trailing characters of a secret its hint
// shows.
const hintSecretLength = 4

// Hint returns the part of a secret that may be shown to identify it: its
// last four characters.
func Hint(secret string) string {
	if len(secret) < hintSecretLength {
		return ""
	}
	return secret[len(secret)-hintSecretLength:]
}

// KeyHint returns the part of the key of client id with secret that may be
// shown to identify it: its real last ten characters, which are the
// secret's last four and the six of the checksum. Safe to store and show:
// the four characters are 24 of the secret's 256 random bits and the
// checksum, a CRC-32, says at most 32 bits more about it, so at least 200
// bits stay unknown to whoever reads them, far beyond any search.
func KeyHint(clientID int64, secret string) (string, error) {
	key, err := Format(clientID, secret)
	if err != nil {
		return "", err
	}
	return key[len(key)-hintSecretLength-checksumLength:], nil
}

// Masked returns the key of client id as people may see it, from its
// stored hint: the prefix, the id and the key's last characters. A hint
// stored before keys had hints of their own holds only the secret's last
// four characters: the key ends with them and a checksum not known here,
// shown as six dots.
func Masked(clientID int64, hint string) string {
	m := Prefix + strconv.FormatInt(clientID, 10) + "_…"
	if len(hint) == hintSecretLength+checksumLength {
		return m + hint
	}
	return m + hint + "······"
}

// SecretHint returns the secret's part of a stored hint: all of a
// client's, the first four characters of a key's (see KeyHint).
func SecretHint(hint string) string {
	if len(hint) == hintSecretLength+checksumLength {
		return hint[:hintSecretLength]
	}
	return hint
}

func checksum(body string) string {
	n := crc32.ChecksumIEEE([]byte(body))
	var out [checksumLength]byte
	for i := checksumLength - 1; i >= 0; i-- {
		out[i] = base62[n%62]
		n /= 62
	}
	return string(out[:])
}

func decimal(s string) bool {
	if s == "" || len(s) > maxIDDigits || s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func base64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
