// Package jwt is the JWT access token format (RFC 9068) of pkg/tokens: a
// token is a JWS signed with the installation's current signing key
// (pkg/signing), header typ "at+jwt", whose jti is the id its record is
// stored under. A resource server may verify it against the JWK Set alone;
// Tollgate itself still reads the record, so revocation, expiry and the
// standing of its client, key, user and account apply to it exactly as to
// an opaque token.
//
// When its root account is known, a token's jti names it, with its
// account, client and, for a user's token, user, spelled as an opaque
// token spells them (token.AppendNames):
// "a<root>.<account>.<client>[.<user>].<random>", a storage.Rooted id. The
// record is then kept with the root account's other keys, and the check
// reads it together with its decision in one round trip (ADR 0013), as
// for an opaque token naming its root: the signature vouches for the ids.
package jwt

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tollgate/tollgate/internal/expiring"
	"github.com/tollgate/tollgate/pkg/signing"
	"github.com/tollgate/tollgate/pkg/token"
	"github.com/tollgate/tollgate/pkg/tokens"
	"github.com/tollgate/tollgate/storage"
)

// MaxBytes is the longest value ID reads: far above any token it mints
// (under 1 KiB with RS256), so that hostile input costs no parsing.
const MaxBytes = 8 << 10

// maxID bounds a jti: a rooted one is "a", four ids of at most 19 digits,
// four dots and 43 characters of base64.
const maxID = 1 + 4*19 + 4 + 43

// Type is the JWS typ of an access token (RFC 9068 §2.1).
const Type = "at+jwt"

// algorithms are the only JWS algorithms ID accepts: never none, never HMAC.
var algorithms = []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA}

// Keys are the signing keys: the one that signs now, and the published
// ones by id. *signing.Ring implements it.
type Keys interface {
	Signer() (*signing.Key, error)
	Key(kid string) (*signing.Key, bool)
}

// Options configure a Format.
type Options struct {
	// Issuer is the iss of every token, and the one ID accepts.
	Issuer string
	// Keys sign and verify.
	Keys Keys
	// Secret keys the jti of a reused token (Derive): at least 32 bytes.
	Secret []byte
	// Now is the clock of the tokens remembered as verified; nil: time.Now.
	Now func() time.Time
}

// verifiedTTL is how long a verified token is remembered, so that a gateway
// checking one token many times pays for its signature once a minute, not
// on every check; its record is read on every check all the same
// (revocation, expiry, the standing of its client and accounts). The one
// thing remembered past its time: a token of a signing key that left the
// ring is taken for up to verifiedTTL more, when no token lives longer than
// the ring keeps its key anyway.
const verifiedTTL = time.Minute

// maxVerified bounds the tokens remembered as verified (about 200 bytes
// each); only tokens this installation signed are remembered.
const maxVerified = 10000

// Format mints and reads JWT access tokens.
type Format struct {
	issuer  string
	keys    Keys
	secret  []byte
	now     func() time.Time
	signers sync.Map // kid → jose.Signer

	mu       sync.RWMutex
	verified map[[sha256.Size]byte]remembered // by the SHA-256 of the token
}

// remembered is a verified token's claims, and until when to trust them.
type remembered struct {
	claims  verified
	expires time.Time
}

var (
	_ tokens.Format = (*Format)(nil)
	_ tokens.Namer  = (*Format)(nil)
)

// New returns the JWT format.
func New(opts Options) (*Format, error) {
	if len(opts.Secret) < 32 {
		return nil, errors.New("jwt format: secret shorter than 32 bytes")
	}
	if opts.Keys == nil || opts.Issuer == "" {
		return nil, errors.New("jwt format: keys and issuer are required")
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Format{issuer: opts.Issuer, keys: opts.Keys, secret: opts.Secret, now: now,
		verified: make(map[[sha256.Size]byte]remembered)}, nil
}

// claims are an access token's JWT claims (RFC 9068 §2.2), with the
// account and, for user tokens, the user.
type claims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  []string `json:"aud"`
	Expiry    int64    `json:"exp"`
	IssuedAt  int64    `json:"iat"`
	ID        string   `json:"jti"`
	ClientID  string   `json:"client_id"`
	Scope     string   `json:"scope,omitempty"`
	AccountID int64    `json:"account_id"`
	Username  string   `json:"username,omitempty"`
	// Confirmation names the DPoP key of a bound token (RFC 9449 §6.1).
	Confirmation *confirmation `json:"cnf,omitempty"`
}

// confirmation is the cnf claim of a DPoP-bound token.
type confirmation struct {
	JKT string `json:"jkt"`
}

// Mint implements tokens.Format: a random jti, naming the token's ids when
// root is known, signed with the current key.
func (f *Format) Mint(_ context.Context, rec storage.Token, root int64) (string, string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("jti: %w", err)
	}
	id := jti(rec, root, base64.RawURLEncoding.EncodeToString(b[:]))
	value, err := f.sign(rec, id)
	return value, id, err
}

// Derive implements tokens.Format: the jti's random part is an HMAC of
// seed, so that every request of a reuse window finds the same record; the
// value is signed anew (ECDSA signatures are randomised), which changes
// nothing a verifier reads but the signature.
func (f *Format) Derive(_ context.Context, seed []byte, rec storage.Token, root int64) (string, string, error) {
	mac := hmac.New(sha256.New, f.secret)
	mac.Write([]byte("tollgate jwt jti v1\x00"))
	mac.Write(seed)
	id := jti(rec, root, base64.RawURLEncoding.EncodeToString(mac.Sum(nil)))
	value, err := f.sign(rec, id)
	return value, id, err
}

// jti is the id of rec's token whose random part is random: when the
// token's ids are all known (tokens.NamesOf), "a", the ids and random (a
// storage.Rooted id of the root), else random alone.
func jti(rec storage.Token, root int64, random string) string {
	n, ok := tokens.NamesOf(rec, root)
	if !ok {
		return random
	}
	return string(append(token.AppendNames([]byte{'a'}, n), random...))
}

// namesOf reads the ids a jti names; ok is false for a jti naming none.
func namesOf(id string) (token.Names, bool) {
	rest, ok := strings.CutPrefix(id, "a")
	if !ok {
		return token.Names{}, false
	}
	n, _, ok := token.CutNames(rest)
	return n, ok
}

func (f *Format) sign(rec storage.Token, id string) (string, error) {
	key, err := f.keys.Signer()
	if err != nil {
		return "", err
	}
	signer, err := f.signer(key)
	if err != nil {
		return "", err
	}
	clientID := strconv.FormatInt(rec.ClientID, 10)
	c := claims{
		Issuer: f.issuer, Subject: rec.Subject, Audience: rec.Audience,
		Expiry: rec.ExpiresAt.Unix(), IssuedAt: rec.IssuedAt.Unix(), ID: id,
		ClientID: clientID, Scope: strings.Join(rec.Scopes, " "), AccountID: rec.AccountID, Username: rec.Username,
	}
	if rec.JKT != "" {
		c.Confirmation = &confirmation{JKT: rec.JKT}
	}
	if c.Subject == "" {
		// A client's own token: the client is the subject (RFC 9068 §2.2).
		c.Subject = clientID
	}
	if len(c.Audience) == 0 {
		// aud is required; a token asked for no resource is for this
		// authorization server's resources (its management API, its check
		// endpoint).
		c.Audience = []string{f.issuer}
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode claims: %w", err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return obj.CompactSerialize()
}

// signer returns the jose signer of key, made once.
func (f *Format) signer(key *signing.Key) (jose.Signer, error) {
	if s, ok := f.signers.Load(key.ID); ok {
		return s.(jose.Signer), nil
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: key.Algorithm, Key: jose.JSONWebKey{Key: key.Private, KeyID: key.ID}},
		(&jose.SignerOptions{}).WithType(Type))
	if err != nil {
		return nil, fmt.Errorf("signer: %w", err)
	}
	f.signers.Store(key.ID, s)
	return s, nil
}

// ID implements tokens.Format: the jti of a token this installation
// signed, once its size, algorithm, type, key, signature and issuer are
// checked. Anything else is tokens.ErrMalformed.
func (f *Format) ID(_ context.Context, value string) (string, error) {
	c, _, err := f.verify(value)
	if err != nil {
		return "", tokens.ErrMalformed
	}
	return c.ID, nil
}

// Names implements tokens.Namer: the ids a token's rooted jti names, once
// the token is verified as ID verifies it and its client_id and
// account_id claims agree with them. A value not shaped as a JWS, or a
// token whose jti names nothing (one minted without its root, or before
// jtis named it), is tokens.ErrMalformed, and is read by ID; a JWS that
// fails verification is tokens.ErrInactive, so that its signature is not
// checked a second time.
func (f *Format) Names(_ context.Context, value string) (token.Names, string, error) {
	c, jws, err := f.verify(value) // the signature vouches for the ids
	if err != nil {
		if jws {
			return token.Names{}, "", tokens.ErrInactive
		}
		return token.Names{}, "", tokens.ErrMalformed
	}
	n, ok := namesOf(c.ID)
	if !ok || n.Account != c.AccountID || strconv.FormatInt(n.Client, 10) != c.ClientID {
		return token.Names{}, "", tokens.ErrMalformed
	}
	return n, c.ID, nil
}

// shaped reports whether value may be a token of the format: a compact
// JWS (three parts) of at most MaxBytes, each part the one unpadded
// base64url spelling of its bytes. A decoder would also take other final
// characters (their unused bits) and line breaks: without this, one token
// would have many spellings, as an opaque token does not (pkg/token).
func shaped(value string) bool {
	if len(value) > MaxBytes || strings.Count(value, ".") != 2 {
		return false
	}
	for part := range strings.SplitSeq(value, ".") {
		if strings.ContainsAny(part, "\r\n") {
			return false
		}
		if _, err := base64.RawURLEncoding.Strict().DecodeString(part); err != nil {
			return false
		}
	}
	return true
}

// verified are the claims verify reads.
type verified struct {
	Issuer    string `json:"iss"`
	ID        string `json:"jti"`
	ClientID  string `json:"client_id"`
	AccountID int64  `json:"account_id"`
}

// verify checks value's size, algorithm, type, key, signature, issuer and
// jti, and returns its claims, remembering them for verifiedTTL; anything
// else is tokens.ErrMalformed, and jws tells whether value was at least
// shaped as a compact JWS.
func (f *Format) verify(value string) (c verified, jws bool, err error) {
	if len(value) > MaxBytes || strings.Count(value, ".") != 2 {
		return verified{}, false, tokens.ErrMalformed
	}
	sum := sha256.Sum256([]byte(value))
	now := f.now()
	f.mu.RLock()
	r, ok := f.verified[sum]
	f.mu.RUnlock()
	if ok && now.Before(r.expires) {
		return r.claims, true, nil
	}
	if !shaped(value) {
		return verified{}, false, tokens.ErrMalformed
	}
	if c, err = f.check(value); err != nil {
		return verified{}, true, err
	}
	f.remember(sum, c, now)
	return c, true, nil
}

// remember keeps c as the claims of the token whose SHA-256 is sum until
// verifiedTTL from now. At maxVerified tokens it first forgets one
// (expiring.EvictOne).
func (f *Format) remember(sum [sha256.Size]byte, c verified, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.verified[sum]; !ok && len(f.verified) >= maxVerified {
		expiring.EvictOne(f.verified, func(r remembered) time.Time { return r.expires })
	}
	f.verified[sum] = remembered{claims: c, expires: now.Add(verifiedTTL)}
}

// check verifies a shaped value: algorithm, type, key, signature, issuer
// and jti.
func (f *Format) check(value string) (verified, error) {
	jws, err := jose.ParseSignedCompact(value, algorithms)
	if err != nil || len(jws.Signatures) != 1 {
		return verified{}, tokens.ErrMalformed
	}
	h := jws.Signatures[0].Header
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, Type) && !strings.EqualFold(typ, "application/"+Type) {
		return verified{}, tokens.ErrMalformed
	}
	key, ok := f.keys.Key(h.KeyID)
	if !ok || string(key.Algorithm) != h.Algorithm {
		return verified{}, tokens.ErrMalformed
	}
	payload, err := jws.Verify(key.Private.Public())
	if err != nil {
		return verified{}, tokens.ErrMalformed
	}
	var c verified
	if err := json.Unmarshal(payload, &c); err != nil || c.Issuer != f.issuer || c.ID == "" || len(c.ID) > maxID {
		return verified{}, tokens.ErrMalformed
	}
	return c, nil
}
