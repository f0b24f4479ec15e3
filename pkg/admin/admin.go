// Package admin owns the management API under /api/v1: accounts, users,
// API clients and API keys through their whole life, and the audit trail.
// Callers authenticate with a Bearer token issued by Tollgate: a user's
// token (acting as that user) or a client token holding the management
// scope. Nobody reaches an ancestor's or a sibling's records: another
// tenant's record answers 404, never 403. Errors are RFC 9457
// application/problem+json; every write is one transaction with its audit
// event.
package admin

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/tollgate/tollgate/pkg/oauth"
	"github.com/tollgate/tollgate/storage"
)

// Store is the storage the API manages.
type Store interface {
	storage.Store
	storage.Transactor
}

// Hasher hashes generated secrets.
type Hasher interface {
	Hash(ctx context.Context, data []byte) ([]byte, error)
}

// Passwords hashes and verifies user passwords.
type Passwords interface {
	Hash(password string) (string, error)
	Verify(hash, password string) (bool, error)
	VerifyDummy(password string)
}

// Options configure the API.
type Options struct {
	Store     Store
	Validator *oauth.Validator
	Minter    *oauth.Issuer
	Hasher    Hasher
	Passwords Passwords
	// ManagementScope lets a client token use the API, acting as an admin of
	// the client's account.
	ManagementScope string
	// AccessRights are the scope bundles a credential may be given by name.
	AccessRights        map[string][]string
	DefaultAccessRights string
	// RateClasses are the configured rate classes a credential may override.
	RateClasses []string
	// GrantTypes are the grant types a client may be allowed.
	GrantTypes          []string
	RotationOverlap     time.Duration
	MaxRotationOverlap  time.Duration
	ClientTokenLifetime time.Duration
	MaxBodyBytes        int64
	Logger              *slog.Logger
	Now                 func() time.Time
	// Guard holds back the passwords users type to confirm who they are
	// (old_password, client token confirmation); nil: no brute-force
	// protection.
	Guard Guard
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
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 64 << 10
	}
	a := &API{opts: opts, router: mux.NewRouter()}
	a.routes()
	a.router.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, problem{Status: http.StatusNotFound, Detail: "No such resource."})
	})
	a.router.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, problem{Status: http.StatusMethodNotAllowed, Detail: "The method is not allowed on this resource."})
	})
	return a
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.router.ServeHTTP(w, r) }

// handle registers h for method and path (below Prefix), behind
// authentication.
func (a *API) handle(method, path string, h func(w http.ResponseWriter, r *http.Request, p *principal)) {
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
