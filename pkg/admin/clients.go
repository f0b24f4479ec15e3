package admin

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/pkg/manage"
	"github.com/tollgate/tollgate/storage"
)

// clientView is a credential as the API shows it: never its secret, except
// ClientSecret and Key, set once in the answer that creates or rotates it.
type clientView struct {
	ID                  int64    `json:"id"`
	Kind                string   `json:"kind"`
	AccountID           int64    `json:"account_id"`
	OwnerID             int64    `json:"owner_id,omitempty"`
	IsDefault           bool     `json:"is_default"`
	Name                string   `json:"name"`
	Description         string   `json:"description"`
	AccessRights        string   `json:"access_rights,omitempty"`
	Scopes              []string `json:"scopes"`
	GrantTypes          []string `json:"grant_types"`
	MayIntrospect       bool     `json:"may_introspect"`
	TokenLifetime       int64    `json:"token_lifetime,omitempty"`
	ReuseTokens         bool     `json:"reuse_tokens"`
	AccessTokenStrategy string   `json:"access_token_strategy"`
	// TokenEndpointAuthMethod, JWKS and JWKSURI carry RFC 7591's names.
	TokenEndpointAuthMethod string                   `json:"token_endpoint_auth_method"`
	JWKS                    json.RawMessage          `json:"jwks,omitempty"`
	JWKSURI                 string                   `json:"jwks_uri,omitempty"`
	DPoPBoundAccessTokens   bool                     `json:"dpop_bound_access_tokens"`
	RateLimits              map[string]rateLimitView `json:"rate_limits,omitempty"`
	Quota                   *quotaView               `json:"quota"`
	QuotaUsage              *quotaUsageView          `json:"quota_usage,omitempty"`
	AllowedCIDRs            []string                 `json:"allowed_cidrs"`
	Status                  string                   `json:"status"`
	DisabledReason          string                   `json:"disabled_reason,omitempty"`
	SecretHint              string                   `json:"secret_hint"`
	KeyHint                 string                   `json:"key_hint,omitempty"`
	ExpiresAt               *time.Time               `json:"expires_at,omitempty"`
	LastUsedAt              *time.Time               `json:"last_used_at,omitempty"`
	PreviousSecretRetireAt  *time.Time               `json:"previous_secret_retire_at,omitempty"`
	CreatedBy               int64                    `json:"created_by,omitempty"`
	CreatedAt               time.Time                `json:"created_at"`
	UpdatedAt               time.Time                `json:"updated_at"`
	Version                 int64                    `json:"version"`
	ClientSecret            string                   `json:"client_secret,omitempty"`
	Key                     string                   `json:"key,omitempty"`
	// Use names, in the answers that show a secret, the field to use: key
	// for an API key (client_secret is its secret without the id, for
	// OAuth libraries that take client_id and client_secret apart), and
	// client_secret, with the id, for an API client.
	Use string `json:"use,omitempty"`
}

// rateLimitView overrides one rate class for a credential.
type rateLimitView struct {
	Rate  int `json:"rate"`
	Burst int `json:"burst"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// statusExpired is the status a credential reads as between its expiry and
// the sweep that disables it; it is never stored and cannot be written.
const statusExpired = "expired"

func viewClient(c storage.Client, now time.Time) clientView {
	v := clientView{
		JWKS: rawOrNil(c.JWKS),
		ID:   c.ID, Kind: string(c.Kind), AccountID: c.AccountID, OwnerID: c.OwnerID, IsDefault: c.IsDefault,
		Name: c.Name, Description: c.Description, AccessRights: c.AccessRights,
		Scopes: nonNil(c.Scopes), GrantTypes: nonNil(c.GrantTypes), MayIntrospect: c.MayIntrospect,
		TokenLifetime: int64(c.TokenLifetime / time.Second), ReuseTokens: c.ReuseTokens,
		AccessTokenStrategy: strategyOrOpaque(c.AccessTokenStrategy), DPoPBoundAccessTokens: c.DPoPBoundAccessTokens,
		TokenEndpointAuthMethod: authMethodOrBasic(c.TokenEndpointAuthMethod), JWKSURI: c.JWKSURI,
		Status: string(c.Status), DisabledReason: string(c.DisabledReason),
		SecretHint: "…" + apikey.SecretHint(c.SecretHint), ExpiresAt: optTime(c.ExpiresAt), LastUsedAt: optTime(c.LastUsedAt),
		CreatedBy: c.CreatedBy, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, Version: c.Version,
	}
	if c.PreviousSecretValid(now) {
		v.PreviousSecretRetireAt = optTime(c.PreviousRetireAt)
	}
	// An active credential past its expiry is already refused everywhere;
	// the sweeper disables it only at its next run. Say so at once rather
	// than showing "active" for up to an hour.
	if c.Status == storage.StatusActive && !c.Usable(now) {
		v.Status = statusExpired
	}
	if len(c.RateLimits) > 0 {
		v.RateLimits = make(map[string]rateLimitView, len(c.RateLimits))
		for class, l := range c.RateLimits {
			v.RateLimits[class] = rateLimitView{Rate: l.Rate, Burst: l.Burst}
		}
	}
	if c.Kind == storage.KindKey {
		v.KeyHint = apikey.Masked(c.ID, c.SecretHint)
	}
	v.Quota = viewQuota(c.Quota)
	v.AllowedCIDRs = nonNil(c.AllowedCIDRs)
	return v
}

// withUsage adds the remaining quota to v, for the answers about one
// credential; a list leaves it out (one read per item would be a read per
// row).
func (a *API) withUsage(r *http.Request, v clientView, c storage.Client) (clientView, error) {
	u, err := a.opts.Service.ClientQuotaUsage(r.Context(), c)
	if err != nil {
		return v, err
	}
	v.QuotaUsage = viewQuotaUsage(u)
	return v, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (a *API) clientRoutes() {
	for _, k := range []struct {
		kind storage.Kind
		path string
	}{{storage.KindClient, "/clients"}, {storage.KindKey, "/keys"}} {
		kind := k.kind
		a.handle(http.MethodPost, k.path, func(w http.ResponseWriter, r *http.Request, act manage.Actor) { a.createClient(w, r, act, kind) })
		a.handle(http.MethodGet, k.path, func(w http.ResponseWriter, r *http.Request, act manage.Actor) { a.listClients(w, r, act, kind) })
		a.handle(http.MethodGet, k.path+"/{id:[0-9]+}", func(w http.ResponseWriter, r *http.Request, act manage.Actor) { a.getClient(w, r, act, kind) })
		a.handle(http.MethodPatch, k.path+"/{id:[0-9]+}", func(w http.ResponseWriter, r *http.Request, act manage.Actor) { a.updateClient(w, r, act, kind) })
		a.handle(http.MethodDelete, k.path+"/{id:[0-9]+}", func(w http.ResponseWriter, r *http.Request, act manage.Actor) { a.deleteClient(w, r, act, kind) })
		a.handle(http.MethodPost, k.path+"/{id:[0-9]+}/rotate", func(w http.ResponseWriter, r *http.Request, act manage.Actor) { a.rotateClient(w, r, act, kind) })
	}
	a.handle(http.MethodPost, "/clients/{id:[0-9]+}/tokens", a.clientToken)
	a.routeFederated()
}

func pathID(r *http.Request) int64 {
	id, err := strconv.ParseInt(mux.Vars(r)["id"], 10, 64)
	if err != nil {
		return -1 // not an id anything has: answers 404
	}
	return id
}

// clientInput is the body of a create or an edit. Pointers tell an absent
// field from a zero one.
type clientInput struct {
	Name          *string   `json:"name"`
	Description   *string   `json:"description"`
	AccessRights  *string   `json:"access_rights"`
	Scopes        *[]string `json:"scopes"`
	GrantTypes    *[]string `json:"grant_types"`
	MayIntrospect *bool     `json:"may_introspect"`
	TokenLifetime *int64    `json:"token_lifetime"`
	ReuseTokens   *bool     `json:"reuse_tokens"`
	// AccessTokenStrategy is opaque or jwt.
	AccessTokenStrategy *string `json:"access_token_strategy"`
	// TokenEndpointAuthMethod is client_secret_basic, client_secret_post
	// or private_key_jwt (RFC 7591 §2); private_key_jwt needs jwks (a JWK
	// Set object of public keys) or jwks_uri (https).
	TokenEndpointAuthMethod *string          `json:"token_endpoint_auth_method"`
	JWKS                    *json.RawMessage `json:"jwks"`
	JWKSURI                 *string          `json:"jwks_uri"`
	// DPoPBoundAccessTokens requires a DPoP proof (RFC 9449 §5.2).
	DPoPBoundAccessTokens *bool `json:"dpop_bound_access_tokens"`
	// RateLimits replaces the credential's overrides of rate classes; {}
	// removes them all.
	RateLimits *map[string]rateLimitView `json:"rate_limits"`
	// Quota sets the credential's quota; null removes it.
	Quota Optional[quotaView] `json:"quota,omitzero"`
	// AllowedCIDRs replaces the allowlist; [] removes it.
	AllowedCIDRs *[]string `json:"allowed_cidrs"`
	ExpiresAt    *string   `json:"expires_at"` // RFC 3339; "" clears
	Status       *string   `json:"status"`
	OwnerID      *int64    `json:"owner_id"`
	AccountID    *int64    `json:"account_id"`
	// Password is the caller's own password, asked on create when the
	// account's policy requires it; never stored or shown.
	Password *string `json:"password"`
}

// withSecret shows the secret (and, for keys, the key) once.
func withSecret(v clientView, c storage.Client, s string) clientView {
	if s == "" {
		return v // a private_key_jwt client has none to show
	}
	v.ClientSecret, v.Use = s, "client_secret"
	if c.Kind == storage.KindKey {
		v.Key, _ = apikey.Format(c.ID, s)
		v.Use = "key"
	}
	return v
}

func (a *API) createClient(w http.ResponseWriter, r *http.Request, act manage.Actor, kind storage.Kind) {
	var in clientInput
	if pr := decode(r, a.opts.MaxBodyBytes, &in); pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	c, plain, err := a.opts.Service.CreateClient(r.Context(), act, kind, in.domain())
	if err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	w.Header().Set("ETag", etag(c.Version))
	w.Header().Set("Location", Prefix+"/"+string(kind)+"s/"+strconv.FormatInt(c.ID, 10))
	writeJSON(w, http.StatusCreated, withSecret(viewClient(c, a.opts.Service.Now()), c, plain))
}

func (a *API) listClients(w http.ResponseWriter, r *http.Request, act manage.Actor, kind storage.Kind) {
	after, limit, pr := page(r, "account_id", "subtree", "owner_id", "status", "name")
	if pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	q := r.URL.Query()
	f := storage.ClientFilter{AccountID: act.AccountID(), Subtree: true, Kind: kind, Name: q.Get("name")}
	var errs []fieldError
	if raw := q.Get("account_id"); raw != "" {
		id, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			errs = append(errs, fieldError{Field: "account_id", Detail: "must be an account id"})
		} else {
			f.AccountID, f.Subtree = id, q.Get("subtree") == "true"
		}
	}
	if raw := q.Get("owner_id"); raw != "" {
		id, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || id <= 0 {
			errs = append(errs, fieldError{Field: "owner_id", Detail: "must be a user id"})
		}
		f.OwnerID = id
	}
	if raw := q.Get("status"); raw != "" {
		if !storage.Status(raw).Valid() {
			errs = append(errs, fieldError{Field: "status", Detail: "must be active or disabled"})
		}
		f.Status = storage.Status(raw)
	}
	if errs != nil {
		writeProblem(w, r, badRequest("Invalid filters.", errs...))
		return
	}
	items, err := a.opts.Service.ListClients(r.Context(), act, kind, f, storage.Page{After: after, Limit: limit})
	if err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	now := a.opts.Service.Now()
	views := make([]clientView, len(items))
	for i, c := range items {
		views[i] = viewClient(c, now)
	}
	writeJSON(w, http.StatusOK, newList(views, limit, func(v clientView) int64 { return v.ID }))
}

// ListClients lists one page of the credentials of kind that f selects
// among those act may see. A member sees their own and nothing else,

func (a *API) getClient(w http.ResponseWriter, r *http.Request, act manage.Actor, kind storage.Kind) {
	c, err := a.opts.Service.GetClient(r.Context(), act, kind, pathID(r))
	if err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	v, err := a.withUsage(r, viewClient(c, a.opts.Service.Now()), c)
	if err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	w.Header().Set("ETag", etag(c.Version))
	writeJSON(w, http.StatusOK, v)
}

func (a *API) updateClient(w http.ResponseWriter, r *http.Request, act manage.Actor, kind storage.Kind) {
	var in clientInput
	if pr := decode(r, a.opts.MaxBodyBytes, &in); pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	want, pr := ifMatch(r)
	if pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	c, err := a.opts.Service.UpdateClient(r.Context(), act, kind, pathID(r), want, in.domain())
	if err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	// The change is made: a failed read of the usage leaves it out
	// rather than answering an error for a change that happened.
	v := viewClient(c, a.opts.Service.Now())
	if withU, err := a.withUsage(r, v, c); err == nil {
		v = withU
	}
	w.Header().Set("ETag", etag(c.Version))
	writeJSON(w, http.StatusOK, v)
}

// rotateInput chooses how long the old secret keeps working.
type rotateInput struct {
	// OverlapSeconds: 0 retires the old secret (and its tokens) at once;
	// absent means the configured default.
	OverlapSeconds *int64 `json:"overlap_seconds"`
}

func (a *API) rotateClient(w http.ResponseWriter, r *http.Request, act manage.Actor, kind storage.Kind) {
	in := rotateInput{}
	if r.ContentLength != 0 {
		if pr := decode(r, a.opts.MaxBodyBytes, &in); pr != nil {
			writeProblem(w, r, *pr)
			return
		}
	}
	want, pr := ifMatch(r)
	if pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	c, plain, err := a.opts.Service.RotateClient(r.Context(), act, kind, pathID(r), want, in.OverlapSeconds)
	if err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	w.Header().Set("ETag", etag(c.Version))
	writeJSON(w, http.StatusOK, withSecret(viewClient(c, a.opts.Service.Now()), c, plain))
}

func (a *API) deleteClient(w http.ResponseWriter, r *http.Request, act manage.Actor, kind storage.Kind) {
	want, pr := ifMatch(r)
	if pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	replacement, err := a.opts.Service.DeleteClient(r.Context(), act, kind, pathID(r), want)
	if err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	if replacement.ID != 0 {
		w.Header().Set("Tollgate-Replacement-Key", strconv.FormatInt(replacement.ID, 10))
	}
	w.WriteHeader(http.StatusNoContent)
}

// tokenInput confirms the caller's identity for a client token.
type tokenInput struct {
	Password string `json:"password"`
	Lifetime *int64 `json:"lifetime"`
}

// client, after the calling user re-enters their own password.
func (a *API) clientToken(w http.ResponseWriter, r *http.Request, act manage.Actor) {
	var in tokenInput
	if pr := decode(r, a.opts.MaxBodyBytes, &in); pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	tok, err := a.opts.Service.GenerateClientToken(r.Context(), act, pathID(r), in.Password, in.Lifetime)
	if err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{
		"access_token": tok.AccessToken,
		"token_type":   "bearer",
		"expires_in":   int64(tok.Lifetime / time.Second),
		"expires_at":   tok.ExpiresAt.UTC(),
		"scope":        strings.Join(tok.Scopes, " "),
	})
}

// domain returns in as the service takes it.
func (in clientInput) domain() manage.ClientInput {
	out := manage.ClientInput{
		Name: in.Name, Description: in.Description, AccessRights: in.AccessRights, Scopes: in.Scopes,
		GrantTypes: in.GrantTypes, MayIntrospect: in.MayIntrospect, TokenLifetime: in.TokenLifetime,
		ReuseTokens: in.ReuseTokens, AccessTokenStrategy: in.AccessTokenStrategy,
		DPoPBoundAccessTokens: in.DPoPBoundAccessTokens, ExpiresAt: in.ExpiresAt, Status: (*storage.Status)(in.Status),
		OwnerID: in.OwnerID, AccountID: in.AccountID, Password: in.Password,
		TokenEndpointAuthMethod: in.TokenEndpointAuthMethod, JWKSURI: in.JWKSURI,
	}
	if in.JWKS != nil {
		// Stored compact; the service validates it (a body that is not a
		// JWK Set object is refused there).
		var b bytes.Buffer
		raw := string(*in.JWKS)
		if json.Compact(&b, *in.JWKS) == nil {
			raw = b.String()
		}
		out.JWKS = &raw
	}
	out.AllowedCIDRs = in.AllowedCIDRs
	out.Quota = quotaInput(in.Quota)
	if in.RateLimits != nil {
		limits := make(map[string]storage.RateLimit, len(*in.RateLimits))
		for class, l := range *in.RateLimits {
			limits[class] = storage.RateLimit{Rate: l.Rate, Burst: l.Burst}
		}
		out.RateLimits = &limits
	}
	return out
}

// authMethodOrBasic shows an unset authentication method as the default.
func authMethodOrBasic(s string) string {
	if s == "" {
		return storage.AuthSecretBasic
	}
	return s
}

// strategyOrOpaque shows an unset access token strategy as the default.
func strategyOrOpaque(s string) string {
	if s == "" {
		return storage.StrategyOpaque
	}
	return s
}

func rawOrNil(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}
