package guard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Defaults of LocalOptions.
const (
	DefaultJWKSRefresh   = 5 * time.Minute
	DefaultJWKSMinRefill = 10 * time.Second
	DefaultLeeway        = 5 * time.Second
)

// Bounds of what a local verification reads.
const (
	// maxLocalToken is the longest token verified in process: Tollgate's JWT
	// access tokens are under 1 KiB even with RS256. A longer value goes to
	// the check endpoint, which answers it.
	maxLocalToken = 8 << 10
	// maxJWKS bounds the JWK Set read from Tollgate.
	maxJWKS = 256 << 10
)

// localAlgorithms are the algorithms Tollgate signs access tokens with:
// never none, never HMAC (a public key must not double as a shared secret).
var localAlgorithms = []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.PS256, jose.EdDSA}

// LocalOptions configure a Local verifier.
type LocalOptions struct {
	// Issuer is Tollgate's issuer URL, the iss of every token it signs.
	Issuer string
	// JWKSURL is Tollgate's JWK Set; Issuer + "/.well-known/jwks.json"
	// when empty.
	JWKSURL string
	// Audience, when set, must be one of a token's aud values. Tollgate
	// sets aud to the resources the client asked for (the audience
	// parameter), else to its issuer.
	Audience string
	// HTTPClient fetches the JWK Set. The default has a timeout of
	// DefaultTimeout and follows no redirects.
	HTTPClient *http.Client
	// Refresh is how old the JWK Set may grow before the next verification
	// fetches it again (in the background of nothing: the verification that
	// finds it stale waits); DefaultJWKSRefresh when zero. Tollgate
	// publishes a new key one rotation interval before it signs with it,
	// so any refresh well under that interval never meets an unknown key.
	Refresh time.Duration
	// MinRefill is the least time between two fetches, however many tokens
	// name an unknown key; DefaultJWKSMinRefill when zero.
	MinRefill time.Duration
	// Leeway is the clock skew allowed on exp, iat and nbf;
	// DefaultLeeway when zero.
	Leeway time.Duration
	// Now is the clock; time.Now by default.
	Now func() time.Time
}

// Local verifies Tollgate's JWT access tokens (RFC 9068) in process,
// against the installation's JWK Set, which it fetches and keeps. A route
// marked VerifyLocally accepts such a token without asking the check
// endpoint.
//
// What that gives up: Tollgate's record of the token is not read, so a
// token revoked, or whose client, key, user or account was disabled, still
// passes until it expires; no rate limit is counted; and an account named
// by AccountFrom is accepted locally only when it is the token's own (a
// descendant account is asked of the check endpoint, which knows the
// tree). Keep the lifetime of tokens verified this way short.
//
// It is safe for concurrent use.
type Local struct {
	issuer, audience string
	jwksURL          string
	client           *http.Client
	refresh, refill  time.Duration
	leeway           time.Duration
	now              func() time.Time

	mu      sync.Mutex
	keys    map[string]jose.JSONWebKey // by kid
	fetched time.Time                  // when keys were last fetched
	tried   time.Time                  // when a fetch was last tried
}

// NewLocal returns a Local verifier. It fetches the JWK Set on first use.
func NewLocal(opts LocalOptions) (*Local, error) {
	if opts.Issuer == "" {
		return nil, errors.New("guard: LocalOptions.Issuer is empty")
	}
	if opts.JWKSURL == "" {
		opts.JWKSURL = strings.TrimSuffix(opts.Issuer, "/") + "/.well-known/jwks.json"
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{
			Timeout:       DefaultTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if opts.Refresh <= 0 {
		opts.Refresh = DefaultJWKSRefresh
	}
	if opts.MinRefill <= 0 {
		opts.MinRefill = DefaultJWKSMinRefill
	}
	if opts.Leeway <= 0 {
		opts.Leeway = DefaultLeeway
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Local{issuer: opts.Issuer, audience: opts.Audience, jwksURL: opts.JWKSURL, client: opts.HTTPClient,
		refresh: opts.Refresh, refill: opts.MinRefill, leeway: opts.Leeway, now: opts.Now}, nil
}

// Errors of Local.Verify.
var (
	// ErrNotLocal: the value is not a token Local can verify (an opaque
	// token, an API key, a token bound to a DPoP key); the check endpoint
	// decides it.
	ErrNotLocal = errors.New("guard: not a locally verifiable token")
	// ErrInvalidToken: a JWT access token that is forged, expired, not yet
	// valid, for another issuer or audience, or signed by an unknown key.
	ErrInvalidToken = errors.New("guard: invalid token")
	// ErrKeysUnavailable: the JWK Set could not be fetched.
	ErrKeysUnavailable = errors.New("guard: Tollgate's JWK Set is unavailable")
)

// localClaims are the claims of Tollgate's access tokens that a local
// verification reads.
type localClaims struct {
	Issuer    string          `json:"iss"`
	Subject   string          `json:"sub"`
	Audience  json.RawMessage `json:"aud"`
	Expiry    *int64          `json:"exp"`
	IssuedAt  *int64          `json:"iat"`
	NotBefore *int64          `json:"nbf"`
	ID        string          `json:"jti"`
	ClientID  string          `json:"client_id"`
	Scope     string          `json:"scope"`
	AccountID *int64          `json:"account_id"`
	Cnf       json.RawMessage `json:"cnf"`
}

// Verify checks a JWT access token Tollgate signed and answers its
// identity: the signature against a key of the JWK Set (fetched again,
// within MinRefill, when the token names a key not yet seen), the typ
// at+jwt, the algorithm, iss, aud when Audience is set, exp, iat and nbf.
// It answers ErrNotLocal for a value that is not a JWT or is bound to a
// DPoP key (cnf), ErrInvalidToken for a JWT that fails a check, and
// ErrKeysUnavailable when the keys cannot be had.
func (l *Local) Verify(ctx context.Context, token string) (Identity, error) {
	if len(token) > maxLocalToken || strings.Count(token, ".") != 2 {
		return Identity{}, ErrNotLocal
	}
	jws, err := jose.ParseSignedCompact(token, localAlgorithms)
	if err != nil || len(jws.Signatures) != 1 {
		return Identity{}, ErrInvalidToken
	}
	h := jws.Signatures[0].Header
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt") {
		return Identity{}, ErrInvalidToken
	}
	key, err := l.key(ctx, h.KeyID)
	if err != nil {
		return Identity{}, err
	}
	if key.Algorithm != "" && key.Algorithm != h.Algorithm {
		return Identity{}, ErrInvalidToken
	}
	payload, err := jws.Verify(key.Key)
	if err != nil {
		return Identity{}, ErrInvalidToken
	}
	var c localClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return Identity{}, ErrInvalidToken
	}
	if len(c.Cnf) > 0 && string(c.Cnf) != "null" {
		// A token bound to a key (DPoP) is good only with a proof of that
		// key, which the check endpoint verifies.
		return Identity{}, ErrNotLocal
	}
	return l.identity(c)
}

// identity checks the claims and answers the token's identity.
func (l *Local) identity(c localClaims) (Identity, error) {
	now := l.now()
	switch {
	case c.Issuer != l.issuer,
		c.Expiry == nil || now.After(time.Unix(*c.Expiry, 0).Add(l.leeway)),
		c.IssuedAt != nil && time.Unix(*c.IssuedAt, 0).After(now.Add(l.leeway)),
		c.NotBefore != nil && time.Unix(*c.NotBefore, 0).After(now.Add(l.leeway)),
		c.ID == "", c.AccountID == nil,
		l.audience != "" && !hasAudience(c.Audience, l.audience):
		return Identity{}, ErrInvalidToken
	}
	clientID, err := strconv.ParseInt(c.ClientID, 10, 64)
	if err != nil {
		return Identity{}, ErrInvalidToken
	}
	subject := c.Subject
	if subject == "" {
		subject = c.ClientID
	}
	return Identity{ClientID: clientID, AccountID: *c.AccountID, Subject: subject, Scopes: strings.Fields(c.Scope)}, nil
}

// hasAudience reports whether aud, a string or an array of strings (RFC
// 7519 §4.1.3), holds want.
func hasAudience(aud json.RawMessage, want string) bool {
	var one string
	if json.Unmarshal(aud, &one) == nil {
		return one == want
	}
	var many []string
	if json.Unmarshal(aud, &many) != nil {
		return false
	}
	for _, a := range many {
		if a == want {
			return true
		}
	}
	return false
}

// key answers the public key kid of the JWK Set, fetching the set when it
// is older than Refresh, or when kid is unknown and no fetch was tried
// within MinRefill.
func (l *Local) key(ctx context.Context, kid string) (jose.JSONWebKey, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	k, known := l.keys[kid]
	stale := l.keys == nil || now.Sub(l.fetched) >= l.refresh
	if known && !stale {
		return k, nil
	}
	if now.Sub(l.tried) < l.refill && !l.tried.IsZero() {
		if known {
			return k, nil // stale but good: the last fetch failed or is too recent
		}
		if l.keys == nil {
			return jose.JSONWebKey{}, ErrKeysUnavailable
		}
		return jose.JSONWebKey{}, ErrInvalidToken
	}
	l.tried = now
	keys, err := l.fetch(ctx)
	if err != nil {
		if known {
			return k, nil // a key already known stays good while Tollgate is away
		}
		return jose.JSONWebKey{}, fmt.Errorf("%w: %w", ErrKeysUnavailable, err)
	}
	l.keys, l.fetched = keys, now
	if k, ok := keys[kid]; ok {
		return k, nil
	}
	return jose.JSONWebKey{}, ErrInvalidToken
}

// fetch reads the JWK Set: public signing keys with a kid, by kid.
func (l *Local) fetch(ctx context.Context) (map[string]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.jwksURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	res, err := l.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = res.Body.Close() }() // read to its limit below; a close error tells nothing more
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("JWK Set answered %d", res.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxJWKS+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxJWKS {
		return nil, fmt.Errorf("JWK Set larger than %d bytes", maxJWKS)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("JWK Set: %w", err)
	}
	keys := make(map[string]jose.JSONWebKey, len(set.Keys))
	for _, k := range set.Keys {
		if k.KeyID == "" || !k.Valid() || !k.IsPublic() || (k.Use != "" && k.Use != "sig") {
			continue
		}
		keys[k.KeyID] = k
	}
	return keys, nil
}
