// Package server owns Tollgate's HTTP surface: the OAuth 2.0 endpoints
// (token, introspection, revocation, metadata) on the public listener and
// the health and metrics endpoints on the ops listener, with the request
// decoding, error answers, logging and metrics they share.
package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"slices"
	"time"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"
	"go.opentelemetry.io/otel/trace"

	"github.com/tollgate/tollgate/grants"
	"github.com/tollgate/tollgate/pkg/dpop"
	"github.com/tollgate/tollgate/pkg/oauth"
	"github.com/tollgate/tollgate/pkg/ratelimit"
	"github.com/tollgate/tollgate/pkg/reqctx"
	"github.com/tollgate/tollgate/pkg/retryafter"
	"github.com/tollgate/tollgate/pkg/tokens"
	"github.com/tollgate/tollgate/pkg/tracing"
	"github.com/tollgate/tollgate/pkg/usage"
)

// Metrics receives one observation per answered request. Labels are always
// from small fixed sets: endpoint names, enabled grant types, outcomes.
type Metrics interface {
	ObserveRequest(endpoint, grantType, outcome string, duration time.Duration)
}

type nopMetrics struct{}

func (nopMetrics) ObserveRequest(string, string, string, time.Duration) {}

// Provider is the part of fosite the token endpoint uses.
type Provider interface {
	NewAccessRequest(ctx context.Context, r *http.Request, session fosite.Session) (fosite.AccessRequester, error)
	NewAccessResponse(ctx context.Context, ar fosite.AccessRequester) (fosite.AccessResponder, error)
}

// Options configure a Server.
type Options struct {
	Issuer     string
	GrantTypes []string // the enabled grant types, in the order metadata lists them
	// MaxBodyBytes caps request bodies.
	MaxBodyBytes int64
	Provider     Provider
	// Tokens issues the key session's tokens, introspects and revokes.
	Tokens *tokens.Service
	// Authenticator authenticates callers outside fosite's token flow.
	Authenticator *oauth.Authenticator
	// JWKS returns the JSON of the public JWK Set of the token signing
	// keys, served at PathJWKS and named jwks_uri in the metadata.
	JWKS func() []byte
	// JWKSMaxAge is how long a verifier may cache the JWK Set: less than
	// a new key is published before it signs.
	JWKSMaxAge time.Duration
	// AssertionAlgorithms are the JWS algorithms of private_key_jwt client
	// assertions; empty: the metadata does not offer private_key_jwt.
	AssertionAlgorithms []string
	// DPoP verifies the DPoP proofs (RFC 9449) sent to the token and key
	// session endpoints, whose tokens are then bound to the proof's key;
	// nil: DPoP headers are ignored and every token is a Bearer token.
	DPoP *dpop.Verifier
	// KeySession is the grant served at POST /auth/access/session
	// (grants/apikeysession); nil: disabled, answering
	// unsupported_grant_type.
	KeySession grants.Grant
	// KeyRevoker switches a credential off for whoever holds its key, at
	// POST /auth/access/revoke; nil: that path answers 404.
	KeyRevoker KeyRevoker
	// Mounts are further handlers served under path prefixes (the
	// management API), with the same request ids, logs and metrics.
	Mounts []Mount
	// Handlers are further handlers served at exact paths, any method.
	Handlers []Mount
	// Limiter limits token requests per client to TokenRate a second (0:
	// no limit); a failure answers 503, unless it is wrapped in
	// ratelimit.FailOpen.
	Limiter   ratelimit.Limiter
	TokenRate int
	// Usage counts every token issued and key session opened (allowed),
	// held back by the token rate (rate_limited) or refused for a known
	// client's bad credentials (unauthorized), under the class "token";
	// nil counts nothing.
	Usage   UsageCounter
	Logger  *slog.Logger
	Metrics Metrics
	Now     func() time.Time
	// TrustedProxies are the networks of the proxies in front of the
	// server, whose X-Forwarded-For is believed: a request's source
	// address, which its failed authentications are counted under and the
	// audit trail records, is the address they forwarded (reqctx.Addr).
	// Empty: the TCP peer.
	TrustedProxies []netip.Prefix
}

// UsageCounter counts calls per credential (*usage.Batcher). It is called
// on the request's path and must not block.
type UsageCounter interface {
	Count(accountID, credentialID int64, class, outcome string, t time.Time)
}

// usageClass is the rate class token issuances and key sessions are
// counted under: the token rate's.
const usageClass = tokenRateClass

// count counts one call of c ending with outcome.
func (s *Server) count(accountID, credentialID int64, outcome string) {
	if s.opts.Usage != nil {
		s.opts.Usage.Count(accountID, credentialID, usageClass, outcome, s.opts.Now())
	}
}

// countRefused counts the refusal of the known client ref noted, if any.
func (s *Server) countRefused(ref *oauth.Refusal) {
	if id, account, ok := ref.Client(); ok {
		s.count(account, id, usage.OutcomeUnauthorized)
	}
}

// Mount serves Handler for every path under Prefix; Endpoint names it in
// logs and metrics.
type Mount struct {
	Prefix   string
	Endpoint string
	Handler  http.Handler
	// Method, for a handler at an exact path, is the one method it serves
	// (it answers the others itself); "" for any method.
	Method string
}

// Server serves the public OAuth 2.0 endpoints.
type Server struct {
	opts    Options
	router  *mux.Router
	handler http.Handler // router behind reqctx.Middleware
	routes  []Route
}

// Route is a path the server serves, for the test that keeps
// docs/openapi.yaml in step with the router.
type Route struct {
	// Method is the one method served; "" for any method.
	Method string
	// Path is the exact path, or a prefix ending in "/" under which every
	// path is served.
	Path string
	// Endpoint is the name in logs and metrics.
	Endpoint string
}

// Routes returns what the server serves.
func (s *Server) Routes() []Route { return slices.Clone(s.routes) }

// Paths of the public endpoints.
const (
	PathToken      = "/oauth/token" // #nosec G101 -- a path, not a token
	PathIntrospect = "/oauth/introspect"
	PathRevoke     = "/oauth/revoke"
	PathMetadata   = "/.well-known/oauth-authorization-server"
	PathJWKS       = "/.well-known/jwks.json"
	PathKeySession = "/auth/access/session"
	PathKeyRevoke  = "/auth/access/revoke"
)

// New returns a Server.
func New(opts Options) *Server {
	if opts.Metrics == nil {
		opts.Metrics = nopMetrics{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 64 << 10
	}
	// Paths are matched as sent: one with dot segments or doubled slashes
	// answers 404 in the endpoint's format, never a redirect to its
	// cleaned form.
	s := &Server{opts: opts, router: mux.NewRouter().SkipClean(true)}
	s.route(PathToken, "token", http.MethodPost, s.handleToken)
	s.route(PathIntrospect, "introspect", http.MethodPost, s.handleIntrospect)
	s.route(PathRevoke, "revoke", http.MethodPost, s.handleRevoke)
	s.route(PathMetadata, "metadata", http.MethodGet, s.handleMetadata)
	if opts.JWKS != nil {
		s.route(PathJWKS, "jwks", http.MethodGet, s.handleJWKS)
	}
	s.route(PathKeySession, "key_session", http.MethodPost, s.handleKeySession)
	s.route(PathKeyRevoke, "key_revoke", http.MethodPost, s.handleKeyRevoke)
	for _, m := range opts.Handlers {
		s.router.Handle(m.Prefix, s.wrap(m.Endpoint, m.Handler.ServeHTTP))
		s.routes = append(s.routes, Route{Method: m.Method, Path: m.Prefix, Endpoint: m.Endpoint})
	}
	for _, m := range opts.Mounts {
		s.router.PathPrefix(m.Prefix + "/").Handler(s.wrap(m.Endpoint, m.Handler.ServeHTTP))
		s.routes = append(s.routes, Route{Path: m.Prefix + "/", Endpoint: m.Endpoint})
	}
	s.router.NotFoundHandler = s.wrap("not_found", func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, r, &oauthError{status: http.StatusNotFound, code: "not_found", description: "No such endpoint."})
	})
	// Each request's server span is named by the route it matched.
	s.router.Use(tracing.NameRoute)
	s.handler = tracing.Middleware(reqctx.Middleware(opts.TrustedProxies, s.router))
	return s
}

// ServeHTTP implements http.Handler: every request, mounted ones included,
// gets its server span (tracing) and its request context (reqctx) first.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// route registers h for path, answering other methods with an RFC-shaped
// 405 instead of mux's empty one.
func (s *Server) route(path, endpoint, method string, h http.HandlerFunc) {
	s.routes = append(s.routes, Route{Method: method, Path: path, Endpoint: endpoint})
	s.router.Handle(path, s.wrap(endpoint, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
			w.Header().Set("Allow", method)
			writeJSONError(w, r, &oauthError{status: http.StatusMethodNotAllowed, code: "invalid_request",
				description: "The HTTP method must be " + method + "."})
			return
		}
		h(w, r)
	}))
}

// requestInfo is what a handler learns about its request, for the log line
// and the metrics written when it is done.
type requestInfo struct {
	endpoint  string
	grantType string
	outcome   string
	err       error
}

type infoKey struct{}

func info(r *http.Request) *requestInfo {
	if i, ok := r.Context().Value(infoKey{}).(*requestInfo); ok {
		return i
	}
	return &requestInfo{}
}

// wrap adds panic recovery, the access log line and the request metrics to
// a handler; the request id and source address are reqctx's, set before.
func (s *Server) wrap(endpoint string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.opts.Now()
		ri := &requestInfo{endpoint: endpoint, outcome: "ok"}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		r = r.WithContext(context.WithValue(r.Context(), infoKey{}, ri))
		defer func() {
			if p := recover(); p != nil {
				//nolint:errorlint // a recovered value, not a returned error: net/http panics with this exact sentinel and compares it the same way
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.opts.Logger.ErrorContext(r.Context(), "panic serving request", "request_id", reqctx.ID(r.Context()), "panic", p, "stack", string(debug.Stack()))
				if !sw.wrote {
					writeJSONError(sw, r, errServer(nil))
				}
				ri.outcome = "server_error"
			}
			if ri.outcome == "ok" && sw.status >= 400 {
				// A mounted handler (the check endpoint, the management
				// API, the console) writes its own errors: the answer's
				// status is then the outcome, so refusals can be alerted
				// on.
				ri.outcome = statusOutcome(sw.status)
			}
			d := s.opts.Now().Sub(start)
			s.opts.Metrics.ObserveRequest(endpoint, ri.grantType, ri.outcome, d)
			tracing.Answer(trace.SpanFromContext(r.Context()), sw.status, endpoint, ri.outcome, ri.grantType,
				reqctx.PrincipalOf(r.Context()).ClientID, reqctx.ID(r.Context()))
			attrs := []slog.Attr{
				slog.String("request_id", reqctx.ID(r.Context())),
				slog.String("method", r.Method),
				slog.String("endpoint", endpoint),
				slog.Int("status", sw.status),
				slog.String("outcome", ri.outcome),
				slog.Float64("duration_ms", float64(d.Microseconds())/1000),
			}
			if ri.grantType != "" {
				attrs = append(attrs, slog.String("grant_type", ri.grantType))
			}
			if id := reqctx.PrincipalOf(r.Context()).ClientID; id != 0 {
				attrs = append(attrs, slog.Int64("client_id", id))
			}
			level := slog.LevelInfo
			if sw.status >= 500 && ri.outcome != "client_closed" {
				level = slog.LevelError
				if ri.err != nil {
					attrs = append(attrs, slog.String("err", ri.err.Error()))
				}
			}
			s.opts.Logger.LogAttrs(r.Context(), level, "request", attrs...)
		}()
		h(sw, r)
	})
}

// statusOutcome names the outcome of an error answer whose handler did not
// record one, from a fixed set (a label value must never come from the
// request).
func statusOutcome(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusConflict:
		return "conflict"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case http.StatusTooManyRequests:
		return "rate_limited"
	case 499:
		return "client_closed"
	case http.StatusServiceUnavailable:
		return "temporarily_unavailable"
	}
	if status >= 500 {
		return "server_error"
	}
	return "client_error"
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// noStore marks an answer that carries or concerns credentials.
func noStore(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"server_error"}`)
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeJSONError writes e as an RFC 6749 §5.2 error body and records its
// outcome. Every 401 names the Basic scheme (RFC 6749 §5.2, RFC 9110 §15.5.2).
func writeJSONError(w http.ResponseWriter, r *http.Request, e *oauthError) {
	ri := info(r)
	if e.status >= 500 && r.Context().Err() != nil {
		// The caller went away: nothing failed here, and nobody reads the
		// answer.
		ri.outcome = "client_closed"
		w.WriteHeader(499)
		return
	}
	ri.outcome = e.code
	if e.status == http.StatusMethodNotAllowed {
		ri.outcome = "method_not_allowed"
	}
	if e.wrapped != nil {
		ri.err = e.wrapped
	}
	h := w.Header()
	noStore(h)
	if e.status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Basic realm="tollgate", charset="UTF-8"`)
	}
	if e.status == http.StatusServiceUnavailable {
		retryafter.Set(h, retryafter.Outage)
	}
	writeJSON(w, e.status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{e.code, e.description})
}

func (s *Server) grantEnabled(gt string) bool { return slices.Contains(s.opts.GrantTypes, gt) }
