// Package admin owns the management API under /api/v1, a JSON adapter over
// the management service (pkg/manage): accounts, users, API clients and API
// keys through their whole life, and the audit trail. Callers authenticate
// with a Bearer token issued by Tollgate: a user's token (acting as that
// user) or a client token holding the management scope. The API decodes
// requests (strict JSON, pagination, If-Match), calls the service and
// encodes its answers and ETags; the service's coded errors become RFC 9457
// application/problem+json (another tenant's record answers 404, never
// 403).
package admin

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/tollgate/tollgate/pkg/manage"
	"github.com/tollgate/tollgate/pkg/tokens"
	"github.com/tollgate/tollgate/pkg/tracing"
)

// Options configure the API.
type Options struct {
	// Service holds every management rule; the API decodes, calls it and
	// encodes.
	Service *manage.Service
	Tokens  *tokens.Service
	// MaxBodyBytes caps a request body (64 KiB when 0).
	MaxBodyBytes int64
	Logger       *slog.Logger
}

// API serves /api/v1.
type API struct {
	opts   Options
	router *mux.Router
}

// Prefix is where the API is mounted.
const Prefix = "/api/v1"

// Route is one route of the API, for the OpenAPI document check.
type Route struct{ Method, Path string }

// New returns the API.
func New(opts Options) *API {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 64 << 10
	}
	// Paths are matched as sent: one with dot segments or doubled slashes
	// answers 404 instead of a redirect to its cleaned form.
	a := &API{opts: opts, router: mux.NewRouter().SkipClean(true)}
	a.routes()
	// The request's server span is named by the resource's route.
	a.router.Use(tracing.NameRoute)
	a.router.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, problem{Status: http.StatusNotFound, Detail: "No such resource."})
	})
	a.router.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", strings.Join(a.allowed(r), ", "))
		writeProblem(w, r, problem{Status: http.StatusMethodNotAllowed, Detail: "The method is not allowed on this resource."})
	})
	return a
}

// allowed lists the methods r's path is served with (RFC 9110 §15.5.6).
func (a *API) allowed(r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		var match mux.RouteMatch
		if a.router.Match(probe, &match) && match.MatchErr == nil {
			out = append(out, m)
		}
	}
	return out
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if pr := checkQuery(r.URL.RawQuery); pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	a.router.ServeHTTP(w, r)
}

// checkQuery refuses a query string that does not decode, repeats a
// parameter (which one would count?), or carries invalid UTF-8 or control
// characters, before any handler reads it: the handlers read single,
// clean values.
func checkQuery(raw string) *problem {
	if raw == "" {
		return nil
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		p := badRequest("The query string is malformed.")
		return &p
	}
	for k, vs := range q {
		field := k
		if !utf8.ValidString(k) || hasControl(k) {
			field = ""
		}
		switch {
		case field == "":
			p := badRequest("A query parameter name is not valid UTF-8 text.")
			return &p
		case len(vs) > 1:
			p := badRequest("A query parameter is repeated.", fieldError{Field: field, Detail: "is repeated"})
			return &p
		case !utf8.ValidString(vs[0]) || hasControl(vs[0]):
			p := badRequest("A query parameter is not valid UTF-8 text.", fieldError{Field: field, Detail: "must be valid UTF-8 without control characters"})
			return &p
		}
	}
	return nil
}

// hasControl reports whether s holds a C0 control character or DEL.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}

// handle registers h for method and path (below Prefix), behind
// authentication.
func (a *API) handle(method, path string, h func(w http.ResponseWriter, r *http.Request, act manage.Actor)) {
	a.router.Handle(Prefix+path, a.authenticated(h)).Methods(method)
}

// Routes lists every route the API serves.
func (a *API) Routes() []Route {
	var out []Route
	_ = a.router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		path, err := route.GetPathTemplate()
		if err != nil {
			return nil
		}
		methods, err := route.GetMethods()
		if err != nil {
			return nil
		}
		for _, m := range methods {
			out = append(out, Route{Method: m, Path: path})
		}
		return nil
	})
	return out
}
