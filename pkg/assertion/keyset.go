package assertion

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/go-jose/go-jose/v4"

	"github.com/tollgate/tollgate/pkg/strictjson"
)

// Caps on a client's JWK Set, inline or fetched.
const (
	// MaxKeySetBytes bounds the JSON of a JWK Set.
	MaxKeySetBytes = 16 << 10
	// MaxKeys bounds the keys of a JWK Set: enough for a rotation
	// overlap, few enough that an assertion without kid costs little.
	MaxKeys = 8
	// minRSABits is the smallest RSA modulus accepted.
	minRSABits = 2048
)

// Algorithms are the JWS algorithms a client assertion may use, in the
// order the metadata lists them: never none, never HMAC (a client's public
// key is no shared secret).
var Algorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// AlgorithmNames are Algorithms as strings.
func AlgorithmNames() []string {
	out := make([]string, len(Algorithms))
	for i, a := range Algorithms {
		out[i] = string(a)
	}
	return out
}

// ErrKeySet is the error of every refused JWK Set; the wrapped text says
// why, and is safe to show the client's owner (it never echoes key
// material).
var ErrKeySet = errors.New("invalid JWK Set")

// privateMembers are the JWK members of private or symmetric keys
// (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// KeySet is a validated JWK Set of public signature keys.
type KeySet struct {
	keys []key
}

type key struct {
	kid  string
	algs []jose.SignatureAlgorithm // the algorithms this key may verify
	pub  any
}

// Len returns the number of keys.
func (s *KeySet) Len() int { return len(s.keys) }

// HasKID reports whether a key has id kid.
func (s *KeySet) HasKID(kid string) bool {
	return slices.ContainsFunc(s.keys, func(k key) bool { return k.kid == kid })
}

// candidates returns the keys that may verify a signature of alg with key
// id kid ("" when the header names none).
func (s *KeySet) candidates(kid string, alg jose.SignatureAlgorithm) []key {
	var out []key
	for _, k := range s.keys {
		if kid != "" && k.kid != kid {
			continue
		}
		if slices.Contains(k.algs, alg) {
			out = append(out, k)
		}
	}
	return out
}

// ParseKeySet reads and validates a JWK Set (RFC 7517 §5): at most
// MaxKeySetBytes and MaxKeys keys, each a public RSA (≥ 2048 bits), EC
// (P-256, P-384, P-521) or Ed25519 key, with no private or symmetric
// member, "use" absent or "sig", "alg" absent or an allowed algorithm of
// its key type (absent: every allowed algorithm of the type), and distinct
// kids. Duplicate members and unknown trailing data are refused.
func ParseKeySet(raw []byte) (*KeySet, error) {
	if len(raw) > MaxKeySetBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrKeySet, MaxKeySetBytes)
	}
	if err := strictjson.CheckDuplicates(raw); err != nil {
		return nil, fmt.Errorf("%w: a member is repeated", ErrKeySet)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&doc); err != nil || dec.More() {
		return nil, fmt.Errorf("%w: not a JSON object with a keys array", ErrKeySet)
	}
	if len(doc.Keys) == 0 {
		return nil, fmt.Errorf("%w: no keys", ErrKeySet)
	}
	if len(doc.Keys) > MaxKeys {
		return nil, fmt.Errorf("%w: more than %d keys", ErrKeySet, MaxKeys)
	}
	set := &KeySet{keys: make([]key, 0, len(doc.Keys))}
	for i, rk := range doc.Keys {
		k, err := parseKey(rk)
		if err != nil {
			return nil, fmt.Errorf("%w: key %d: %s", ErrKeySet, i, err.Error())
		}
		if k.kid != "" && set.HasKID(k.kid) {
			return nil, fmt.Errorf("%w: key %d: kid is repeated", ErrKeySet, i)
		}
		set.keys = append(set.keys, k)
	}
	return set, nil
}

func parseKey(raw json.RawMessage) (key, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return key{}, errors.New("not a JSON object")
	}
	for _, m := range privateMembers {
		if _, ok := members[m]; ok {
			return key{}, fmt.Errorf("has the private or symmetric member %q: register public keys only", m)
		}
	}
	var head struct {
		Kty string `json:"kty"`
		Use string `json:"use"`
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return key{}, errors.New("kty, use, alg and kid must be strings")
	}
	if head.Kty == "oct" {
		return key{}, errors.New("symmetric (oct) keys are not accepted")
	}
	if head.Use != "" && head.Use != "sig" {
		return key{}, errors.New(`use must be "sig"`)
	}
	if len(head.Kid) > 256 {
		return key{}, errors.New("kid is longer than 256 characters")
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return key{}, errors.New("not a valid JWK")
	}
	if !jwk.IsPublic() || !jwk.Valid() {
		return key{}, errors.New("not a valid public key")
	}
	var typeAlgs []jose.SignatureAlgorithm
	switch pub := jwk.Key.(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < minRSABits {
			return key{}, fmt.Errorf("RSA keys must have at least %d bits", minRSABits)
		}
		typeAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512}
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256():
			typeAlgs = []jose.SignatureAlgorithm{jose.ES256}
		case elliptic.P384():
			typeAlgs = []jose.SignatureAlgorithm{jose.ES384}
		case elliptic.P521():
			typeAlgs = []jose.SignatureAlgorithm{jose.ES512}
		default:
			return key{}, errors.New("unsupported EC curve")
		}
	case ed25519.PublicKey:
		typeAlgs = []jose.SignatureAlgorithm{jose.EdDSA}
	default:
		return key{}, errors.New("kty must be RSA, EC or OKP (Ed25519)")
	}
	algs := typeAlgs
	if head.Alg != "" {
		alg := jose.SignatureAlgorithm(head.Alg)
		if !slices.Contains(typeAlgs, alg) {
			return key{}, fmt.Errorf("alg must be one of %s for this key", joinAlgs(typeAlgs))
		}
		algs = []jose.SignatureAlgorithm{alg}
	}
	return key{kid: head.Kid, algs: algs, pub: jwk.Key}, nil
}

func joinAlgs(algs []jose.SignatureAlgorithm) string {
	var b bytes.Buffer
	for i, a := range algs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(a))
	}
	return b.String()
}
