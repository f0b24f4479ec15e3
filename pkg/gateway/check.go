// Package gateway owns the check endpoint, GET|POST /auth/check, which API
// gateways (nginx auth_request, Traefik ForwardAuth, Envoy ext_authz) call
// for every API request: is the credential good, may it use the required
// scopes on the target account, and is it still inside its per-second
// limit. The answer is in the status code and headers, so the gateway
// needs no code.
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

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/pkg/bruteforce"
	"github.com/tollgate/tollgate/pkg/oauth"
	"github.com/tollgate/tollgate/pkg/ratelimit"
	"github.com/tollgate/tollgate/pkg/reqctx"
	"github.com/tollgate/tollgate/pkg/retryafter"
	"github.com/tollgate/tollgate/pkg/tokens"
	"github.com/tollgate/tollgate/pkg/tracing"
	"github.com/tollgate/tollgate/storage"
)

// Headers the gateway sends to describe what the API request needs.
const (
	HeaderScope     = "X-Tollgate-Scope"      // space-separated scopes, all required
	HeaderRateClass = "X-Tollgate-Rate-Class" // the rate class; "default" when absent
	HeaderAccount   = "X-Tollgate-Account"    // the account the API request acts on
	HeaderAPIKey    = "X-API-Key"             // #nosec G101 -- a header name, not a key
)

// Headers Tollgate answers with, for the gateway to pass to the API.
const (
	HeaderClientID  = "X-Tollgate-Client-Id"
	HeaderAccountID = "X-Tollgate-Account-Id"
	HeaderSubject   = "X-Tollgate-Subject"
	HeaderScopes    = "X-Tollgate-Scopes"
)

// DefaultClass is the rate class of requests that name none.
const DefaultClass = "default"

// Accounts answers whether an account is in another's subtree.
type Accounts interface {
	AccountInSubtree(ctx context.Context, rootID, id int64) (bool, error)
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
	// Limiter limits each client per rate class; a failure answers 503,
	// unless it is wrapped in ratelimit.FailOpen (credentials are still
	// checked).
	Limiter ratelimit.Limiter
	Classes map[string]ratelimit.Limit
	Metrics Metrics
	Logger  *slog.Logger
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
	return &Check{opts: opts}
}

// identity is who a good credential is.
type identity struct {
	clientID  int64
	accountID int64
	subject   string
	scopes    []string
	overrides map[string]storage.RateLimit
}

// Attributes of the check decision's span.
const (
	keyCredential = attribute.Key("tollgate.check.credential") // bearer or api_key
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
	for _, name := range []string{HeaderRateClass, HeaderScope, HeaderAccount} {
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

	id, bearer, err := c.identify(r)
	var blocked *bruteforce.BlockedError
	switch {
	case errors.As(err, &blocked):
		retryafter.Set(h, blocked.RetryAfter)
		answer(w, http.StatusTooManyRequests, "slow_down", "too many failed attempts for this credential; retry later")
		return
	case errors.Is(err, errUnauthenticated):
		challenge(h, bearer, "invalid_token", "")
		answer(w, http.StatusUnauthorized, "invalid_token", "no valid credential")
		return
	case err != nil:
		c.unavailable(w, r, err)
		return
	}
	reqctx.SetPrincipal(r.Context(), reqctx.Principal{ClientID: id.clientID})

	for _, s := range required {
		if !slices.Contains(id.scopes, s) {
			challenge(h, bearer, "insufficient_scope", strings.Join(required, " "))
			answer(w, http.StatusForbidden, "insufficient_scope", "the credential lacks a required scope")
			return
		}
	}
	if target != 0 && target != id.accountID {
		within, err := c.opts.Accounts.AccountInSubtree(r.Context(), id.accountID, target)
		if err != nil {
			c.unavailable(w, r, err)
			return
		}
		if !within {
			answer(w, http.StatusForbidden, "forbidden", "the credential may not act on this account")
			return
		}
	}

	if o, ok := id.overrides[class]; ok {
		limit = ratelimit.Limit{Rate: o.Rate, Burst: o.Burst}
	}
	res, err := c.opts.Limiter.Allow(r.Context(), fmt.Sprintf("c:%d:%s", id.clientID, class), limit)
	if err != nil {
		c.unavailable(w, r, fmt.Errorf("rate limiter: %w", err))
		return
	}
	ratelimit.Headers(h, class, res)
	c.opts.Metrics.RateLimited(class, res.Allowed)
	if !res.Allowed {
		answer(w, http.StatusTooManyRequests, "rate_limited", "over the rate limit of class "+class)
		return
	}
	h.Set(HeaderClientID, strconv.FormatInt(id.clientID, 10))
	h.Set(HeaderAccountID, strconv.FormatInt(id.accountID, 10))
	h.Set(HeaderSubject, id.subject)
	h.Set(HeaderScopes, strings.Join(id.scopes, " "))
	w.WriteHeader(http.StatusOK)
}

var errUnauthenticated = errors.New("unauthenticated")

// identify finds and checks the credential: a Bearer token, or an API key
// in X-API-Key or as the Basic password (any user name). It reports whether
// a Bearer token was used, for the challenge.
func (c *Check) identify(r *http.Request) (identity, bool, error) {
	auth := r.Header.Values("Authorization")
	keys := r.Header.Values(HeaderAPIKey)
	if len(auth)+len(keys) != 1 {
		return identity{}, false, errUnauthenticated
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
		v, err := c.opts.Tokens.Validate(r.Context(), strings.TrimSpace(rest))
		if errors.Is(err, tokens.ErrInactive) {
			return identity{}, true, errUnauthenticated
		}
		if err != nil {
			return identity{}, true, err
		}
		subject := v.Token.Subject
		if subject == "" {
			subject = strconv.FormatInt(v.Token.ClientID, 10)
		}
		return identity{clientID: v.Token.ClientID, accountID: v.Token.AccountID, subject: subject, scopes: v.Token.Scopes,
			overrides: v.Client.RateLimits}, true, nil
	case strings.EqualFold(scheme, "basic"):
		noteAttr(span, keyCredential.String("api_key"))
		_, password, ok := r.BasicAuth()
		if !ok {
			return identity{}, false, errUnauthenticated
		}
		return c.authenticateKey(r, password)
	}
	return identity{}, false, errUnauthenticated
}

// authenticateKey checks an API key. Its failures are counted per client id
// and, when a trusted gateway (one of the proxies reqctx.Middleware trusts)
// forwarded the API caller's address in X-Forwarded-For, per that address;
// never per the peer's address, which is the gateway's.
func (c *Check) authenticateKey(r *http.Request, key string) (identity, bool, error) {
	clientID, secret, err := apikey.Parse(key)
	if err != nil {
		return identity{}, false, errUnauthenticated
	}
	// The peer is the API gateway, whose own address would put every API
	// caller into one bucket: the caller's address counts only when a
	// trusted gateway forwarded it (reqctx.Forwarded).
	var source string
	if reqctx.Forwarded(r.Context()) {
		source = reqctx.Source(r.Context())
	}
	ctx := reqctx.WithSource(r.Context(), source)
	ctx, outage := oauth.WithOutage(ctx)
	client, err := c.opts.Authenticator.Authenticate(ctx, oauth.Credentials{ClientID: clientID, Secret: secret, Method: oauth.MethodAPIKey})
	if err != nil {
		if cause := outage.Err(); cause != nil {
			return identity{}, false, cause
		}
		var blocked *bruteforce.BlockedError
		if errors.As(err, &blocked) {
			return identity{}, false, blocked
		}
		return identity{}, false, errUnauthenticated
	}
	return identity{clientID: client.ID, accountID: client.AccountID, subject: strconv.FormatInt(client.ID, 10), scopes: client.Scopes,
		overrides: client.RateLimits}, false, nil
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

// challenge sets WWW-Authenticate (RFC 6750 §3 for Bearer).
func challenge(h http.Header, bearer bool, code, scope string) {
	if bearer {
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
