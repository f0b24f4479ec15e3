// Package console owns Tollgate's web console under /console: people sign
// in with their username and password and manage their API clients and API
// keys; admins also manage the users of their account and its
// sub-accounts, switch between those accounts, and read the audit trail.
//
// The pages are server-rendered (html/template) from templates and assets
// embedded in the binary; a small script adds copy buttons and submits the
// account switcher, and everything works without it. The console is an HTML
// adapter over the management service (pkg/manage), as /api/v1 is a JSON
// one, so both apply the same rules to the same person.
//
// Sessions live on the server (session.Store: Redis when Tollgate runs on
// Redis, in process otherwise) behind an HttpOnly, SameSite=Lax cookie that
// is Secure over TLS, and expire after an idle time and a maximum lifetime.
// Every form carries a CSRF token, and cross-origin form posts are refused.
// Sign-in passwords go through the same brute-force protection as the
// token endpoint's.
package console

import (
	"context"
	"embed"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/tollgate/tollgate/pkg/authn"
	"github.com/tollgate/tollgate/pkg/console/session"
	"github.com/tollgate/tollgate/pkg/manage"
	"github.com/tollgate/tollgate/pkg/tracing"
	"github.com/tollgate/tollgate/pkg/usage"
	"github.com/tollgate/tollgate/storage"
)

// Prefix is where the console is mounted.
const Prefix = "/console"

//go:embed templates/*.html static/*
var files embed.FS

// Service is the management API's service layer (*manage.API).
type Service interface {
	ClientQuotaUsage(ctx context.Context, c storage.Client) (*manage.QuotaUsage, error)
	AccountQuotaUsage(ctx context.Context, acc storage.Account) (*manage.QuotaUsage, error)
	ListClients(ctx context.Context, act manage.Actor, kind storage.Kind, f storage.ClientFilter, pg storage.Page) ([]storage.Client, error)
	GetClient(ctx context.Context, act manage.Actor, kind storage.Kind, id int64) (storage.Client, error)
	CreateClient(ctx context.Context, act manage.Actor, kind storage.Kind, in manage.ClientInput) (storage.Client, string, error)
	UpdateClient(ctx context.Context, act manage.Actor, kind storage.Kind, id, want int64, in manage.ClientInput) (storage.Client, error)
	RotateClient(ctx context.Context, act manage.Actor, kind storage.Kind, id, want int64, overlapSeconds *int64) (storage.Client, string, error)
	DeleteClient(ctx context.Context, act manage.Actor, kind storage.Kind, id, want int64) (storage.Client, error)
	ListFederatedCredentials(ctx context.Context, act manage.Actor, id int64) ([]storage.FederatedCredential, error)
	CreateFederatedCredential(ctx context.Context, act manage.Actor, id, want int64, in manage.FederatedCredentialInput) (storage.FederatedCredential, error)
	DeleteFederatedCredential(ctx context.Context, act manage.Actor, id, fid, want int64) error
	GenerateClientToken(ctx context.Context, act manage.Actor, id int64, password string, lifetime *int64) (manage.ClientToken, error)
	ListUsers(ctx context.Context, act manage.Actor, f storage.UserFilter, pg storage.Page) ([]storage.User, error)
	GetUser(ctx context.Context, act manage.Actor, id int64) (storage.User, error)
	CreateUser(ctx context.Context, act manage.Actor, in manage.UserInput) (storage.User, error)
	UpdateUser(ctx context.Context, act manage.Actor, id, want int64, in manage.UserUpdate) (storage.User, error)
	DeleteUser(ctx context.Context, act manage.Actor, id, want int64) error
	GetAccount(ctx context.Context, act manage.Actor, id int64) (storage.Account, error)
	UpdateAccount(ctx context.Context, act manage.Actor, id, want int64, in manage.AccountInput) (storage.Account, error)
	EffectivePolicies(ctx context.Context, act manage.Actor, id int64) (storage.EffectivePolicies, error)
	InheritedPolicies(ctx context.Context, act manage.Actor, id int64) (storage.EffectivePolicies, error)
	ListChildren(ctx context.Context, act manage.Actor, id int64, pg storage.Page) ([]storage.Account, error)
	ListAudit(ctx context.Context, act manage.Actor, accountID int64, pg storage.Page) ([]storage.AuditEvent, error)
	Usage(ctx context.Context, act manage.Actor, q manage.UsageQuery) (usage.Report, error)
	ListWebhooks(ctx context.Context, act manage.Actor, accountID int64, pg storage.Page) ([]storage.Webhook, error)
	CreateWebhook(ctx context.Context, act manage.Actor, in manage.WebhookInput) (storage.Webhook, string, error)
	GetWebhook(ctx context.Context, act manage.Actor, id int64) (storage.Webhook, error)
	ListWebhookDeliveries(ctx context.Context, act manage.Actor, id int64, pg storage.Page) ([]storage.WebhookDelivery, error)
	TestWebhook(ctx context.Context, act manage.Actor, id int64) (storage.WebhookDelivery, error)
	RotateWebhookSecret(ctx context.Context, act manage.Actor, id, want int64) (storage.Webhook, string, error)
	DeleteWebhook(ctx context.Context, act manage.Actor, id, want int64) error
}

var _ Service = (*manage.Service)(nil)

// Users is what signing in reads: what the password check reads
// (authn.Users), and a signed-in user by id.
type Users interface {
	authn.Users
	GetUser(ctx context.Context, id int64) (storage.User, error)
}

// Defaults of Options.
const (
	DefaultIdleTimeout = 30 * time.Minute
	DefaultMaxLifetime = 12 * time.Hour
)

// Options configure the console.
type Options struct {
	// Issuer is the server's public base URL, for the examples the pages
	// show.
	Issuer    string
	Service   Service
	Users     Users
	Sessions  session.Store
	Passwords authn.Passwords
	// Guard is the brute-force protection of passwords; nil: none.
	Guard authn.Guard
	// AccessRights are the scope bundles a credential may be given, by
	// name; DefaultAccessRights is preselected.
	AccessRights        map[string][]string
	DefaultAccessRights string
	// GrantTypes are the grant types an API client may be allowed;
	// DefaultGrantTypes are preselected when adding one.
	GrantTypes        []string
	DefaultGrantTypes []string
	// RateClasses are the configured rate classes, for account budgets.
	RateClasses []string
	// RotationOverlap is the default time an old secret keeps working
	// after a rotation; MaxRotationOverlap the longest one may choose.
	RotationOverlap    time.Duration
	MaxRotationOverlap time.Duration
	// ClientTokenLifetime is the lifetime of a generated client token.
	ClientTokenLifetime time.Duration
	// DisableUnusedAfter is the time after which an unused credential is
	// disabled automatically (0: never), for the pages to say so. Which
	// ones were is recorded on each (storage.Client.DisabledReason).
	DisableUnusedAfter time.Duration
	// IdleTimeout ends a session unused for that long (DefaultIdleTimeout);
	// MaxLifetime ends any session that old (DefaultMaxLifetime).
	IdleTimeout time.Duration
	MaxLifetime time.Duration
	// SecureCookies marks the cookies Secure on every request; otherwise
	// they are Secure when the request came over TLS, directly or through
	// a trusted proxy (reqctx.ViaTrustedProxy) saying so in
	// X-Forwarded-Proto.
	SecureCookies bool
	// MaxFormBytes caps a form post (64 KiB when 0).
	MaxFormBytes int64
	Logger       *slog.Logger
	Now          func() time.Time
}

// Console serves /console.
type Console struct {
	opts   Options
	authn  *authn.Authenticator
	router *mux.Router
	pages  pages
	assets assets
	cop    *http.CrossOriginProtection
}

// New returns the console. It fails only if its embedded templates do not
// parse.
func New(opts Options) (*Console, error) {
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.MaxLifetime <= 0 {
		opts.MaxLifetime = DefaultMaxLifetime
	}
	if opts.MaxFormBytes <= 0 {
		opts.MaxFormBytes = 64 << 10
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.Issuer = strings.TrimSuffix(opts.Issuer, "/")
	a, err := loadAssets()
	if err != nil {
		return nil, err
	}
	p, err := loadPages(a)
	if err != nil {
		return nil, err
	}
	c := &Console{opts: opts, authn: authn.New(opts.Users, opts.Passwords, opts.Guard),
		router: mux.NewRouter(), pages: p, assets: a, cop: http.NewCrossOriginProtection()}
	c.routes()
	// The request's server span is named by the page's route.
	c.router.Use(tracing.NameRoute)
	return c, nil
}

// ServeHTTP implements http.Handler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header())
	c.router.ServeHTTP(w, r)
}

// setSecurityHeaders sets what every console answer carries: no script or
// style but the console's own files, no framing, no sniffing, no referrer
// beyond the console.
func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	// Nothing the console answers is stored by a browser or a proxy
	// (pages show secrets once, redirects follow sign-in); the static
	// files say otherwise for themselves.
	h.Set("Cache-Control", "no-store")
}
