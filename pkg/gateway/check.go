// Package gateway owns the check endpoint, GET|POST /auth/check, which API
// gateways (nginx auth_request, Traefik ForwardAuth, Envoy ext_authz) call
// for every API request: is the credential good, may it use the required
// scopes on the target account, and is it still inside its per-second
// limit, its quota and the budgets of its account and every ancestor (one
// pkg/meter decision, which also counts the call). The answer is in the
// status code and headers, so the gateway needs no code.
package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/tollgate/tollgate/pkg/allowlist"
	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/pkg/bruteforce"
	"github.com/tollgate/tollgate/pkg/dpop"
	"github.com/tollgate/tollgate/pkg/meter"
	"github.com/tollgate/tollgate/pkg/oauth"
	"github.com/tollgate/tollgate/pkg/ratelimit"
	"github.com/tollgate/tollgate/pkg/reqctx"
	"github.com/tollgate/tollgate/pkg/retryafter"
	"github.com/tollgate/tollgate/pkg/tokens"
	"github.com/tollgate/tollgate/pkg/tracing"
	"github.com/tollgate/tollgate/pkg/usage"
	"github.com/tollgate/tollgate/storage"
)

// Headers the gateway sends to describe what the API request needs.
const (
	HeaderScope     = "X-Tollgate-Scope"      // space-separated scopes, all required
	HeaderRateClass = "X-Tollgate-Rate-Class" // the rate class; "default" when absent
	HeaderAccount   = "X-Tollgate-Account"    // the account the API request acts on
	HeaderAPIKey    = "X-API-Key"             // #nosec G101 -- a header name, not a key
	// HeaderCost is what the call spends of every quota: a decimal integer
	// from 1 to meter.MaxCost; 1 when absent.
	HeaderCost = "X-Tollgate-Cost"
)

// Headers naming the API request, which the gateway sends so that a DPoP
// proof (RFC 9449) can be checked against the request it was made for:
// Traefik's ForwardAuth names, which nginx and Envoy can set too.
const (
	HeaderForwardedMethod = "X-Forwarded-Method" // the API request's method; the check request's own when absent
	HeaderForwardedProto  = "X-Forwarded-Proto"  // http or https, as the client addressed the API
	HeaderForwardedHost   = "X-Forwarded-Host"   // the host (and port) the client addressed
	HeaderForwardedURI    = "X-Forwarded-Uri"    // the request target: path and query
)

// Headers Tollgate answers with, for the gateway to pass to the API.
const (
	HeaderClientID  = "X-Tollgate-Client-Id"
	HeaderAccountID = "X-Tollgate-Account-Id"
	HeaderSubject   = "X-Tollgate-Subject"
	HeaderScopes    = "X-Tollgate-Scopes"
	// HeaderRefusal says which kind of limit refused a 429: rate or quota.
	HeaderRefusal = meter.HeaderRefusal
)

// DefaultClass is the rate class of requests that name none.
const DefaultClass = "default"

// Accounts answers whether an account is in another's subtree, and the
// budgets that hold for an account's credentials (cached reads).
type Accounts interface {
	AccountInSubtree(ctx context.Context, rootID, id int64) (bool, error)
	AccountBudgets(ctx context.Context, id int64) (storage.BudgetChain, error)
}

// Metrics counts rate-limit decisions. Class labels come from the
// configured set only.
type Metrics interface {
	RateLimited(class string, allowed bool)
}

type nopMetrics struct{}

func (nopMetrics) RateLimited(string, bool) {}

// Options configure the check endpoint.
type Options struct {
	Tokens        *tokens.Service
	Authenticator *oauth.Authenticator
	Accounts      Accounts
	// Meter takes the one decision of each call (the credential's rate
	// class and quota, its account's and ancestors' budgets) and counts
	// it; a failure answers 503, unless it is wrapped in meter.FailOpen
	// (credentials are still checked).
	Meter meter.Decider
	// TokenMeter takes the decision of a call made with a token whose
	// value names its root account together with reading its record: one
	// Redis round trip for the whole check (ADR 0013). A failure answers
	// 503, unless it is wrapped in meter.FailOpenTokens, which reads the
	// record alone and fails open when only the decision failed (Redis
	// full). Nil: every token is validated first, then Meter decides.
	TokenMeter meter.TokenDecider
	Classes    map[string]ratelimit.Limit
	// Counter counts the calls of a known credential refused before the
	// decision (a wrong secret: unauthorized; a scope or account refusal:
	// forbidden); nil counts none.
	Counter usage.Counter
	// Events hears of the quota thresholds a call crossed; nil: none. It
	// must not block.
	Events usage.QuotaEvents
	// Now is the clock of quota periods and count minutes; time.Now when
	// nil.
	Now func() time.Time
	// DPoP verifies the proofs that must come with DPoP-bound tokens; nil:
	// a bound token is never good.
	DPoP *dpop.Verifier
	// Refusals audits the calls refused by a token's allowlist; nil
	// audits none.
	Refusals *allowlist.Refusals
	Metrics  Metrics
	Logger   *slog.Logger
}

// Check serves /auth/check.
type Check struct{ opts Options }

// New returns the check endpoint.
func New(opts Options) *Check {
	if opts.Metrics == nil {
		opts.Metrics = nopMetrics{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Check{opts: opts}
}

// identity is who a good credential is.
type identity struct {
	clientID  int64
	accountID int64
	subject   string
	scopes    []string
	overrides map[string]storage.RateLimit
	quota     *storage.Quota
	// fenced is the token's client when it has an allowlist, held to the
	// API caller's address by fromAllowed (an API key's is held to it by
	// the Authenticator).
	fenced *storage.Client
	// named is a token whose record is read with the decision
	// (Options.TokenMeter): its subject and scopes are known only then.
	named *namedToken
}

// namedToken is a token whose value named its root account, account and
// client, checked as far as it can be before its record is read.
type namedToken struct {
	tokens.Named
	// withProof: it came with the DPoP scheme and a proof of the key
	// jkt, made for the API request (verified, but not yet against the
	// key the token is bound to).
	withProof bool
	jkt       string
	value     string // the token
}

// Attributes of the check decision's span.
const (
	keyCredential = attribute.Key("tollgate.check.credential") // bearer, dpop or api_key
	keyDecision   = attribute.Key("tollgate.check.decision")   // decisionOf the status
	keyRateClass  = attribute.Key("tollgate.rate_class")       // a configured class
)

// ServeHTTP answers any method: gateways forward the API request's own.
// When the request is traced, the answer carries its traceparent, which the
// gateway can hand to the API so that its spans join the same trace, and the
// decision has a span of its own.
func (c *Check) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tracing.Inject(r.Context(), w.Header())
	ctx, span := tracing.Start(r.Context(), "check decision")
	if !span.IsRecording() {
		c.decide(w, r)
		return
	}
	defer span.End()
	dw := &decisionWriter{ResponseWriter: w, status: http.StatusOK}
	c.decide(dw, r.WithContext(ctx))
	span.SetAttributes(keyDecision.String(decisionOf(dw.status)))
	if dw.status >= http.StatusInternalServerError {
		tracing.Fail(span, "backend unavailable")
	}
}

// noteAttr sets kv on span when it records (and allocates nothing when it
// does not).
func noteAttr(span trace.Span, kv attribute.KeyValue) {
	if span.IsRecording() {
		span.SetAttributes(kv)
	}
}

// decisionWriter notes the status of the check's answer, for its span.
type decisionWriter struct {
	http.ResponseWriter
	status int
}

func (w *decisionWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

// decisionOf names the decision an answer's status carries, from a fixed
// set.
func decisionOf(status int) string {
	switch status {
	case http.StatusOK:
		return "allow"
	case http.StatusBadRequest:
		return "invalid_request"
	case http.StatusUnauthorized:
		return "unauthenticated"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusTooManyRequests:
		return "too_many_requests"
	case 499:
		return "client_closed"
	}
	return "unavailable"
}

// decide takes the check's decision and writes it.
func (c *Check) decide(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	// A gateway that adds its header instead of replacing the caller's
	// would let the caller's own value through first: refuse repeats.
	for _, name := range []string{HeaderRateClass, HeaderScope, HeaderAccount, HeaderCost} {
		if len(r.Header.Values(name)) > 1 {
			answer(w, http.StatusBadRequest, "invalid_request", "the "+name+" header is repeated")
			return
		}
	}
	class := r.Header.Get(HeaderRateClass)
	if class == "" {
		class = DefaultClass
	}
	limit, ok := c.opts.Classes[class]
	if !ok {
		answer(w, http.StatusBadRequest, "invalid_request", "unknown rate class")
		return
	}
	noteAttr(trace.SpanFromContext(r.Context()), keyRateClass.String(class))
	required := strings.Fields(r.Header.Get(HeaderScope))
	var target int64
	if raw := r.Header.Get(HeaderAccount); raw != "" {
		id, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || id <= 0 {
			answer(w, http.StatusBadRequest, "invalid_request", "the target account must be an account id")
			return
		}
		target = id
	}
	cost, ok := parseCost(r.Header.Get(HeaderCost))
	if !ok {
		answer(w, http.StatusBadRequest, "invalid_request", "the "+HeaderCost+" header must be an integer from 1 to "+strconv.Itoa(meter.MaxCost))
		return
	}

	id, scheme, err := c.identify(r)
	if err != nil {
		c.refuse(w, r, err, scheme, class)
		return
	}
	reqctx.SetPrincipal(r.Context(), reqctx.Principal{ClientID: id.clientID})
	if id.fenced != nil && !allowlist.Allows(id.fenced.AllowedCIDRs, apiCaller(r)) {
		if err := c.settle(r, &id); err != nil {
			c.refuse(w, r, err, scheme, class)
			return
		}
	}
	if !c.fromAllowed(r, id) {
		c.challenge(h, scheme, "invalid_token", "")
		answer(w, http.StatusUnauthorized, "invalid_token", "no valid credential")
		return
	}

	if id.named == nil && !c.scoped(w, r, id, scheme, class, required) {
		return
	}
	if target != 0 && target != id.accountID {
		within, err := c.opts.Accounts.AccountInSubtree(r.Context(), id.accountID, target)
		if err != nil {
			c.unavailable(w, r, err)
			return
		}
		if !within {
			if err := c.settle(r, &id); err != nil {
				c.refuse(w, r, err, scheme, class)
				return
			}
			if !c.scoped(w, r, id, scheme, class, required) {
				return
			}
			c.count(r.Context(), id, class, usage.OutcomeForbidden)
			answer(w, http.StatusForbidden, "forbidden", "the credential may not act on this account")
			return
		}
	}

	if o, ok := id.overrides[class]; ok {
		limit = ratelimit.Limit{Rate: o.Rate, Burst: o.Burst}
	}
	chain, err := c.opts.Accounts.AccountBudgets(r.Context(), id.accountID)
	if err != nil {
		c.unavailable(w, r, fmt.Errorf("account budgets: %w", err))
		return
	}
	req := meter.Request{Root: chain.Root, AccountID: id.accountID, CredentialID: id.clientID, Class: class, Cost: cost,
		Rate: limit, Quota: id.quota, Now: c.opts.Now()}
	for _, b := range chain.Budgets {
		mb := meter.Budget{AccountID: b.AccountID, Quota: b.Budget.Quota}
		if rl, ok := b.Budget.RateLimits[class]; ok {
			mb.Rate = &ratelimit.Limit{Rate: rl.Rate, Burst: rl.Burst}
		}
		if mb.Rate != nil || mb.Quota != nil {
			req.Budgets = append(req.Budgets, mb)
		}
	}
	var dec meter.Decision
	if id.named != nil {
		if chain.Root != id.named.Names.Root {
			// Accounts never move between trees: only a token minted
			// for another tree names another root.
			c.refuse(w, r, errUnauthenticated, scheme, class)
			return
		}
		var ok bool
		if dec, ok = c.decideNamed(w, r, &id, req, scheme, class, required); !ok {
			return
		}
	} else if dec, err = c.opts.Meter.Decide(r.Context(), req); err != nil {
		c.unavailable(w, r, fmt.Errorf("meter: %w", err))
		return
	}
	meter.Headers(h, dec)
	c.opts.Metrics.RateLimited(class, dec.Allowed)
	if c.opts.Events != nil {
		for _, e := range dec.Thresholds {
			c.opts.Events.QuotaThreshold(r.Context(), e)
		}
	}
	if refused, ok := dec.Refused(); ok {
		whose := ""
		if refused.Limit.AccountID != 0 {
			whose = " of the budget of account " + strconv.FormatInt(refused.Limit.AccountID, 10)
		}
		if refused.Limit.Kind == meter.KindQuota {
			answer(w, http.StatusTooManyRequests, "quota_exceeded", "over the quota"+whose+"; it refills at the start of the next UTC "+string(refused.Limit.Quota.Period))
			return
		}
		answer(w, http.StatusTooManyRequests, "rate_limited", "over the rate limit of class "+class+whose)
		return
	}
	h.Set(HeaderClientID, strconv.FormatInt(id.clientID, 10))
	h.Set(HeaderAccountID, strconv.FormatInt(id.accountID, 10))
	h.Set(HeaderSubject, id.subject)
	h.Set(HeaderScopes, strings.Join(id.scopes, " "))
	w.WriteHeader(http.StatusOK)
}

// refuse answers a credential that identify (or, for a named token, the
// reading of its record) refused with err.
func (c *Check) refuse(w http.ResponseWriter, r *http.Request, err error, scheme, class string) {
	h := w.Header()
	var blocked *bruteforce.BlockedError
	switch {
	case errors.As(err, &blocked):
		retryafter.Set(h, blocked.RetryAfter)
		answer(w, http.StatusTooManyRequests, "slow_down", "too many failed attempts for this credential; retry later")
	case errors.Is(err, errUnauthenticated):
		c.countKnown(r.Context(), err, class)
		c.challenge(h, scheme, "invalid_token", "")
		answer(w, http.StatusUnauthorized, "invalid_token", "no valid credential")
	case errors.Is(err, errBoundToken):
		c.challenge(h, schemeDPoP, "invalid_token", "")
		answer(w, http.StatusUnauthorized, "invalid_token", "the token is bound to a DPoP key: send it with the DPoP scheme and a proof")
	case errors.Is(err, dpop.ErrInvalid):
		c.challenge(h, schemeDPoP, "invalid_dpop_proof", "")
		answer(w, http.StatusUnauthorized, "invalid_dpop_proof", "the DPoP proof is missing or invalid")
	case errors.Is(err, errNoRequestURL):
		answer(w, http.StatusBadRequest, "invalid_request", "a DPoP proof needs the API request's URL: the gateway must forward "+
			HeaderForwardedProto+", "+HeaderForwardedHost+" and "+HeaderForwardedURI+" once each")
	default:
		c.unavailable(w, r, err)
	}
}

// scoped reports whether the credential has every required scope, and
// answers 403 when it lacks one.
func (c *Check) scoped(w http.ResponseWriter, r *http.Request, id identity, scheme, class string, required []string) bool {
	for _, s := range required {
		if !slices.Contains(id.scopes, s) {
			c.count(r.Context(), id, class, usage.OutcomeForbidden)
			c.challenge(w.Header(), scheme, "insufficient_scope", strings.Join(required, " "))
			answer(w, http.StatusForbidden, "insufficient_scope", "the credential lacks a required scope")
			return false
		}
	}
	return true
}

// decideNamed reads a named token's record and takes the decision in one
// step (Options.TokenMeter), then finishes the token's validation as
// Validate does, its DPoP binding and its scopes, filling in id. A token
// whose record is missing, expired or revoked is refused with nothing
// spent. ok is false when it answered.
func (c *Check) decideNamed(w http.ResponseWriter, r *http.Request, id *identity, req meter.Request, scheme, class string, required []string) (meter.Decision, bool) {
	named := id.named
	terms := c.opts.Tokens.Terms(named.Named)
	terms.JKT, terms.Scopes = named.jkt, required
	rec, dec, err := c.opts.TokenMeter.DecideToken(r.Context(), named.ID, terms, req)
	admitted := !errors.Is(err, meter.ErrNotAdmitted)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		c.refuse(w, r, errUnauthenticated, scheme, class)
		return meter.Decision{}, false
	case err != nil && admitted:
		c.unavailable(w, r, fmt.Errorf("meter: %w", err))
		return meter.Decision{}, false
	}
	// Refused by its terms, nothing was spent: the validation below tells
	// why, as it would have without the decision.
	v, err := c.opts.Tokens.ValidateNamed(r.Context(), named.Named, rec)
	if errors.Is(err, tokens.ErrInactive) {
		err = errUnauthenticated
	}
	if err == nil {
		err = bound(v.Token.JKT, named.withProof, named.jkt)
	}
	if err != nil {
		c.refuse(w, r, err, scheme, class)
		return meter.Decision{}, false
	}
	id.subject, id.scopes = subjectOf(v.Token), v.Token.Scopes
	if !c.scoped(w, r, *id, scheme, class, required) {
		return meter.Decision{}, false
	}
	if !admitted {
		// The terms and the validation disagree: refuse all the same.
		c.refuse(w, r, errUnauthenticated, scheme, class)
		return meter.Decision{}, false
	}
	return dec, true
}

// settle validates a named token before a refusal that comes before the
// decision (its allowlist, its target account), so that it gets the answer
// it gets when validated first: a token its record refuses is refused for
// that, and one lacking a scope for that. A rare path, which reads the
// record on its own; a DPoP proof verified already is not verified again
// (its jti is spent).
func (c *Check) settle(r *http.Request, id *identity) error {
	nt := id.named
	if nt == nil {
		return nil
	}
	v, err := c.opts.Tokens.Validate(r.Context(), nt.value)
	if errors.Is(err, tokens.ErrInactive) {
		return errUnauthenticated
	}
	if err != nil {
		return err
	}
	if err := bound(v.Token.JKT, nt.withProof, nt.jkt); err != nil {
		return err
	}
	id.subject, id.scopes, id.named = subjectOf(v.Token), v.Token.Scopes, nil
	return nil
}

// bound checks a token's DPoP binding: a token bound to the key jkt (its
// record's) is good only with the DPoP scheme and a proof of that key
// (proofJKT, verified), an unbound one only as a Bearer token.
func bound(jkt string, withProof bool, proofJKT string) error {
	switch {
	case jkt != "" && !withProof:
		return errBoundToken
	case jkt == "" && withProof:
		return errUnauthenticated
	case withProof && proofJKT != jkt:
		return fmt.Errorf("%w: the proof's key is not the token's", dpop.ErrInvalid)
	}
	return nil
}

// subjectOf is the subject the check names for a token: its user, else its
// client.
func subjectOf(t storage.Token) string {
	if t.Subject == "" {
		return strconv.FormatInt(t.ClientID, 10)
	}
	return t.Subject
}

// parseCost reads the cost header: absent is 1; otherwise only ASCII
// digits, no sign, no leading zero, 1..meter.MaxCost.
func parseCost(raw string) (int64, bool) {
	if raw == "" {
		return 1, true
	}
	if len(raw) > len(strconv.Itoa(meter.MaxCost)) || raw[0] == '0' {
		return 0, false
	}
	var n int64
	for i := 0; i < len(raw); i++ {
		if raw[i] < '0' || raw[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(raw[i]-'0')
	}
	return n, n >= 1 && n <= meter.MaxCost
}

// count counts a refusal of a good credential before the decision
// (forbidden), through the Counter: an extra call, on a failure path only.
// A failure to count is logged, never answered.
func (c *Check) count(ctx context.Context, id identity, class, outcome string) {
	if c.opts.Counter == nil {
		return
	}
	chain, err := c.opts.Accounts.AccountBudgets(ctx, id.accountID)
	if err == nil {
		err = c.opts.Counter.Add(ctx, chain.Root, usage.Count{Minute: c.opts.Now().UTC().Truncate(time.Minute), CredentialID: id.clientID,
			Class: class, Outcome: outcome, N: 1})
	}
	if err != nil {
		c.opts.Logger.WarnContext(ctx, "check endpoint: counting a refusal failed", "err", err)
	}
}

// countKnown counts, as unauthorized, a refusal of an API key that names an
// existing credential (its secret was wrong, or the credential is off).
func (c *Check) countKnown(ctx context.Context, err error, class string) {
	var known *knownCredential
	if c.opts.Counter == nil || !errors.As(err, &known) {
		return
	}
	c.count(ctx, identity{clientID: known.clientID, accountID: known.accountID}, class, usage.OutcomeUnauthorized)
}

// knownCredential is an errUnauthenticated for an API key of an existing
// credential the Authenticator refused (oauth.Refusal), to count the
// refusal against it.
type knownCredential struct{ clientID, accountID int64 }

func (*knownCredential) Error() string { return errUnauthenticated.Error() }

func (*knownCredential) Unwrap() error { return errUnauthenticated }

var (
	errUnauthenticated = errors.New("unauthenticated")
	// errBoundToken: a DPoP-bound token presented as a Bearer token.
	errBoundToken = errors.New("dpop-bound token without the DPoP scheme")
	// errNoRequestURL: a DPoP proof, and no API request URL to check it
	// against.
	errNoRequestURL = errors.New("no forwarded request url")
)

// Authorization schemes a credential came with, for the challenge.
const (
	schemeNone   = ""
	schemeBearer = "Bearer"
	schemeDPoP   = "DPoP"
)

// identify finds and checks the credential: a Bearer or DPoP token, or an
// API key in X-API-Key or as the Basic password (any user name). It
// returns the token's scheme, for the challenge.
func (c *Check) identify(r *http.Request) (identity, string, error) {
	auth := r.Header.Values("Authorization")
	keys := r.Header.Values(HeaderAPIKey)
	if len(auth)+len(keys) != 1 {
		return identity{}, schemeNone, errUnauthenticated
	}
	span := trace.SpanFromContext(r.Context())
	if len(keys) == 1 {
		noteAttr(span, keyCredential.String("api_key"))
		return c.authenticateKey(r, keys[0])
	}
	scheme, rest, _ := strings.Cut(auth[0], " ")
	switch {
	case strings.EqualFold(scheme, "bearer"):
		noteAttr(span, keyCredential.String("bearer"))
		id, err := c.authenticateToken(r, strings.TrimSpace(rest), false)
		return id, schemeBearer, err
	case strings.EqualFold(scheme, "dpop"):
		noteAttr(span, keyCredential.String("dpop"))
		id, err := c.authenticateToken(r, strings.TrimSpace(rest), true)
		return id, schemeDPoP, err
	case strings.EqualFold(scheme, "basic"):
		noteAttr(span, keyCredential.String("api_key"))
		_, password, ok := r.BasicAuth()
		if !ok {
			return identity{}, schemeNone, errUnauthenticated
		}
		return c.authenticateKey(r, password)
	}
	return identity{}, schemeNone, errUnauthenticated
}

// authenticateToken checks an access token sent with the Bearer scheme, or
// with the DPoP scheme (withProof) and a proof of the key the token is
// bound to, made for the API request (RFC 9449 §7.1). A bound token is
// good only with its proof; an unbound one only as a Bearer token.
func (c *Check) authenticateToken(r *http.Request, token string, withProof bool) (identity, error) {
	if c.opts.TokenMeter != nil {
		named, ok, err := c.opts.Tokens.Name(r.Context(), token)
		if errors.Is(err, tokens.ErrInactive) {
			return identity{}, errUnauthenticated
		}
		if err != nil {
			return identity{}, err
		}
		if ok {
			return c.namedIdentity(r, token, named, withProof)
		}
	}
	return c.validatedIdentity(r, token, withProof)
}

// validatedIdentity is the identity of a token validated before the
// decision (tokens.Service.Validate): a token that names nothing, or any
// token when there is no TokenMeter.
func (c *Check) validatedIdentity(r *http.Request, token string, withProof bool) (identity, error) {
	v, err := c.opts.Tokens.Validate(r.Context(), token)
	if errors.Is(err, tokens.ErrInactive) {
		return identity{}, errUnauthenticated
	}
	if err != nil {
		return identity{}, err
	}
	proofJKT := ""
	if withProof && v.Token.JKT != "" {
		if proofJKT, err = c.proofKey(r, token); err != nil {
			return identity{}, err
		}
	}
	if err := bound(v.Token.JKT, withProof, proofJKT); err != nil {
		return identity{}, err
	}
	id := identity{clientID: v.Token.ClientID, accountID: v.Token.AccountID, subject: subjectOf(v.Token), scopes: v.Token.Scopes,
		overrides: v.Client.RateLimits, quota: v.Client.Quota}
	if len(v.Client.AllowedCIDRs) > 0 {
		id.fenced = &v.Client
	}
	return id, nil
}

// namedIdentity is the identity of a named token before its record is
// read: its client's and accounts' standing was checked (tokens.Name), and
// a DPoP proof that came with it is verified here, before the record, whose
// key it is checked against after (bound). A proof that fails sends the
// token the way of a validated one, so that it gets the same answer (an
// unbound token with the DPoP scheme is refused as a token, whatever its
// proof): a rare path, which may take two round trips.
func (c *Check) namedIdentity(r *http.Request, token string, named tokens.Named, withProof bool) (identity, error) {
	nt := &namedToken{Named: named, withProof: withProof, value: token}
	if withProof {
		jkt, err := c.proofKey(r, token)
		if err != nil {
			return c.validatedIdentity(r, token, withProof)
		}
		nt.jkt = jkt
	}
	client := named.Standing.Client
	id := identity{clientID: named.Names.Client, accountID: named.Names.Account, overrides: client.RateLimits, quota: client.Quota, named: nt}
	if len(client.AllowedCIDRs) > 0 {
		id.fenced = &client
	}
	return id, nil
}

// apiCaller returns the address of the API's caller: the one a trusted
// gateway (one of the proxies reqctx.Middleware trusts) forwarded in
// X-Forwarded-For, else "" (unknown). The peer's own address is the
// gateway's, never the caller's.
func apiCaller(r *http.Request) string {
	if !reqctx.Forwarded(r.Context()) {
		return ""
	}
	return reqctx.Addr(r.Context())
}

// fromAllowed reports whether the API caller may use the token's
// credential from where it calls: a credential with an allowlist is
// refused from elsewhere, and when the gateway is not trusted or forwarded
// no address, like a token that is not good (the audit trail says why).
func (c *Check) fromAllowed(r *http.Request, id identity) bool {
	if id.fenced == nil {
		return true
	}
	addr := apiCaller(r)
	if allowlist.Allows(id.fenced.AllowedCIDRs, addr) {
		return true
	}
	c.opts.Refusals.Refused(r.Context(), allowlist.Refusal{Client: *id.fenced, Addr: addr, Where: "check endpoint"})
	return false
}

// proofKey checks the request's DPoP proof against the API request the
// gateway forwarded and the token (ath), and returns the thumbprint of its
// key, for the caller to hold to the token's (jkt).
func (c *Check) proofKey(r *http.Request, token string) (string, error) {
	if c.opts.DPoP == nil {
		return "", fmt.Errorf("%w: dpop not configured", dpop.ErrInvalid)
	}
	proof, err := dpop.FromHeader(r.Header)
	if err != nil {
		return "", err
	}
	if proof == "" {
		return "", fmt.Errorf("%w: no proof", dpop.ErrInvalid)
	}
	method, target, err := forwardedRequest(r)
	if err != nil {
		return "", err
	}
	return c.opts.DPoP.Verify(r.Context(), proof, dpop.Request{Method: method, URL: target, AccessToken: token})
}

// forwardedRequest returns the method and URL of the API request, as the
// gateway forwarded them: X-Forwarded-Method (else the check request's own
// method), and the URL made of X-Forwarded-Proto, -Host and -Uri, each
// required once.
func forwardedRequest(r *http.Request) (string, string, error) {
	method := r.Method
	switch m := r.Header.Values(HeaderForwardedMethod); len(m) {
	case 0:
	case 1:
		method = m[0]
	default:
		return "", "", errNoRequestURL
	}
	var parts [3]string
	for i, name := range []string{HeaderForwardedProto, HeaderForwardedHost, HeaderForwardedURI} {
		v := r.Header.Values(name)
		if len(v) != 1 || v[0] == "" {
			return "", "", errNoRequestURL
		}
		parts[i] = v[0]
	}
	if !strings.HasPrefix(parts[2], "/") {
		return "", "", errNoRequestURL
	}
	return method, parts[0] + "://" + parts[1] + parts[2], nil
}

// authenticateKey checks an API key. Its failures are counted per client id
// and, when a trusted gateway (one of the proxies reqctx.Middleware trusts)
// forwarded the API caller's address in X-Forwarded-For, per that address;
// never per the peer's address, which is the gateway's.
func (c *Check) authenticateKey(r *http.Request, key string) (identity, string, error) {
	clientID, secret, err := apikey.Parse(key)
	if err != nil {
		return identity{}, schemeNone, errUnauthenticated
	}
	// The peer is the API gateway, whose own address would put every API
	// caller into one bucket: the caller's address counts only when a
	// trusted gateway forwarded it (reqctx.Forwarded).
	var source string
	if reqctx.Forwarded(r.Context()) {
		source = reqctx.Source(r.Context())
	}
	ctx := reqctx.WithSource(r.Context(), source)
	ctx = oauth.WithCaller(ctx, apiCaller(r), "check endpoint")
	ctx, outage := oauth.WithOutage(ctx)
	ctx, refusal := oauth.WithRefusal(ctx)
	client, err := c.opts.Authenticator.Authenticate(ctx, oauth.Credentials{ClientID: clientID, Secret: secret, Method: oauth.MethodAPIKey})
	if err != nil {
		if cause := outage.Err(); cause != nil {
			return identity{}, schemeNone, cause
		}
		var blocked *bruteforce.BlockedError
		if errors.As(err, &blocked) {
			return identity{}, schemeNone, blocked
		}
		if id, account, ok := refusal.Client(); ok {
			return identity{}, schemeNone, &knownCredential{clientID: id, accountID: account}
		}
		return identity{}, schemeNone, errUnauthenticated
	}
	return identity{clientID: client.ID, accountID: client.AccountID, subject: strconv.FormatInt(client.ID, 10), scopes: client.Scopes,
		overrides: client.RateLimits, quota: client.Quota}, schemeNone, nil
}

func (c *Check) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		w.WriteHeader(499)
		return
	}
	c.opts.Logger.ErrorContext(r.Context(), "check endpoint backend failure", "err", err)
	retryafter.Set(w.Header(), retryafter.Outage)
	answer(w, http.StatusServiceUnavailable, "temporarily_unavailable", "a backend is temporarily unavailable")
}

// challenge sets WWW-Authenticate (RFC 6750 §3 for Bearer, RFC 9449 §7.1
// for DPoP, with the accepted algorithms).
func (c *Check) challenge(h http.Header, scheme, code, scope string) {
	if scheme == schemeDPoP {
		v := `DPoP realm="tollgate", error="` + code + `"`
		if scope != "" {
			v += `, scope="` + scope + `"`
		}
		if c.opts.DPoP != nil {
			v += `, algs="` + strings.Join(c.opts.DPoP.Algorithms(), " ") + `"`
		}
		h.Set("WWW-Authenticate", v)
		return
	}
	if scheme == schemeBearer {
		v := `Bearer realm="tollgate", error="` + code + `"`
		if scope != "" {
			v += `, scope="` + scope + `"`
		}
		h.Set("WWW-Authenticate", v)
		return
	}
	if code == "invalid_token" {
		h.Add("WWW-Authenticate", `Bearer realm="tollgate"`)
		h.Add("WWW-Authenticate", `Basic realm="tollgate", charset="UTF-8"`)
	}
}

func answer(w http.ResponseWriter, status int, code, description string) {
	// JSON encoding, not Go quoting (%q), which is not JSON for every
	// string.
	b, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{code, description})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
