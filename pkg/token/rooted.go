package token

import (
	stdhmac "crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/tollgate/tollgate/storage"
)

// Names are the ids a rooted token carries, under its HMAC: whose it is
// is known, unforgeably, before its record is read, so that the check
// endpoint can check their standing, then read the record and take its
// decision in one script:
//
//	tg_at_<root>.<account>.<client>[.<user>].<key>.<HMAC>
type Names struct {
	Root    int64 // the root account of Account's tree
	Account int64 // the token's account
	Client  int64 // the token's client
	User    int64 // the token's user; 0 for a client's own token
}

// valid reports whether every id is positive (the user's, or zero).
func (n Names) valid() bool { return n.Root > 0 && n.Account > 0 && n.Client > 0 && n.User >= 0 }

// AppendNames appends the ids of n as every value naming them spells them,
// each followed by a dot: "<root>.<account>.<client>." and, for a user's
// token, "<user>.". A value ends with one part of its own after them (the
// opaque token's key and HMAC, a JWT's random jti).
func AppendNames(b []byte, n Names) []byte {
	b = strconv.AppendInt(b, n.Root, 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, n.Account, 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, n.Client, 10)
	b = append(b, '.')
	if n.User != 0 {
		b = strconv.AppendInt(b, n.User, 10)
		b = append(b, '.')
	}
	return b
}

// CutNames reads the ids AppendNames wrote at the start of s and returns
// them with the one part after them, which holds no dot; ok is false for
// any other spelling (ids in decimal without a sign or leading zeros, three
// or four of them, a part after them).
func CutNames(s string) (n Names, last string, ok bool) {
	count := strings.Count(s, ".")
	if count != 3 && count != 4 {
		return Names{}, "", false
	}
	var ids [4]int64
	for i := range ids[:count] {
		var part string
		part, s, _ = strings.Cut(s, ".")
		if ids[i], ok = storage.ParseID(part); !ok {
			return Names{}, "", false
		}
	}
	if s == "" {
		return Names{}, "", false
	}
	return Names{Root: ids[0], Account: ids[1], Client: ids[2], User: ids[3]}, s, true
}

// rootedLabel starts the message a rooted token's HMAC is taken over, so
// that it can never be taken for another HMAC made with the same key.
const rootedLabel = "tollgate rooted access token v1\x00"

// maxRootedLength bounds a rooted token: the prefix, four ids of at most
// 19 digits, two parts and five dots.
const maxRootedLength = len(AccessPrefix) + 4*19 + 2*partLength + 5

// GenerateRooted returns a new rooted token for n and its signature, the
// HMAC part: 32 random bytes as the key part.
func (s *Strategy) GenerateRooted(n Names) (tok, signature string, err error) {
	if !n.valid() {
		return "", "", fmt.Errorf("generate token: ids %+v: want all positive", n)
	}
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return "", "", fmt.Errorf("generate token: %w", err)
	}
	tok, signature = s.rooted(n, key[:])
	return tok, signature, nil
}

// DeriveRooted is Derive for a rooted token: the key part is derived from
// seed as Derive derives it.
func (s *Strategy) DeriveRooted(seed []byte, n Names) (tok, signature string) {
	m := stdhmac.New(sha256.New, s.reuse)
	m.Write(seed)
	tok, signature = s.rooted(n, m.Sum(nil))
	return tok, signature
}

func (s *Strategy) rooted(n Names, key []byte) (string, string) {
	b := make([]byte, 0, maxRootedLength)
	b = append(b, AccessPrefix...)
	b = AppendNames(b, n)
	b = base64.RawURLEncoding.AppendEncode(b, key)
	sig := base64.RawURLEncoding.EncodeToString(rootedMAC(s.signing, string(b)))
	return string(b) + "." + sig, sig
}

// rootedMAC is the HMAC of a rooted token's text before its last dot,
// under key.
func rootedMAC(key []byte, text string) []byte {
	m := stdhmac.New(sha512.New512_256, key)
	m.Write([]byte(rootedLabel))
	m.Write([]byte(text))
	return m.Sum(nil)
}

// RootedSignature validates tok as a rooted token, its form and its HMAC
// under the secret or a rotated one, and returns the ids it names and its
// signature. Any string that is not a rooted token minted with one of the
// secrets, an edited id included, gives ErrMalformed, without a storage
// lookup. Exactly one spelling of a token is accepted: ids in decimal
// without a sign or leading zeros, parts in unpadded base64url.
func (s *Strategy) RootedSignature(tok string) (Names, string, error) {
	if len(tok) > maxRootedLength {
		return Names{}, "", ErrMalformed
	}
	rest, ok := strings.CutPrefix(tok, AccessPrefix)
	if !ok || len(rest) < partLength+1 || rest[len(rest)-partLength-1] != '.' {
		return Names{}, "", ErrMalformed
	}
	// The ids and the key, then the HMAC.
	sig := rest[len(rest)-partLength:]
	n, key, ok := CutNames(rest[:len(rest)-partLength-1])
	if !ok || len(key) != partLength || !canonical(key) || !canonical(sig) {
		return Names{}, "", ErrMalformed
	}
	mac, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return Names{}, "", ErrMalformed
	}
	text := tok[:len(tok)-partLength-1]
	for _, k := range s.verifying {
		if stdhmac.Equal(mac, rootedMAC(k, text)) {
			return n, sig, nil
		}
	}
	return Names{}, "", ErrMalformed
}
