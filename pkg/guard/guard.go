// Package guard is the HTTP middleware a platform's Go services import to
// protect their APIs with Tollgate. For every request it asks Tollgate's check
// endpoint (/auth/check) whether the caller's credential is good, carries the
// route's scopes and may act on the target account, and whether it is still
// inside its per-second rate limit; it answers the refusals itself and hands
// the caller's Identity to the next handler in the request context.
//
// The check endpoint enforces the rate limit, so every request of a
// rate-limited route costs one round trip to Tollgate. Only routes marked
// NoRateLimit may reuse an allowed answer, for at most Options.CacheTTL, so a
// revoked or disabled credential is refused within CacheTTL there too.
//
// The guard fails closed: when Tollgate cannot be reached or answers
// something unexpected, the request is refused with 503.
package guard

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/pkg/retryafter"
)

// Headers of the check endpoint (see docs/gateway.md).
const (
	headerScope     = "X-Tollgate-Scope"
	headerRateClass = "X-Tollgate-Rate-Class"
	headerAccount   = "X-Tollgate-Account"
	headerAPIKey    = "X-API-Key" // #nosec G101 -- a header name, not a key
	headerRequestID = "X-Request-Id"
	headerDPoP      = "DPoP"

	headerForwardedMethod = "X-Forwarded-Method"
	headerForwardedProto  = "X-Forwarded-Proto"
	headerForwardedHost   = "X-Forwarded-Host"
	headerForwardedURI    = "X-Forwarded-Uri"

	headerClientID  = "X-Tollgate-Client-Id"
	headerAccountID = "X-Tollgate-Account-Id"
	headerSubject   = "X-Tollgate-Subject"
	headerScopes    = "X-Tollgate-Scopes"
)

// Defaults of Options.
const (
	DefaultTimeout         = 2 * time.Second
	DefaultCacheTTL        = 2 * time.Second
	DefaultMaxCacheEntries = 10000
)

// maxErrorBody bounds how much of a refusal's body is read from Tollgate.
const maxErrorBody = 4 << 10

// Options configure a Guard.
type Options struct {
	// CheckURL is Tollgate's check endpoint, e.g.
	// http://tollgate:8080/auth/check.
	CheckURL string
	// HTTPClient calls the check endpoint. The default has a timeout of
	// DefaultTimeout and follows no redirects (the credential is never sent
	// anywhere but CheckURL).
	HTTPClient *http.Client
	// CacheTTL is how long an allowed answer is reused on routes marked
	// NoRateLimit, and so the longest a revoked credential still passes
	// there. Zero means DefaultCacheTTL; negative turns the cache off.
	// Routes with a rate limit never use the cache.
	CacheTTL time.Duration
	// MaxCacheEntries bounds the cache; zero means DefaultMaxCacheEntries.
	// When it is full the entries closest to expiry make room.
	MaxCacheEntries int
	// Logger gets check failures; credentials are never logged. The default
	// discards.
	Logger *slog.Logger
	// Now is the clock of the cache; time.Now by default.
	Now func() time.Time
	// WriteError writes the answer to a refused request, for services whose
	// errors have their own format (problem+json, say). The headers the
	// caller needs (WWW-Authenticate, Retry-After, RateLimit) are already
	// set on w. The default writes {"error":…,"error_description":…}.
	WriteError func(w http.ResponseWriter, r *http.Request, e Error)
	// RequestID returns the id of r, sent to the check endpoint as
	// X-Request-Id so Tollgate's log line of the check carries the
	// service's request id. The default takes r's own X-Request-Id; a
	// service that keeps its ids in the context (chi's
	// middleware.RequestID) returns it from there.
	RequestID func(r *http.Request) string
	// Local verifies Tollgate's JWT access tokens in process on the routes
	// marked VerifyLocally; nil leaves every request to the check endpoint.
	Local *Local
	// RequestURL returns the URL of r as the client addressed it, which a
	// DPoP proof (RFC 9449) names in its htu: sent to the check endpoint
	// as X-Forwarded-Proto, -Host and -Uri with a DPoP-bound token. The
	// default is r's own: https when r came over TLS, else http, r.Host
	// and r's request target. A service behind a proxy that changes the
	// scheme, host or path returns the public URL.
	RequestURL func(r *http.Request) *url.URL
}

// Error is a refusal the guard answers itself.
type Error struct {
	// Status is the HTTP status: 400, 401, 403, 429 or 503.
	Status int
	// Code is Tollgate's error code (invalid_token, insufficient_scope,
	// forbidden, rate_limited, temporarily_unavailable, invalid_request).
	Code string
	// Description is a short sentence for people.
	Description string
}

// Error implements error.
func (e Error) Error() string { return fmt.Sprintf("%d %s", e.Status, e.Code) }

// Guard protects handlers with Tollgate. It is safe for concurrent use.
type Guard struct {
	checkURL   string
	client     *http.Client
	logger     *slog.Logger
	cache      *cache // nil when caching is off
	writeError func(http.ResponseWriter, *http.Request, Error)
	requestID  func(*http.Request) string
	local      *Local // nil when no route verifies locally
	requestURL func(*http.Request) *url.URL
}

// New returns a Guard. It panics when CheckURL is empty: that is a wiring
// mistake, not a runtime condition.
func New(opts Options) *Guard {
	if opts.CheckURL == "" {
		panic("guard: Options.CheckURL is empty")
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{
			Timeout:       DefaultTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CacheTTL == 0 {
		opts.CacheTTL = DefaultCacheTTL
	}
	if opts.MaxCacheEntries <= 0 {
		opts.MaxCacheEntries = DefaultMaxCacheEntries
	}
	if opts.WriteError == nil {
		opts.WriteError = writeError
	}
	if opts.RequestID == nil {
		opts.RequestID = func(r *http.Request) string { return r.Header.Get(headerRequestID) }
	}
	if opts.RequestURL == nil {
		opts.RequestURL = ownURL
	}
	g := &Guard{checkURL: opts.CheckURL, client: opts.HTTPClient, logger: opts.Logger,
		writeError: opts.WriteError, requestID: opts.RequestID, requestURL: opts.RequestURL, local: opts.Local}
	if opts.CacheTTL > 0 {
		g.cache = newCache(opts.CacheTTL, opts.MaxCacheEntries, opts.Now)
	}
	return g
}

// Identity is the caller of a request that Tollgate allowed.
type Identity struct {
	ClientID  int64    `json:"client_id"`  // the client or API key
	AccountID int64    `json:"account_id"` // the credential's account
	Subject   string   `json:"subject"`    // the user a token was issued for, else the client id
	Scopes    []string `json:"scopes"`
}

type identityKey struct{}

// IdentityFrom answers the caller of a request that passed a Guard.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// WithIdentity returns ctx carrying id, as a Guard does; for tests of
// handlers behind a Guard.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// A RouteOption describes what a protected route requires.
type RouteOption func(*route)

type route struct {
	scopes    []string
	class     string
	account   func(*http.Request) string
	cacheable bool
	local     bool
}

// Scopes requires every one of scopes.
func Scopes(scopes ...string) RouteOption {
	return func(r *route) { r.scopes = append(r.scopes, scopes...) }
}

// Class names the route's rate class; Tollgate's "default" when not given.
func Class(class string) RouteOption {
	return func(r *route) { r.class = class }
}

// AccountFrom names the account a request acts on (an account id, or "" for
// none), e.g. from the path. Tollgate refuses with 403 unless it is the
// credential's account or one of its descendants.
func AccountFrom(account func(*http.Request) string) RouteOption {
	return func(r *route) { r.account = account }
}

// NoRateLimit marks a route whose requests need not be counted one by one:
// an allowed answer for the same credential, scopes, class and account is
// reused for Options.CacheTTL without asking Tollgate. The checks made when
// the cache misses still count against the route's class at Tollgate, at
// most one per CacheTTL per credential. Without a cache (CacheTTL < 0) it
// changes nothing.
func NoRateLimit() RouteOption {
	return func(r *route) { r.cacheable = true }
}

// VerifyLocally marks a route on which a JWT access token is verified in
// process by Options.Local, without asking Tollgate: no rate limit is
// counted, and a token revoked, or whose credential or account was disabled,
// passes until it expires (see Local). A JWT that fails verification is
// refused there and then; opaque tokens, API keys, tokens bound to a DPoP
// key and requests naming an account other than the token's own still go
// to the check endpoint, as does every request while Tollgate's JWK Set
// cannot be had. Without Options.Local it changes nothing.
func VerifyLocally() RouteOption {
	return func(r *route) { r.local = true }
}

// Require protects next with Tollgate: every request needs a credential with
// all of scopes, and is limited in the rate class class ("" for "default").
func (g *Guard) Require(scopes []string, class string, next http.Handler) http.Handler {
	return g.Protect(next, Scopes(scopes...), Class(class))
}

// Middleware returns the form that chi's and gorilla/mux's Use take:
// r.Use(g.Middleware(guard.Scopes("events"))) protects every route of r as
// opts describe.
func (g *Guard) Middleware(opts ...RouteOption) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler { return g.Protect(next, opts...) }
}

// Protect protects next with Tollgate as opts describe.
func (g *Guard) Protect(next http.Handler, opts ...RouteOption) http.Handler {
	var rt route
	for _, o := range opts {
		o(&rt)
	}
	for _, s := range rt.scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			panic(fmt.Sprintf("guard: invalid scope %q", s))
		}
	}
	scope := strings.Join(rt.scopes, " ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var account string
		if rt.account != nil {
			account = rt.account(r)
		}
		if rt.local && g.local != nil {
			id, refusal, ok := g.verifyLocally(w, r, rt.scopes, account)
			if ok {
				next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
				return
			}
			if refusal != nil {
				g.writeError(w, r, *refusal)
				return
			}
		}
		var key [sha256.Size]byte
		// A DPoP proof is good once: a cached answer would let the same
		// proof through again, so a request with one is always checked.
		useCache := rt.cacheable && g.cache != nil && len(r.Header.Values(headerDPoP)) == 0
		if useCache {
			key = cacheKey(r.Header, scope, rt.class, account)
			if id, ok := g.cache.get(key); ok {
				next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
				return
			}
		}
		d := g.check(r, scope, rt.class, account)
		h := w.Header()
		for _, name := range d.headers {
			for _, v := range d.header.Values(name) {
				h.Add(name, v)
			}
		}
		if !d.allowed {
			g.writeError(w, r, Error{Status: d.status, Code: d.code, Description: descriptions[d.status]})
			return
		}
		if useCache {
			g.cache.put(key, d.identity)
		}
		next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), d.identity)))
	})
}

// verifyLocally decides r on a VerifyLocally route: ok with the identity of
// a good JWT access token that has the route's scopes and acts on account
// (its own, or none named); a refusal, its WWW-Authenticate set, for a JWT
// that fails verification or lacks a scope, with the Bearer challenge of
// RFC 6750 §3 set on w as the check endpoint would; neither when the check
// endpoint must decide.
func (g *Guard) verifyLocally(w http.ResponseWriter, r *http.Request, scopes []string, account string) (Identity, *Error, bool) {
	auth := r.Header.Values("Authorization")
	if len(auth) != 1 || len(r.Header.Values(headerAPIKey)) != 0 {
		return Identity{}, nil, false
	}
	scheme, token, _ := strings.Cut(auth[0], " ")
	if !strings.EqualFold(scheme, "bearer") {
		return Identity{}, nil, false
	}
	id, err := g.local.Verify(r.Context(), strings.TrimSpace(token))
	switch {
	case errors.Is(err, ErrInvalidToken):
		return Identity{}, refuse(w, http.StatusUnauthorized, "invalid_token", ""), false
	case errors.Is(err, ErrKeysUnavailable):
		g.logger.WarnContext(r.Context(), "tollgate JWK Set unavailable; asking the check endpoint", "err", err)
		return Identity{}, nil, false
	case err != nil:
		return Identity{}, nil, false
	}
	for _, s := range scopes {
		if !slices.Contains(id.Scopes, s) {
			return Identity{}, refuse(w, http.StatusForbidden, "insufficient_scope", strings.Join(scopes, " ")), false
		}
	}
	if account != "" && account != strconv.FormatInt(id.AccountID, 10) {
		return Identity{}, nil, false // a descendant, or not an account id: the check endpoint knows
	}
	return id, nil, true
}

// refuse sets the Bearer challenge of code (and the scope a route needs)
// on w and returns the refusal to answer.
func refuse(w http.ResponseWriter, status int, code, scope string) *Error {
	v := `Bearer realm="tollgate", error="` + code + `"`
	if scope != "" {
		v += `, scope="` + scope + `"`
	}
	w.Header().Set("WWW-Authenticate", v)
	return &Error{Status: status, Code: code, Description: descriptions[status]}
}

// decision is the check endpoint's answer for one request.
type decision struct {
	allowed  bool
	identity Identity
	status   int    // when not allowed
	code     string // OAuth-style error code, when not allowed
	header   http.Header
	headers  []string // names of header to pass to the caller
}

var (
	allowedHeaders = []string{"RateLimit-Policy", "RateLimit"}
	refusedHeaders = []string{"WWW-Authenticate", "Retry-After", "RateLimit-Policy", "RateLimit"}
)

// check asks Tollgate about r. Any failure to get a clear answer is a 503.
func (g *Guard) check(r *http.Request, scope, class, account string) decision {
	unavailable := decision{status: http.StatusServiceUnavailable, code: "temporarily_unavailable",
		header: http.Header{}, headers: []string{"Retry-After"}}
	retryafter.Set(unavailable.header, retryafter.Outage)
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, g.checkURL, nil)
	if err != nil {
		g.logger.ErrorContext(r.Context(), "tollgate check request", "err", err)
		return unavailable
	}
	// Only the credential and the route's requirements: the caller's own
	// X-Tollgate-* headers must not choose its scopes, class or account.
	for _, v := range r.Header.Values("Authorization") {
		req.Header.Add("Authorization", v)
	}
	for _, v := range r.Header.Values(headerAPIKey) {
		req.Header.Add(headerAPIKey, v)
	}
	if proofs := r.Header.Values(headerDPoP); len(proofs) > 0 {
		// The proof, and the request it must have been made for.
		for _, v := range proofs {
			req.Header.Add(headerDPoP, v)
		}
		u := g.requestURL(r)
		req.Header.Set(headerForwardedMethod, r.Method)
		req.Header.Set(headerForwardedProto, u.Scheme)
		req.Header.Set(headerForwardedHost, u.Host)
		req.Header.Set(headerForwardedURI, u.RequestURI())
	}
	if scope != "" {
		req.Header.Set(headerScope, scope)
	}
	if class != "" {
		req.Header.Set(headerRateClass, class)
	}
	if account != "" {
		req.Header.Set(headerAccount, account)
	}
	// Tollgate keeps an id of safe characters and at most 64 bytes and
	// makes a new one otherwise; a longer value is not worth sending.
	if id := g.requestID(r); id != "" && len(id) <= 64 && !strings.ContainsAny(id, "\r\n") {
		req.Header.Set(headerRequestID, id)
	}
	res, err := g.client.Do(req)
	if err != nil {
		// The error names the URL and the cause, never a header value.
		g.logger.ErrorContext(r.Context(), "tollgate check failed", "err", err)
		return unavailable
	}
	defer func() { _ = res.Body.Close() }() // read (to a limit) below; closing a response body reports nothing useful
	body, _ := io.ReadAll(io.LimitReader(res.Body, maxErrorBody))
	switch res.StatusCode {
	case http.StatusOK:
		id, err := parseIdentity(res.Header)
		if err != nil {
			g.logger.ErrorContext(r.Context(), "tollgate check answered 200 without a valid identity", "err", err)
			return unavailable
		}
		return decision{allowed: true, identity: id, header: res.Header, headers: allowedHeaders}
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests, http.StatusBadRequest:
		if res.StatusCode == http.StatusBadRequest {
			// The route asked for something Tollgate does not know (a rate
			// class) or the account named is not an id.
			g.logger.WarnContext(r.Context(), "tollgate check refused the route's requirements", "class", class, "body", string(body))
		}
		return decision{status: res.StatusCode, code: errorCode(body, res.StatusCode), header: res.Header, headers: refusedHeaders}
	case http.StatusServiceUnavailable:
		if ra := res.Header.Get("Retry-After"); ra != "" {
			unavailable.header.Set("Retry-After", ra)
		}
		g.logger.WarnContext(r.Context(), "tollgate check unavailable")
		return unavailable
	}
	g.logger.ErrorContext(r.Context(), "tollgate check answered an unexpected status", "status", res.StatusCode)
	return unavailable
}

// ownURL is the default Options.RequestURL.
func ownURL(r *http.Request) *url.URL {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return &url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
}

func parseIdentity(h http.Header) (Identity, error) {
	clientID, err := strconv.ParseInt(h.Get(headerClientID), 10, 64)
	if err != nil {
		return Identity{}, fmt.Errorf("%s: %w", headerClientID, err)
	}
	accountID, err := strconv.ParseInt(h.Get(headerAccountID), 10, 64)
	if err != nil {
		return Identity{}, fmt.Errorf("%s: %w", headerAccountID, err)
	}
	return Identity{
		ClientID:  clientID,
		AccountID: accountID,
		Subject:   h.Get(headerSubject),
		Scopes:    strings.Fields(h.Get(headerScopes)),
	}, nil
}

// errorCode takes the error code from Tollgate's JSON answer, or a default
// for status.
func errorCode(body []byte, status int) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" && len(e.Error) <= 64 && !strings.ContainsAny(e.Error, "\"\\") {
		return e.Error
	}
	switch status {
	case http.StatusUnauthorized:
		return "invalid_token"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusTooManyRequests:
		return "rate_limited"
	}
	return "invalid_request"
}

var descriptions = map[int]string{
	http.StatusBadRequest:         "the request names an invalid account or rate class, or lacks what its DPoP proof needs",
	http.StatusUnauthorized:       "no valid credential",
	http.StatusForbidden:          "the credential may not make this request",
	http.StatusTooManyRequests:    "over the rate limit",
	http.StatusServiceUnavailable: "authorization is temporarily unavailable",
}

// writeError is the default Options.WriteError.
func writeError(w http.ResponseWriter, _ *http.Request, e Error) {
	b, err := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{e.Code, e.Description})
	if err != nil {
		b = []byte(`{"error":"server_error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(e.Status)
	_, _ = w.Write(b)
}

// cacheKey hashes what the check endpoint's answer depends on, so the
// credential never sits in memory as a map key. Every part is
// length-prefixed, so no two inputs share an encoding.
func cacheKey(h http.Header, scope, class, account string) [sha256.Size]byte {
	var buf bytes.Buffer
	part := func(s string) {
		buf.Write(binary.BigEndian.AppendUint64(nil, uint64(len(s))))
		buf.WriteString(s)
	}
	auth, keys := h.Values("Authorization"), h.Values(headerAPIKey)
	part(strconv.Itoa(len(auth)))
	for _, v := range auth {
		part(v)
	}
	part(strconv.Itoa(len(keys)))
	for _, v := range keys {
		part(v)
	}
	part(scope)
	part(class)
	part(account)
	sum := sha256.Sum256(buf.Bytes())
	clear(buf.Bytes())
	return sum
}
