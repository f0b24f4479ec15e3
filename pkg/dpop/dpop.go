// Package dpop owns DPoP proofs (RFC 9449): reading one from a request's
// DPoP header, verifying it (§4.3) against the request's method and URL and,
// when an access token is presented with it, the token's hash, and
// remembering each proof's jti for as long as the proof could be accepted,
// so that a proof is used once. It returns the JWK SHA-256 thumbprint
// (RFC 7638) of the proof's key, which a bound token carries as cnf.jkt.
package dpop

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Header is the HTTP header a proof travels in; Scheme is the
// Authorization scheme of a bound access token.
const (
	Header = "DPoP"
	Scheme = "DPoP"
)

// MaxProofBytes caps a proof: an RSA 4096 key and its signature fit with
// room to spare.
const MaxProofBytes = 8 << 10

// Limits of a proof's claims.
const (
	maxJTIBytes = 256
	maxHTMBytes = 32
	maxHTUBytes = 4 << 10
)

// Defaults of Options.
const (
	DefaultMaxAge  = 60 * time.Second
	DefaultMaxSkew = 10 * time.Second
)

// DefaultAlgorithms are the proof algorithms accepted by default: asymmetric
// only, never none or HMAC.
var DefaultAlgorithms = []jose.SignatureAlgorithm{
	jose.ES256, jose.ES384, jose.ES512, jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.EdDSA,
}

// asymmetric are the algorithms Options.Algorithms may name.
var asymmetric = map[jose.SignatureAlgorithm]bool{}

func init() {
	for _, a := range DefaultAlgorithms {
		asymmetric[a] = true
	}
}

// ErrInvalid is wrapped by every refusal of a proof: the answer is
// invalid_dpop_proof (RFC 9449 §5, §7.1). The wrapping error names the
// check that failed, never the proof or a claim's value.
var ErrInvalid = errors.New("invalid DPoP proof")

func invalid(reason string) error { return fmt.Errorf("%w: %s", ErrInvalid, reason) }

// Replay remembers the proofs already used.
type Replay interface {
	// Fresh records key for ttl and reports whether it was not recorded
	// already. An error means the store failed: no decision. A duration,
	// not a time: each store measures it on its own clock.
	Fresh(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// Options configure a Verifier.
type Options struct {
	// Algorithms are the accepted proof algorithms (DefaultAlgorithms
	// when empty); symmetric ones and none are refused by New.
	Algorithms []jose.SignatureAlgorithm
	// MaxAge is how old a proof's iat may be (DefaultMaxAge when zero),
	// and so how long its jti is remembered.
	MaxAge time.Duration
	// MaxSkew is how far in the future a proof's iat may be (a client's
	// clock ahead of ours; DefaultMaxSkew when zero).
	MaxSkew time.Duration
	// Replay remembers used proofs; required.
	Replay Replay
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// Verifier verifies DPoP proofs. It is safe for concurrent use.
type Verifier struct {
	algs    []jose.SignatureAlgorithm
	maxAge  time.Duration
	maxSkew time.Duration
	replay  Replay
	now     func() time.Time
}

// New returns a Verifier, or an error for an algorithm that is not
// asymmetric or a missing replay store.
func New(opts Options) (*Verifier, error) {
	if len(opts.Algorithms) == 0 {
		opts.Algorithms = DefaultAlgorithms
	}
	for _, a := range opts.Algorithms {
		if !asymmetric[a] {
			return nil, fmt.Errorf("dpop: algorithm %q is not an asymmetric signature algorithm", a)
		}
	}
	if opts.Replay == nil {
		return nil, errors.New("dpop: no replay store")
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.MaxSkew <= 0 {
		opts.MaxSkew = DefaultMaxSkew
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Verifier{algs: opts.Algorithms, maxAge: opts.MaxAge, maxSkew: opts.MaxSkew, replay: opts.Replay, now: opts.Now}, nil
}

// Algorithms returns the accepted algorithms, for the metadata's
// dpop_signing_alg_values_supported.
func (v *Verifier) Algorithms() []string {
	names := make([]string, len(v.algs))
	for i, a := range v.algs {
		names[i] = string(a)
	}
	return names
}

// Request is what a proof must match.
type Request struct {
	// Method is the HTTP method of the request the proof was made for.
	Method string
	// URL is the request's URL as the client addressed it (the external
	// URL behind proxies); its query and fragment are ignored.
	URL string
	// AccessToken is the access token presented with the proof, whose
	// hash the proof's ath must be; empty at the token endpoint.
	AccessToken string
}

// FromHeader returns the one proof in h: an empty string when there is
// none, an error (ErrInvalid) when the header is repeated, empty or over
// MaxProofBytes.
func FromHeader(h http.Header) (string, error) {
	values := h.Values(Header)
	switch {
	case len(values) == 0:
		return "", nil
	case len(values) > 1:
		return "", invalid("more than one DPoP header")
	case len(values[0]) > MaxProofBytes:
		return "", invalid("proof too large")
	case strings.TrimSpace(values[0]) == "":
		return "", invalid("empty DPoP header")
	}
	return strings.TrimSpace(values[0]), nil
}

// claims are a proof's payload (RFC 9449 §4.2).
type claims struct {
	JTI *string  `json:"jti"`
	HTM *string  `json:"htm"`
	HTU *string  `json:"htu"`
	IAT *float64 `json:"iat"`
	ATH *string  `json:"ath"`
}

// Verify checks proof against req (RFC 9449 §4.3) and records its jti, and
// returns the thumbprint of its key (base64url, RFC 7638). A refusal wraps
// ErrInvalid; another error means the replay store failed.
func (v *Verifier) Verify(ctx context.Context, proof string, req Request) (string, error) {
	if len(proof) > MaxProofBytes {
		return "", invalid("proof too large")
	}
	if strings.Count(proof, ".") != 2 {
		return "", invalid("not a compact JWS")
	}
	jws, err := jose.ParseSignedCompact(proof, v.algs)
	if err != nil {
		// An algorithm outside the list, none, a private or malformed jwk.
		return "", invalid("not a signed JWT of an accepted algorithm")
	}
	if len(jws.Signatures) != 1 {
		return "", invalid("not one signature")
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "dpop+jwt" {
		return "", invalid("typ is not dpop+jwt")
	}
	key := h.JSONWebKey
	if key == nil || !key.Valid() || !key.IsPublic() {
		return "", invalid("jwk header is not a public key")
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return "", invalid("signature does not verify")
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", invalid("claims are not a JSON object of the expected types")
	}
	switch {
	case c.JTI == nil || *c.JTI == "" || len(*c.JTI) > maxJTIBytes:
		return "", invalid("jti missing or too long")
	case c.HTM == nil || len(*c.HTM) > maxHTMBytes:
		return "", invalid("htm missing")
	case c.HTU == nil || len(*c.HTU) > maxHTUBytes:
		return "", invalid("htu missing")
	case c.IAT == nil || math.IsNaN(*c.IAT) || math.IsInf(*c.IAT, 0):
		return "", invalid("iat missing")
	}
	if *c.HTM != req.Method {
		return "", invalid("htm does not match the request's method")
	}
	want, err := NormalizeURL(req.URL)
	if err != nil {
		return "", invalid("the request's URL cannot be compared")
	}
	got, err := NormalizeURL(*c.HTU)
	if err != nil || got != want {
		return "", invalid("htu does not match the request's URL")
	}
	now := v.now()
	if *c.IAT > float64(math.MaxInt32)*4 || *c.IAT < 0 {
		return "", invalid("iat out of range")
	}
	iat := time.Unix(int64(*c.IAT), 0)
	if iat.Before(now.Add(-v.maxAge)) {
		return "", invalid("iat too old")
	}
	if iat.After(now.Add(v.maxSkew)) {
		return "", invalid("iat in the future")
	}
	if req.AccessToken != "" {
		ath := AccessTokenHash(req.AccessToken)
		if c.ATH == nil || subtle.ConstantTimeCompare([]byte(*c.ATH), []byte(ath)) != 1 {
			return "", invalid("ath does not match the access token")
		}
	}
	tp, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", invalid("jwk has no thumbprint")
	}
	jkt := base64.RawURLEncoding.EncodeToString(tp)
	// The jti is remembered per key, hashed: another key's proof never
	// collides with this one, and no claim is stored as sent.
	id := sha256.Sum256([]byte(jkt + "\x00" + *c.JTI))
	// Remembered until the proof is too old anyway, and a second more for
	// iat's truncation to whole seconds.
	fresh, err := v.replay.Fresh(ctx, hex.EncodeToString(id[:]), iat.Add(v.maxAge+time.Second).Sub(now))
	if err != nil {
		return "", fmt.Errorf("dpop replay store: %w", err)
	}
	if !fresh {
		return "", invalid("proof already used")
	}
	return jkt, nil
}

// NormalizeURL returns raw as an htu is compared (RFC 9449 §4.3 and RFC
// 3986 §6.2.2, §6.2.3): scheme and host in lower case, the scheme's default
// port left out, an empty path as "/", no query, no fragment. Only
// absolute http and https URLs without user information are accepted.
func NormalizeURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("parse url: %w", err)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", errors.New("not an http or https URL")
	}
	if u.Hostname() == "" || u.User != nil || u.Opaque != "" {
		return "", errors.New("not an absolute URL with a host")
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, nil
}

// AccessTokenHash returns the ath of token: base64url(SHA-256(token)).
func AccessTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
