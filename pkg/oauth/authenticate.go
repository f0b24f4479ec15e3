package oauth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ory/fosite"

	"github.com/tollgate/tollgate/pkg/allowlist"
	"github.com/tollgate/tollgate/pkg/assertion"
	"github.com/tollgate/tollgate/pkg/bruteforce"
	"github.com/tollgate/tollgate/pkg/reqctx"
	"github.com/tollgate/tollgate/storage"
)

// Ways a request presents client credentials.
const (
	MethodBasic  = "client_secret_basic"
	MethodPost   = "client_secret_post"
	MethodAPIKey = "api_key"
	// MethodPrivateKeyJWT is a JWT client assertion (RFC 7523 §2.2).
	MethodPrivateKeyJWT = "private_key_jwt"
	// MethodFederated is a token of an external OpenID Connect issuer sent
	// as a client assertion, with the same parameters as private_key_jwt
	// (workload identity federation).
	MethodFederated = "federated"
)

// Credentials are the client credentials one request presents, read by the
// HTTP layer (which knows the wire formats) before authentication.
type Credentials struct {
	ClientID int64
	Secret   string
	Method   string
	// Assertion is the parsed client assertion of MethodPrivateKeyJWT,
	// whose iss and sub are ClientID.
	Assertion *assertion.Assertion
	// External is the parsed token of MethodFederated, presented for
	// ClientID.
	External *assertion.External
}

type credentialsKey struct{}

// WithCredentials returns a context carrying the request's credentials.
func WithCredentials(ctx context.Context, c Credentials) context.Context {
	return context.WithValue(ctx, credentialsKey{}, c)
}

func credentialsFrom(ctx context.Context) (Credentials, bool) {
	c, ok := ctx.Value(credentialsKey{}).(Credentials)
	return c, ok
}

// Guard holds back identities and sources that failed too often
// (*bruteforce.Guard of kind client). Begin reserves the attempt; the
// Attempt's Failed answers a *bruteforce.BlockedError when a wrong secret
// came during a block.
type Guard interface {
	Begin(ctx context.Context, id, source string) (bruteforce.Attempt, error)
}

// AccountChecker tells whether an account and its ancestors are active.
type AccountChecker interface {
	AccountActive(ctx context.Context, id int64) (bool, error)
}

// UsageRecorder notes successful uses of a credential.
type UsageRecorder interface {
	Record(clientID int64, at time.Time)
}

// AssertionChecker verifies a client assertion against the keys client c
// registered (*assertion.Checker): nil, an error wrapping
// assertion.ErrInvalid for a refusal, or one wrapping
// assertion.ErrUnavailable for an outage.
type AssertionChecker interface {
	Check(ctx context.Context, c storage.Client, a *assertion.Assertion) error
}

// FederationChecker verifies a token of an external issuer against the
// federated credentials of client c (*federation.Verifier): nil, an error
// wrapping assertion.ErrInvalid for a refusal, or one wrapping
// assertion.ErrUnavailable for an outage.
type FederationChecker interface {
	Check(ctx context.Context, c storage.Client, e *assertion.External) error
}

// Authenticator authenticates clients: the one place that decides whether
// a client id and a secret (or an API key) are good.
type Authenticator struct {
	clients  storage.Clients
	accounts AccountChecker
	hasher   fosite.Hasher
	usage    UsageRecorder
	guard    Guard
	// assertions verifies private_key_jwt; nil refuses every assertion.
	assertions AssertionChecker
	// federation verifies tokens of external issuers; nil refuses them.
	federation FederationChecker
	// refusals audits the calls an allowlist refused; nil audits none.
	refusals *allowlist.Refusals
	logger   *slog.Logger
	now      func() time.Time
	// dummy is the hash of a random secret nobody knows, compared against
	// where there is no client to compare with.
	dummy []byte
}

// NewAuthenticator returns an Authenticator. guard may be nil: no
// brute-force protection.
func NewAuthenticator(clients storage.Clients, accounts AccountChecker, hasher fosite.Hasher, usage UsageRecorder, guard Guard, now func() time.Time) *Authenticator {
	a := &Authenticator{clients: clients, accounts: accounts, hasher: hasher, usage: usage, guard: guard, now: now}
	// The hash has the form of a real one (same scheme, same pepper), so a
	// comparison with it costs what a real one does.
	a.dummy, _ = hasher.Hash(context.Background(), []byte(rand.Text()))
	return a
}

// WithAssertions makes a accept client assertions of the clients
// registered for private_key_jwt, checked by checker; refusals are logged
// on logger at debug level with their reason (never the assertion). It
// returns a, and must be called before a is used.
func (a *Authenticator) WithAssertions(checker AssertionChecker, logger *slog.Logger) *Authenticator {
	a.assertions, a.logger = checker, logger
	return a
}

// WithFederation makes a accept tokens of external issuers for the
// clients whose federated credentials trust them, checked by checker;
// refusals are logged like those of assertions. It returns a, and must be
// called before a is used.
func (a *Authenticator) WithFederation(checker FederationChecker, logger *slog.Logger) *Authenticator {
	a.federation = checker
	if logger != nil {
		a.logger = logger
	}
	return a
}

// WithRefusals makes a record in the audit trail (bounded by r) the
// authentications refused because the caller's address is outside the
// client's allowed_cidrs. It returns a, and must be called before a is
// used.
func (a *Authenticator) WithRefusals(r *allowlist.Refusals) *Authenticator {
	a.refusals = r
	return a
}

type callerKey struct{}

// WithCaller returns ctx whose caller address, for the allowlists, is addr
// ("" for unknown: a client with an allowlist is refused): for an endpoint
// whose peer is not the caller (the check endpoint, whose peer is the API
// gateway).
func WithCaller(ctx context.Context, addr, where string) context.Context {
	return context.WithValue(ctx, callerKey{}, caller{addr: addr, where: where})
}

type caller struct{ addr, where string }

// callerOf returns the address a client's allowlist is held to: the one
// WithCaller set, else the request's (reqctx.Addr, through the trusted
// proxies), and where the call came in.
func callerOf(ctx context.Context) caller {
	if c, ok := ctx.Value(callerKey{}).(caller); ok {
		return c
	}
	return caller{addr: reqctx.Addr(ctx), where: "token endpoint"}
}

// failedComparisons is how many secret comparisons every refused secret
// costs, whether the client exists or not: the current secret and the
// previous one (or the dummy hash in place of either). An unknown client
// id and a known one with a wrong secret take the same time.
const failedComparisons = 2

// compareDummy spends the time of n comparisons that cannot succeed.
func (a *Authenticator) compareDummy(ctx context.Context, secret string, n int) {
	for range n {
		_ = a.hasher.Compare(ctx, a.dummy, []byte(secret))
	}
}

// Strategy is a fosite.ClientAuthenticationStrategy authenticating the
// credentials the HTTP layer put in the context.
func (a *Authenticator) Strategy(ctx context.Context, _ *http.Request, _ url.Values) (fosite.Client, error) {
	creds, ok := credentialsFrom(ctx)
	if !ok {
		return nil, fosite.ErrInvalidClient
	}
	return a.Authenticate(ctx, creds)
}

var _ fosite.ClientAuthenticationStrategy = (*Authenticator)(nil).Strategy

// Authenticate checks creds. A client that is unknown, disabled, expired or
// in a disabled account, and a wrong secret, all answer
// fosite.ErrInvalidClient, and count as a failure of the client id and the
// request's source (reqctx.Source). The secret is always compared: a right one
// gets in even while the client id or the source is held back (client
// secrets are 256-bit random, so a block has nothing to protect from a
// right secret), and resets the client id's count; during a block a wrong
// one answers a *bruteforce.BlockedError instead of
// fosite.ErrInvalidClient. A backend failure answers its error, recorded as
// the request's outage, and counts nothing.
func (a *Authenticator) Authenticate(ctx context.Context, creds Credentials) (*Client, error) {
	return bruteforce.Check(ctx, a.guard, strconv.FormatInt(creds.ClientID, 10), reqctx.Source(ctx), fosite.ErrInvalidClient,
		func() (*Client, error) { return a.authenticate(ctx, creds) })
}

func (a *Authenticator) authenticate(ctx context.Context, creds Credentials) (*Client, error) {
	switch creds.Method {
	case MethodPrivateKeyJWT:
		return a.authenticateAssertion(ctx, creds)
	case MethodFederated:
		return a.authenticateFederated(ctx, creds)
	}
	c, err := a.clients.GetClient(ctx, creds.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		a.compareDummy(ctx, creds.Secret, failedComparisons)
		return nil, fosite.ErrInvalidClient
	}
	if err != nil {
		return nil, RecordOutage(ctx, fmt.Errorf("get client: %w", err))
	}
	now := a.now()
	if !c.Usable(now) {
		a.compareDummy(ctx, creds.Secret, failedComparisons)
		noteRefusal(ctx, c)
		return nil, fosite.ErrInvalidClient
	}
	if c.UsesPrivateKeyJWT() {
		// Its secret, generated at creation and never shown, is no
		// credential: only an assertion is.
		a.compareDummy(ctx, creds.Secret, failedComparisons)
		noteRefusal(ctx, c)
		return nil, fosite.ErrInvalidClient
	}
	gen := c.Generation
	if err := a.hasher.Compare(ctx, []byte(c.SecretHash), []byte(creds.Secret)); err != nil {
		if !c.PreviousSecretValid(now) {
			a.compareDummy(ctx, creds.Secret, failedComparisons-1)
			noteRefusal(ctx, c)
			return nil, fosite.ErrInvalidClient
		}
		if a.hasher.Compare(ctx, []byte(c.PreviousSecretHash), []byte(creds.Secret)) != nil {
			noteRefusal(ctx, c)
			return nil, fosite.ErrInvalidClient
		}
		gen = c.PreviousGeneration
	}
	return a.accept(ctx, c, gen, now)
}

// accept returns the authenticated client c, whose credential carries
// generation gen, if its account is active.
func (a *Authenticator) accept(ctx context.Context, c storage.Client, gen int64, now time.Time) (*Client, error) {
	active, err := a.accounts.AccountActive(ctx, c.AccountID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fosite.ErrInvalidClient
	}
	if err != nil {
		return nil, RecordOutage(ctx, fmt.Errorf("check account: %w", err))
	}
	if !active {
		noteRefusal(ctx, c)
		return nil, fosite.ErrInvalidClient
	}
	// Only now, with the credential proven: an address outside its
	// allowlist is refused like a wrong secret, and says nothing of why
	// but in the audit trail.
	if from := callerOf(ctx); !allowlist.Allows(c.AllowedCIDRs, from.addr) {
		a.refusals.Refused(ctx, allowlist.Refusal{Client: c, Addr: from.addr, Where: from.where})
		return nil, fosite.ErrInvalidClient
	}
	if a.usage != nil {
		a.usage.Record(c.ID, now)
	}
	client := NewClient(c)
	client.AuthGeneration = gen
	return client, nil
}

// authenticateAssertion checks a private_key_jwt assertion: the client it
// names must be usable and registered for private_key_jwt, and the
// assertion must verify against its keys (assertion.Verifier's rules,
// the jti's single use included). A client_secret_* client cannot
// authenticate this way.
func (a *Authenticator) authenticateAssertion(ctx context.Context, creds Credentials) (*Client, error) {
	if creds.Assertion == nil || creds.Assertion.ClientID != creds.ClientID {
		return nil, fosite.ErrInvalidClient
	}
	c, err := a.clients.GetClient(ctx, creds.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fosite.ErrInvalidClient
	}
	if err != nil {
		return nil, RecordOutage(ctx, fmt.Errorf("get client: %w", err))
	}
	now := a.now()
	if !c.Usable(now) || !c.UsesPrivateKeyJWT() || a.assertions == nil {
		return nil, fosite.ErrInvalidClient
	}
	err = a.assertions.Check(ctx, c, creds.Assertion)
	if errors.Is(err, assertion.ErrUnavailable) {
		return nil, RecordOutage(ctx, err)
	}
	if err != nil {
		if a.logger != nil {
			a.logger.DebugContext(ctx, "client assertion refused", slog.Int64("client_id", c.ID), slog.String("reason", err.Error()))
		}
		return nil, fosite.ErrInvalidClient
	}
	return a.accept(ctx, c, c.Generation, now)
}

// authenticateFederated checks a token of an external issuer presented for
// the client creds names: the client must be usable, and the token must
// satisfy one of its federated credentials (federation.Verifier's rules,
// the single use included). It works whatever the client's own
// authentication method: adding a federated credential is the opt-in.
func (a *Authenticator) authenticateFederated(ctx context.Context, creds Credentials) (*Client, error) {
	if creds.External == nil || a.federation == nil {
		return nil, fosite.ErrInvalidClient
	}
	c, err := a.clients.GetClient(ctx, creds.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fosite.ErrInvalidClient
	}
	if err != nil {
		return nil, RecordOutage(ctx, fmt.Errorf("get client: %w", err))
	}
	now := a.now()
	if !c.Usable(now) { // no way around a disabled or expired client
		return nil, fosite.ErrInvalidClient
	}
	err = a.federation.Check(ctx, c, creds.External)
	if errors.Is(err, assertion.ErrUnavailable) {
		return nil, RecordOutage(ctx, err)
	}
	if err != nil {
		if a.logger != nil {
			a.logger.DebugContext(ctx, "federated client assertion refused", slog.Int64("client_id", c.ID), slog.String("reason", err.Error()))
		}
		return nil, fosite.ErrInvalidClient
	}
	return a.accept(ctx, c, c.Generation, now)
}
