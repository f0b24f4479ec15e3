// Package assertion verifies JWT client assertions (RFC 7523 §2.2 and §3,
// OpenID Connect Core §9 private_key_jwt): the client signs a short-lived
// JWT with its private key, and the server verifies it with the public keys
// the client registered, inline (jwks) or at a URL (jwks_uri). It owns the
// JWK Set validation of those registrations, the assertion parser, the
// claim rules, the single use of each jti, and the bounded cache of fetched
// key sets.
package assertion

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tollgate/tollgate/storage"
)

// Type is the client_assertion_type of a JWT client assertion (RFC 7523 §2.2).
const Type = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// MaxBytes bounds a client assertion: an RS512 assertion with a 4096-bit
// key is under 1.5 KiB, so nothing longer needs parsing.
const MaxBytes = 8 << 10

// maxJTI bounds the jti a server remembers.
const maxJTI = 256

// Defaults of VerifierOptions.
const (
	DefaultMaxLifetime = 5 * time.Minute
	DefaultLeeway      = 30 * time.Second
)

// ErrInvalid is the error of every refused assertion. The wrapped text says
// why, for the log; it never holds the assertion or a claim's value.
var ErrInvalid = errors.New("invalid client assertion")

// ErrUnavailable wraps a failure of the store that remembers jtis: an
// outage, not a refusal.
var ErrUnavailable = errors.New("client assertion store unavailable")

func invalid(reason string) error { return fmt.Errorf("%w: %s", ErrInvalid, reason) }

// Assertion is a parsed, not yet verified, client assertion.
type Assertion struct {
	token    *jwt.JSONWebToken
	alg      jose.SignatureAlgorithm
	kid      string
	ClientID int64 // the iss and sub, which must be equal
}

// Parse reads a compact JWS client assertion without verifying it, and
// returns it with the client it names: iss and sub must both be the same
// numeric client id (RFC 7523 §3: the client is both issuer and subject).
// Anything else is ErrInvalid.
func Parse(raw string) (*Assertion, error) {
	if len(raw) > MaxBytes {
		return nil, invalid("longer than " + strconv.Itoa(MaxBytes) + " bytes")
	}
	tok, err := jwt.ParseSigned(raw, Algorithms)
	if err != nil {
		return nil, invalid("not a compact JWS of an allowed algorithm")
	}
	if len(tok.Headers) != 1 {
		return nil, invalid("not one signature")
	}
	h := tok.Headers[0]
	var c jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		return nil, invalid("claims are not a JSON object of registered claims")
	}
	if c.Issuer == "" || c.Issuer != c.Subject {
		return nil, invalid("iss and sub must be the client id")
	}
	id, err := strconv.ParseInt(c.Subject, 10, 64)
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != c.Subject {
		return nil, invalid("sub is not a client id")
	}
	return &Assertion{token: tok, alg: jose.SignatureAlgorithm(h.Algorithm), kid: h.KeyID, ClientID: id}, nil
}

// KID returns the key id the assertion's header names, "" for none.
func (a *Assertion) KID() string { return a.kid }

// OneTimeIDs remembers the jtis already used (storage.OneTimeIDs).
type OneTimeIDs interface {
	UseOnce(ctx context.Context, id string, expiresAt time.Time) error
}

// VerifierOptions configure a Verifier.
type VerifierOptions struct {
	// Audiences are the aud values accepted: the issuer and the token
	// endpoint URL. An assertion must name at least one of them.
	Audiences []string
	// MaxLifetime bounds how far ahead exp may be; DefaultMaxLifetime
	// when 0.
	MaxLifetime time.Duration
	// Leeway is the clock skew allowed on exp, nbf and iat; DefaultLeeway
	// when 0.
	Leeway time.Duration
	// Used remembers each jti until the assertion expires.
	Used OneTimeIDs
	Now  func() time.Time
}

// Verifier checks a parsed assertion's signature and claims.
type Verifier struct {
	opts VerifierOptions
}

// NewVerifier returns a Verifier.
func NewVerifier(opts VerifierOptions) (*Verifier, error) {
	if len(opts.Audiences) == 0 || opts.Used == nil {
		return nil, errors.New("assertion verifier: audiences and a jti store are required")
	}
	if opts.MaxLifetime <= 0 {
		opts.MaxLifetime = DefaultMaxLifetime
	}
	if opts.Leeway <= 0 {
		opts.Leeway = DefaultLeeway
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Verifier{opts: opts}, nil
}

// Verify checks a against keys: a key of the header's kid (any key when
// there is none) whose algorithm is the header's verifies the signature;
// aud names one of the
// accepted audiences; exp is present, not past and at most MaxLifetime
// ahead; nbf and iat, when present, are not in the future; jti is present
// and was never used before. The jti is then remembered until exp, so a
// replay is refused on every instance. Every refusal is ErrInvalid; a
// failure of the jti store is ErrUnavailable.
func (v *Verifier) Verify(ctx context.Context, a *Assertion, keys *KeySet) error {
	candidates := keys.candidates(a.kid, a.alg)
	if len(candidates) == 0 {
		return invalid("no registered key of the header's kid and algorithm")
	}
	var c jwt.Claims
	verified := false
	for _, k := range candidates {
		if err := a.token.Claims(k.pub, &c); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return invalid("signature does not verify")
	}
	// iss and sub were checked by Parse: the verified payload is the one
	// it read.
	if !slices.ContainsFunc(v.opts.Audiences, c.Audience.Contains) {
		return invalid("aud names neither the issuer nor the token endpoint")
	}
	now := v.opts.Now()
	leeway := v.opts.Leeway
	if c.Expiry == nil {
		return invalid("exp is missing")
	}
	exp := c.Expiry.Time()
	if !now.Before(exp.Add(leeway)) {
		return invalid("expired")
	}
	if exp.After(now.Add(v.opts.MaxLifetime + leeway)) {
		return invalid("exp is too far ahead")
	}
	if c.NotBefore != nil && c.NotBefore.Time().After(now.Add(leeway)) {
		return invalid("nbf is in the future")
	}
	if c.IssuedAt != nil && c.IssuedAt.Time().After(now.Add(leeway)) {
		return invalid("iat is in the future")
	}
	if c.ID == "" || len(c.ID) > maxJTI {
		return invalid("jti is missing or too long")
	}
	// The id is the client and its jti, hashed: fixed length, and no
	// client can spend another's jti.
	sum := sha256.Sum256([]byte(strconv.FormatInt(a.ClientID, 10) + ":" + c.ID))
	err := v.opts.Used.UseOnce(ctx, hex.EncodeToString(sum[:]), exp.Add(leeway))
	if errors.Is(err, storage.ErrAlreadyExists) {
		return invalid("jti was used before")
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// Checker verifies an assertion against the keys of the client it names.
type Checker struct {
	Keys     *KeySource
	Verifier *Verifier
}

// Check returns nil when a verifies against c's keys; see Verifier.Verify.
func (ch Checker) Check(ctx context.Context, c storage.Client, a *Assertion) error {
	keys, err := ch.Keys.Keys(ctx, c, a.kid)
	if err != nil {
		return err
	}
	return ch.Verifier.Verify(ctx, a, keys)
}
