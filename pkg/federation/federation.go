// Package federation authenticates clients with tokens of external OpenID
// Connect issuers (workload identity federation): a GitHub Actions run or
// a Kubernetes pod presents its own token as a client assertion, and a
// federated credential of the client (storage.FederatedCredential) says
// which issuer, subject, audiences and claims to trust. It owns the
// discovery of an issuer's keys (its discovery document, then its
// jwks_uri, through the guarded outbound client), their bounded cache, and
// the checks of the token; the JWS and JWK Set parsing, the algorithm
// allow-list and the single use of ids are pkg/assertion's and the
// storage's.
package federation

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tollgate/tollgate/pkg/assertion"
	"github.com/tollgate/tollgate/pkg/egress"
	"github.com/tollgate/tollgate/storage"
)

// Defaults of Options.
const (
	DefaultMaxLifetime     = 24 * time.Hour
	DefaultLeeway          = 30 * time.Second
	DefaultMaxAge          = 10 * time.Minute
	DefaultRefetchInterval = 30 * time.Second
	DefaultMaxIssuers      = 1000
)

// maxJTI bounds the jti remembered.
const maxJTI = 256

// DiscoveryPath is where an issuer's discovery document is, below the
// issuer URL (OpenID Connect Discovery 1.0 §4).
const DiscoveryPath = "/.well-known/openid-configuration"

// Credentials lists a client's federated credentials
// (storage.FederatedCredentials).
type Credentials interface {
	ListFederatedCredentials(ctx context.Context, clientID int64) ([]storage.FederatedCredential, error)
}

// Options configure a Verifier.
type Options struct {
	// Credentials are the clients' federated credentials.
	Credentials Credentials
	// Fetcher fetches discovery documents and JWK Sets (*egress.Client);
	// nil refuses every token.
	Fetcher assertion.Fetcher
	// AllowHTTP accepts a jwks_uri over http or on a non-public host, as
	// the Fetcher must then too: tests and local development only.
	AllowHTTP bool
	// Used remembers each token's jti (or digest) until it expires.
	Used assertion.OneTimeIDs
	// MaxLifetime bounds how far ahead exp may be; DefaultMaxLifetime
	// when 0.
	MaxLifetime time.Duration
	// Leeway is the clock skew allowed on exp, nbf and iat; DefaultLeeway
	// when 0.
	Leeway time.Duration
	// MaxAge is how long an issuer's keys are used before they are
	// fetched again; DefaultMaxAge when 0.
	MaxAge time.Duration
	// RefetchInterval is the least time between two fetches of one
	// issuer's keys, whatever the tokens' kids say;
	// DefaultRefetchInterval when 0.
	RefetchInterval time.Duration
	// MaxIssuers bounds the issuers whose keys are cached;
	// DefaultMaxIssuers when 0.
	MaxIssuers int
	Now        func() time.Time
}

// Verifier checks tokens of external issuers against the federated
// credentials of the client they are presented for.
type Verifier struct {
	opts Options

	mu      sync.Mutex
	issuers map[string]*issuerKeys
}

type issuerKeys struct {
	mu        sync.Mutex // held during a fetch: one fetch per issuer at a time
	set       *assertion.KeySet
	fetchedAt time.Time
	triedAt   time.Time
}

// New returns a Verifier.
func New(opts Options) (*Verifier, error) {
	if opts.Credentials == nil || opts.Used == nil {
		return nil, errors.New("federation: credentials and a one-time id store are required")
	}
	if opts.MaxLifetime <= 0 {
		opts.MaxLifetime = DefaultMaxLifetime
	}
	if opts.Leeway <= 0 {
		opts.Leeway = DefaultLeeway
	}
	if opts.RefetchInterval <= 0 {
		opts.RefetchInterval = DefaultRefetchInterval
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	opts.MaxAge = max(opts.MaxAge, opts.RefetchInterval)
	if opts.MaxIssuers <= 0 {
		opts.MaxIssuers = DefaultMaxIssuers
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Verifier{opts: opts, issuers: make(map[string]*issuerKeys)}, nil
}

// Check returns nil when e authenticates client c: one of c's federated
// credentials names e's issuer exactly; the issuer's keys, found through
// its discovery document, verify e's signature; exp is present, not past
// and at most MaxLifetime ahead; nbf and iat, when present, are not in the
// future; and for one credential of that issuer, sub equals its subject,
// aud names one of its audiences and every claim condition holds (a
// top-level string claim of exactly that value). The token's jti (its
// digest when it has none) is then spent until exp, per issuer, so a replay
// is refused on every instance and for every client. Every refusal is
// assertion.ErrInvalid; a failure of the credential or one-time stores is
// assertion.ErrUnavailable.
func (v *Verifier) Check(ctx context.Context, c storage.Client, e *assertion.External) error {
	all, err := v.opts.Credentials.ListFederatedCredentials(ctx, c.ID)
	if err != nil {
		return fmt.Errorf("%w: %w", assertion.ErrUnavailable, err)
	}
	creds := slices.DeleteFunc(all, func(fc storage.FederatedCredential) bool { return fc.Issuer != e.Issuer })
	if len(creds) == 0 {
		return invalid("no federated credential of the client trusts the token's issuer")
	}
	keys, err := v.keys(ctx, e.Issuer, e.KID())
	if err != nil {
		return err
	}
	claims, members, err := e.Verify(keys)
	if err != nil {
		return err
	}
	now := v.opts.Now()
	leeway := v.opts.Leeway
	if claims.Expiry == nil {
		return invalid("exp is missing")
	}
	exp := claims.Expiry.Time()
	if !now.Before(exp.Add(leeway)) {
		return invalid("expired")
	}
	if exp.After(now.Add(v.opts.MaxLifetime + leeway)) {
		return invalid("exp is too far ahead")
	}
	if claims.NotBefore != nil && claims.NotBefore.Time().After(now.Add(leeway)) {
		return invalid("nbf is in the future")
	}
	if claims.IssuedAt != nil && claims.IssuedAt.Time().After(now.Add(leeway)) {
		return invalid("iat is in the future")
	}
	matched := slices.ContainsFunc(creds, func(fc storage.FederatedCredential) bool {
		return claims.Subject == fc.Subject &&
			slices.ContainsFunc(fc.Audiences, claims.Audience.Contains) &&
			conditionsHold(fc.Claims, members)
	})
	if !matched {
		return invalid("no federated credential of the issuer matches sub, aud and the claim conditions")
	}
	id := "token:" + e.Digest()
	if claims.ID != "" {
		if len(claims.ID) > maxJTI {
			return invalid("jti is too long")
		}
		id = "jti:" + claims.ID
	}
	// Hashed with the issuer: fixed length, and one issuer's jti cannot
	// spend another's.
	sum := sha256.Sum256([]byte("federation\x00" + e.Issuer + "\x00" + id))
	err = v.opts.Used.UseOnce(ctx, hex.EncodeToString(sum[:]), exp.Add(leeway))
	if errors.Is(err, storage.ErrAlreadyExists) {
		return invalid("the token was used before")
	}
	if err != nil {
		return fmt.Errorf("%w: %w", assertion.ErrUnavailable, err)
	}
	return nil
}

// conditionsHold reports whether every condition is a top-level string
// member of the token with exactly that value.
func conditionsHold(conditions map[string]string, members map[string]json.RawMessage) bool {
	for name, want := range conditions {
		raw, ok := members[name]
		if !ok {
			return false
		}
		var got string
		if err := json.Unmarshal(raw, &got); err != nil || got != want {
			return false
		}
	}
	return true
}

func invalid(reason string) error { return fmt.Errorf("%w: %s", assertion.ErrInvalid, reason) }

func (v *Verifier) entry(issuer string) *issuerKeys {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.issuers[issuer]
	if !ok {
		if len(v.issuers) >= v.opts.MaxIssuers {
			// Forget everything rather than track recency: refilling costs
			// one discovery per active issuer.
			clear(v.issuers)
		}
		e = &issuerKeys{}
		v.issuers[issuer] = e
	}
	return e
}

// keys returns the issuer's key set for a token naming kid ("" for none):
// cached for MaxAge, fetched again at once for an unknown kid but at most
// once per RefetchInterval, and not tried again within RefetchInterval
// after a failure, so a down or hostile issuer costs one fetch per
// interval.
func (v *Verifier) keys(ctx context.Context, issuer, kid string) (*assertion.KeySet, error) {
	if v.opts.Fetcher == nil {
		return nil, invalid("federation is not enabled")
	}
	e := v.entry(issuer)
	e.mu.Lock()
	defer e.mu.Unlock()
	now := v.opts.Now()
	recent := !e.triedAt.IsZero() && now.Sub(e.triedAt) < v.opts.RefetchInterval
	if e.set != nil && now.Sub(e.fetchedAt) < v.opts.MaxAge && (kid == "" || e.set.HasKID(kid) || recent) {
		return e.set, nil
	}
	if e.set == nil && recent {
		return nil, invalid("the issuer's keys failed recently")
	}
	e.triedAt = now
	set, err := v.fetch(ctx, issuer)
	if err != nil {
		e.set = nil
		return nil, err
	}
	e.set, e.fetchedAt = set, now
	return set, nil
}

// fetch discovers the issuer's jwks_uri and fetches its keys. The
// discovery document must speak for the issuer exactly (OpenID Connect
// Discovery 1.0 §4.3), or a document served anywhere could lend its keys
// to any issuer name.
func (v *Verifier) fetch(ctx context.Context, issuer string) (*assertion.KeySet, error) {
	body, err := v.opts.Fetcher.Get(ctx, strings.TrimSuffix(issuer, "/")+DiscoveryPath)
	if err != nil {
		return nil, fmt.Errorf("%w: discovery document: %w", assertion.ErrInvalid, err)
	}
	doc, err := ParseDiscovery(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", assertion.ErrInvalid, err)
	}
	if doc.Issuer != issuer {
		return nil, invalid("the discovery document names another issuer")
	}
	if err := egress.CheckURL(doc.JWKSURI, v.opts.AllowHTTP); err != nil {
		return nil, fmt.Errorf("%w: jwks_uri: %w", assertion.ErrInvalid, err)
	}
	body, err = v.opts.Fetcher.Get(ctx, doc.JWKSURI)
	if err != nil {
		return nil, fmt.Errorf("%w: jwks_uri: %w", assertion.ErrInvalid, err)
	}
	set, err := assertion.ParseKeySet(body)
	if err != nil {
		return nil, fmt.Errorf("%w: jwks_uri: %w", assertion.ErrInvalid, err)
	}
	return set, nil
}
