package admin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/pkg/scope"
	"github.com/tollgate/tollgate/pkg/secret"
	"github.com/tollgate/tollgate/pkg/tokens"
	"github.com/tollgate/tollgate/storage"
)

// Limits on what people type.
const (
	maxNameLength        = 100
	maxDescriptionLength = 500
)

// clientView is a credential as the API shows it: never its secret, except
// ClientSecret and Key, set once in the answer that creates or rotates it.
type clientView struct {
	ID                     int64                    `json:"id"`
	Kind                   string                   `json:"kind"`
	AccountID              int64                    `json:"account_id"`
	OwnerID                int64                    `json:"owner_id,omitempty"`
	IsDefault              bool                     `json:"is_default"`
	Name                   string                   `json:"name"`
	Description            string                   `json:"description"`
	AccessRights           string                   `json:"access_rights,omitempty"`
	Scopes                 []string                 `json:"scopes"`
	GrantTypes             []string                 `json:"grant_types"`
	MayIntrospect          bool                     `json:"may_introspect"`
	TokenLifetime          int64                    `json:"token_lifetime,omitempty"`
	ReuseTokens            bool                     `json:"reuse_tokens"`
	RateLimits             map[string]rateLimitView `json:"rate_limits,omitempty"`
	Status                 string                   `json:"status"`
	DisabledReason         string                   `json:"disabled_reason,omitempty"`
	SecretHint             string                   `json:"secret_hint"`
	KeyHint                string                   `json:"key_hint,omitempty"`
	ExpiresAt              *time.Time               `json:"expires_at,omitempty"`
	LastUsedAt             *time.Time               `json:"last_used_at,omitempty"`
	PreviousSecretRetireAt *time.Time               `json:"previous_secret_retire_at,omitempty"`
	CreatedBy              int64                    `json:"created_by,omitempty"`
	CreatedAt              time.Time                `json:"created_at"`
	UpdatedAt              time.Time                `json:"updated_at"`
	Version                int64                    `json:"version"`
	ClientSecret           string                   `json:"client_secret,omitempty"`
	Key                    string                   `json:"key,omitempty"`
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
		ID: c.ID, Kind: string(c.Kind), AccountID: c.AccountID, OwnerID: c.OwnerID, IsDefault: c.IsDefault,
		Name: c.Name, Description: c.Description, AccessRights: c.AccessRights,
		Scopes: nonNil(c.Scopes), GrantTypes: nonNil(c.GrantTypes), MayIntrospect: c.MayIntrospect,
		TokenLifetime: int64(c.TokenLifetime / time.Second), ReuseTokens: c.ReuseTokens,
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
	return v
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
		a.handle(http.MethodPost, k.path, func(w http.ResponseWriter, r *http.Request, p *principal) { a.createClient(w, r, p, kind) })
		a.handle(http.MethodGet, k.path, func(w http.ResponseWriter, r *http.Request, p *principal) { a.listClients(w, r, p, kind) })
		a.handle(http.MethodGet, k.path+"/{id:[0-9]+}", func(w http.ResponseWriter, r *http.Request, p *principal) { a.getClient(w, r, p, kind) })
		a.handle(http.MethodPatch, k.path+"/{id:[0-9]+}", func(w http.ResponseWriter, r *http.Request, p *principal) { a.updateClient(w, r, p, kind) })
		a.handle(http.MethodDelete, k.path+"/{id:[0-9]+}", func(w http.ResponseWriter, r *http.Request, p *principal) { a.deleteClient(w, r, p, kind) })
		a.handle(http.MethodPost, k.path+"/{id:[0-9]+}/rotate", func(w http.ResponseWriter, r *http.Request, p *principal) { a.rotateClient(w, r, p, kind) })
	}
	a.handle(http.MethodPost, "/clients/{id:[0-9]+}/tokens", a.clientToken)
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
	// RateLimits replaces the credential's overrides of rate classes; {}
	// removes them all.
	RateLimits *map[string]rateLimitView `json:"rate_limits"`
	ExpiresAt  *string                   `json:"expires_at"` // RFC 3339; "" clears
	Status     *string                   `json:"status"`
	OwnerID    *int64                    `json:"owner_id"`
	AccountID  *int64                    `json:"account_id"`
	// Password is the caller's own password, asked on create when the
	// account's policy requires it; never stored or shown.
	Password *string `json:"password"`
}

// apply validates in and applies it to c, collecting every problem.
func (a *API) apply(in clientInput, c *storage.Client, p *principal, creating bool) []fieldError {
	var errs []fieldError
	bad := func(field, detail string) { errs = append(errs, fieldError{Field: field, Detail: detail}) }
	if in.Name != nil {
		if msg := text(*in.Name, 1, maxNameLength); msg != "" {
			bad("name", msg)
		}
		c.Name = strings.TrimSpace(*in.Name)
	} else if creating {
		bad("name", "is required")
	}
	if in.Description != nil {
		if msg := text(*in.Description, 0, maxDescriptionLength); msg != "" {
			bad("description", msg)
		}
		c.Description = strings.TrimSpace(*in.Description)
	}
	switch {
	case in.AccessRights != nil && in.Scopes != nil:
		bad("scopes", "give access_rights or scopes, not both")
	case in.AccessRights != nil:
		scopes, ok := a.opts.AccessRights[*in.AccessRights]
		if !ok {
			bad("access_rights", "must be one of "+strings.Join(a.bundleNames(), ", "))
		}
		for _, s := range scopes {
			if s == a.opts.ManagementScope && !p.admin {
				bad("access_rights", "this bundle holds the management scope, which only admins may grant")
				break
			}
		}
		c.AccessRights, c.Scopes = *in.AccessRights, slices.Clone(scopes)
	case in.Scopes != nil:
		for _, s := range *in.Scopes {
			if !a.scopeAllowed(s, p) {
				bad("scopes", fmt.Sprintf("%q is not a scope you may grant", s))
			}
		}
		c.AccessRights, c.Scopes = "", dedupe(*in.Scopes)
	case creating:
		c.AccessRights, c.Scopes = a.opts.DefaultAccessRights, slices.Clone(a.opts.AccessRights[a.opts.DefaultAccessRights])
	}
	if in.GrantTypes != nil {
		if c.Kind == storage.KindKey {
			bad("grant_types", "an API key always uses client_credentials")
		}
		for _, g := range *in.GrantTypes {
			if !slices.Contains(a.opts.GrantTypes, g) {
				bad("grant_types", fmt.Sprintf("must be among %s", strings.Join(a.opts.GrantTypes, ", ")))
				break
			}
		}
		c.GrantTypes = dedupe(*in.GrantTypes)
	} else if creating {
		c.GrantTypes = a.defaultGrantTypes(c.Kind)
	}
	if in.MayIntrospect != nil {
		if !p.admin && *in.MayIntrospect {
			bad("may_introspect", "only admins may let a credential introspect tokens")
		}
		c.MayIntrospect = *in.MayIntrospect
	}
	if in.TokenLifetime != nil {
		if *in.TokenLifetime < 0 || *in.TokenLifetime > int64(a.opts.ClientTokenLifetime/time.Second) {
			bad("token_lifetime", fmt.Sprintf("must be 0 (the default) to %d seconds", int64(a.opts.ClientTokenLifetime/time.Second)))
		}
		c.TokenLifetime = time.Duration(*in.TokenLifetime) * time.Second
	}
	if in.ReuseTokens != nil {
		c.ReuseTokens = *in.ReuseTokens
	}
	if in.RateLimits != nil {
		if !p.admin {
			bad("rate_limits", "only admins may change a credential's rate limits")
		}
		limits := map[string]storage.RateLimit{}
		for class, l := range *in.RateLimits {
			switch {
			case !slices.Contains(a.opts.RateClasses, class):
				bad("rate_limits", fmt.Sprintf("%q is not a rate class (%s)", class, strings.Join(a.opts.RateClasses, ", ")))
			case l.Rate < 1 || l.Burst < 1 || l.Rate > 1_000_000 || l.Burst > 1_000_000:
				bad("rate_limits", fmt.Sprintf("class %q: rate and burst must be 1 to 1000000", class))
			default:
				limits[class] = storage.RateLimit{Rate: l.Rate, Burst: l.Burst}
			}
		}
		if len(limits) == 0 {
			limits = nil
		}
		c.RateLimits = limits
	}
	if in.ExpiresAt != nil {
		if *in.ExpiresAt == "" {
			c.ExpiresAt = time.Time{}
		} else if t, err := time.Parse(time.RFC3339, *in.ExpiresAt); err != nil {
			bad("expires_at", "must be an RFC 3339 time, or \"\" for never")
		} else if !t.After(a.opts.Now()) {
			bad("expires_at", "must be in the future")
		} else {
			c.ExpiresAt = t.UTC()
		}
	}
	if in.Status != nil {
		switch st := storage.Status(*in.Status); {
		case creating:
			bad("status", "a new credential is always active")
		case !st.Valid():
			bad("status", "must be active or disabled")
		case st == storage.StatusDisabled:
			// Every token minted with it goes inactive at once. One
			// already disabled keeps the reason it was disabled for.
			c.Disable(storage.DisabledManually)
		default:
			c.Enable(a.opts.Now())
		}
	}
	if !creating && (in.OwnerID != nil || in.AccountID != nil) {
		bad("owner_id", "the owner and account of a credential cannot change")
	}
	if !creating && in.Password != nil {
		bad("password", "is asked only when creating a credential")
	}
	return errs
}

// DefaultGrantTypes returns the grant types a new credential of kind gets
// when its creator names none: the configured list for a client, so one
// added in the console works with the eskimi_dsp grant too;
// client_credentials for a key, which always uses it alone.
func (a *API) DefaultGrantTypes(kind storage.Kind) []string { return a.defaultGrantTypes(kind) }

// GrantTypes returns the grant types a client may be allowed.
func (a *API) GrantTypes() []string { return slices.Clone(a.opts.GrantTypes) }

func (a *API) defaultGrantTypes(kind storage.Kind) []string {
	if kind == storage.KindKey || len(a.opts.DefaultGrantTypes) == 0 {
		return []string{"client_credentials"}
	}
	return slices.Clone(a.opts.DefaultGrantTypes)
}

func (a *API) bundleNames() []string {
	names := make([]string, 0, len(a.opts.AccessRights))
	for n := range a.opts.AccessRights {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// scopeAllowed reports whether p may put scope s on a credential: a scope of
// a bundle, or the management scope for admins.
func (a *API) scopeAllowed(s string, p *principal) bool {
	if !scope.Valid(s) {
		return false
	}
	if s == a.opts.ManagementScope {
		return p.admin
	}
	for _, b := range a.opts.AccessRights {
		if slices.Contains(b, s) {
			return true
		}
	}
	return false
}

func dedupe(in []string) []string {
	out := []string{}
	for _, s := range in {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// text checks a name or description.
func text(s string, min, max int) string {
	s = strings.TrimSpace(s)
	n := utf8.RuneCountInString(s)
	switch {
	case n < min:
		return "must not be empty"
	case n > max:
		return fmt.Sprintf("must be at most %d characters", max)
	}
	for _, r := range s {
		if r == '\n' || r == '\t' {
			continue
		}
		// Controls (C0, DEL, C1) and format characters (Unicode category
		// Cf: bidirectional overrides such as U+202E, zero-width spaces
		// and joiners, the byte-order mark), and the line and paragraph
		// separators, change how a name reads without showing: an override
		// makes one name display as another.
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' {
			return "must not contain control or invisible formatting characters"
		}
	}
	return ""
}

// newSecret generates a secret and returns it with its hash.
func (a *API) newSecret(ctx context.Context) (string, string, error) {
	s, err := secret.Generate()
	if err != nil {
		return "", "", err
	}
	h, err := a.opts.Hasher.Hash(ctx, []byte(s))
	if err != nil {
		return "", "", err
	}
	return s, string(h), nil
}

// withSecret shows the secret (and, for keys, the key) once.
func withSecret(v clientView, c storage.Client, s string) clientView {
	v.ClientSecret, v.Use = s, "client_secret"
	if c.Kind == storage.KindKey {
		v.Key, _ = apikey.Format(c.ID, s)
		v.Use = "key"
	}
	return v
}

func (a *API) createClient(w http.ResponseWriter, r *http.Request, p *principal, kind storage.Kind) {
	var in clientInput
	if pr := decode(r, a.opts.MaxBodyBytes, &in); pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	c, plain, err := a.CreateClient(r.Context(), Actor{p}, kind, in)
	if err != nil {
		writeProblem(w, r, storeProblem(err))
		return
	}
	w.Header().Set("ETag", etag(c.Version))
	w.Header().Set("Location", Prefix+"/"+string(kind)+"s/"+strconv.FormatInt(c.ID, 10))
	writeJSON(w, http.StatusCreated, withSecret(viewClient(c, a.opts.Now()), c, plain))
}

// CreateClient creates a credential of kind for act and answers it with its
// secret, the only time the secret is shown. By default it belongs to act's
// account and is owned by act; an admin may give in.OwnerID or in.AccountID
// of their subtree.
func (a *API) CreateClient(ctx context.Context, act Actor, kind storage.Kind, in ClientInput) (storage.Client, string, error) {
	p := act.p
	c := storage.Client{Kind: kind, Status: storage.StatusActive, AccountID: p.accountID, OwnerID: p.userID(), CreatedBy: p.userID()}
	errs := a.apply(in, &c, p, true)
	// Whose is it? An admin may create credentials for a user or account of
	// the subtree; a member only for themselves.
	if in.OwnerID != nil && *in.OwnerID != c.OwnerID {
		owner, err := a.opts.Store.GetUser(ctx, *in.OwnerID)
		ok := err == nil && p.admin
		if ok {
			ok, err = a.inSubtree(ctx, p, owner.AccountID)
		}
		if err != nil && !isNotFound(err) {
			return storage.Client{}, "", unavailable(err)
		}
		if !ok {
			errs = append(errs, fieldError{Field: "owner_id", Detail: "no such user among those you manage"})
		}
		c.OwnerID, c.AccountID = owner.ID, owner.AccountID
		if ok && slices.Contains(c.Scopes, a.opts.ManagementScope) && owner.Role != storage.RoleAdmin {
			errs = append(errs, fieldError{Field: "owner_id", Detail: "a credential with the management scope needs an admin owner"})
		}
	}
	if in.AccountID != nil && *in.AccountID != c.AccountID {
		ok, err := a.inSubtree(ctx, p, *in.AccountID)
		if err != nil {
			return storage.Client{}, "", unavailable(err)
		}
		if !ok || !p.admin || in.OwnerID != nil {
			errs = append(errs, fieldError{Field: "account_id", Detail: "no such account among those you manage (or it contradicts owner_id)"})
		}
		c.AccountID = *in.AccountID
		if in.OwnerID == nil {
			c.OwnerID = 0
		}
	}
	if slices.Contains(c.Scopes, a.opts.ManagementScope) && c.OwnerID == 0 {
		errs = append(errs, fieldError{Field: "scopes", Detail: "the management scope needs an admin owner: an account credential cannot hold it"})
	}
	if errs != nil {
		return storage.Client{}, "", invalid(errs)
	}
	if err := a.checkCreatePolicies(ctx, p, c.AccountID, in.Password); err != nil {
		return storage.Client{}, "", err
	}
	plain, hash, err := a.newSecret(ctx)
	if err != nil {
		return storage.Client{}, "", problem{Status: http.StatusInternalServerError, cause: err}
	}
	c.SecretHash, c.SecretHint = hash, apikey.Hint(plain)
	err = a.opts.Store.InTx(ctx, func(tx storage.Store) error {
		var err error
		if c, err = tx.CreateClient(ctx, c); err != nil {
			return err
		}
		if c, err = setKeyHint(ctx, tx, c, plain); err != nil {
			return err
		}
		_, err = tx.AppendAudit(ctx, p.audit(string(kind)+".create", string(kind), c.ID, c.AccountID, "name "+strconv.Quote(c.Name)))
		return err
	})
	if err != nil {
		return storage.Client{}, "", storeProblem(err)
	}
	return c, plain, nil
}

// checkCreatePolicies applies the policies of account accountID to p
// creating a credential there: with keys_managed_by admins only an admin
// may; with require_password_for_new_keys the creator confirms who they
// are with their own password, through the same brute-force protection
// and check as a client token's confirmation. A management client acting
// for its owner has no password to give and is refused: the policy exists
// so that a bearer credential alone (a stolen token) cannot mint long-lived
// ones.
func (a *API) checkCreatePolicies(ctx context.Context, p *principal, accountID int64, password *string) error {
	pol, err := a.opts.Store.EffectivePolicies(ctx, accountID)
	if err != nil {
		return storeProblem(err)
	}
	if !p.admin && pol.KeysManagedBy == storage.KeysManagedByAdmins {
		return errAdminsManageKeys
	}
	if !pol.RequirePasswordForNewKeys {
		return nil
	}
	if p.user == nil {
		return problem{Status: http.StatusForbidden, Detail: "This account requires the creator's own password for a new credential, " +
			"and a client token has none: create it as a user (console, CLI or a user's token)."}
	}
	if password == nil || *password == "" {
		return invalid([]fieldError{{Field: "password", Detail: "is required: this account asks for your own password to create a credential"}})
	}
	err = a.verifyPassword(ctx, p.user.Username, p.user.PasswordHash, *password, "The password is wrong: the credential was not created.")
	if pr, ok := errors.AsType[problem](err); ok && pr.Status == http.StatusForbidden && pr.cause == nil {
		pr.Errors = []fieldError{{Field: "password", Detail: "is wrong"}}
		return pr
	}
	return err
}

// errAdminsManageKeys refuses a member under keys_managed_by admins.
var errAdminsManageKeys = problem{Status: http.StatusForbidden,
	Detail: "This account's policy lets only admins create, change or delete credentials (keys_managed_by: admins)."}

// checkManagePolicy refuses p changing or deleting credential c when the
// policy of c's account lets only admins manage credentials, and records
// the refusal.
func (a *API) checkManagePolicy(ctx context.Context, p *principal, c storage.Client, action string) *problem {
	if p.admin {
		return nil
	}
	pol, err := a.opts.Store.EffectivePolicies(ctx, c.AccountID)
	if err != nil {
		pr := storeProblem(err)
		return &pr
	}
	if pol.KeysManagedBy != storage.KeysManagedByAdmins {
		return nil
	}
	a.auditRefusal(ctx, p, string(c.Kind)+"."+action, string(c.Kind), c.ID, errAdminsManageKeys)
	pr := errAdminsManageKeys
	return &pr
}

func isNotFound(err error) bool { return err != nil && storeProblem(err).Status == http.StatusNotFound }

func (a *API) listClients(w http.ResponseWriter, r *http.Request, p *principal, kind storage.Kind) {
	after, limit, pr := page(r, "account_id", "subtree", "owner_id", "status", "name")
	if pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	q := r.URL.Query()
	f := storage.ClientFilter{AccountID: p.accountID, Subtree: true, Kind: kind, Name: q.Get("name")}
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
	items, err := a.ListClients(r.Context(), Actor{p}, kind, f, storage.Page{After: after, Limit: limit})
	if err != nil {
		writeProblem(w, r, storeProblem(err))
		return
	}
	now := a.opts.Now()
	views := make([]clientView, len(items))
	for i, c := range items {
		views[i] = viewClient(c, now)
	}
	writeJSON(w, http.StatusOK, newList(views, limit, func(v clientView) int64 { return v.ID }))
}

// ListClients lists one page of the credentials of kind that f selects
// among those act may see. A member sees their own and nothing else,
// whatever f asks; an admin any account of their subtree (another account
// is not found).
func (a *API) ListClients(ctx context.Context, act Actor, kind storage.Kind, f storage.ClientFilter, pg storage.Page) ([]storage.Client, error) {
	p := act.p
	f.Kind = kind
	if !p.admin {
		f = storage.ClientFilter{AccountID: p.accountID, OwnerID: p.userID(), Status: f.Status, Kind: kind, Name: f.Name}
	} else if ok, err := a.inSubtree(ctx, p, f.AccountID); err != nil {
		return nil, unavailable(err)
	} else if !ok {
		return nil, errNotFound
	}
	items, err := a.opts.Store.ListClients(ctx, f, pg)
	if err != nil {
		return nil, storeProblem(err)
	}
	return items, nil
}

func (a *API) getClient(w http.ResponseWriter, r *http.Request, p *principal, kind storage.Kind) {
	c, err := a.GetClient(r.Context(), Actor{p}, kind, pathID(r))
	if err != nil {
		writeProblem(w, r, storeProblem(err))
		return
	}
	w.Header().Set("ETag", etag(c.Version))
	writeJSON(w, http.StatusOK, viewClient(c, a.opts.Now()))
}

// GetClient reads credential id of kind: not found when it does not exist,
// is of another kind, or is not act's to see.
func (a *API) GetClient(ctx context.Context, act Actor, kind storage.Kind, id int64) (storage.Client, error) {
	c, pr := a.loadClient(ctx, act.p, id, kind)
	if pr != nil {
		return storage.Client{}, *pr
	}
	return c, nil
}

// change loads credential id for p, checks the version it must have (want;
// 0: any) and applies fn in one transaction with its audit event.
func (a *API) change(ctx context.Context, p *principal, kind storage.Kind, id, want int64, action string, fn func(tx storage.Store, c *storage.Client) (string, error)) (storage.Client, *problem) {
	cur, pr := a.loadClient(ctx, p, id, kind)
	if pr != nil {
		return storage.Client{}, pr
	}
	if pr := a.checkManagePolicy(ctx, p, cur, action); pr != nil {
		return storage.Client{}, pr
	}
	var out storage.Client
	err := a.opts.Store.InTx(ctx, func(tx storage.Store) error {
		var detail string
		c, err := tx.UpdateClient(ctx, id, func(c *storage.Client) error {
			if want != 0 && c.Version != want {
				return errPrecondion
			}
			var err error
			detail, err = fn(tx, c)
			return err
		})
		if err != nil {
			return err
		}
		out = c
		_, err = tx.AppendAudit(ctx, p.audit(string(kind)+"."+action, string(kind), c.ID, c.AccountID, detail))
		return err
	})
	if err != nil {
		pr := storeProblem(err)
		a.auditRefusal(ctx, p, string(kind)+"."+action, string(kind), id, pr)
		return storage.Client{}, &pr
	}
	return out, nil
}

// auditRefusal records a refused change of a record the caller can see
// (conflict, failed precondition, invalid fields), outside the transaction
// that was rolled back. Outages are not refusals and are not recorded.
func (a *API) auditRefusal(ctx context.Context, p *principal, action, targetType string, targetID int64, pr problem) {
	switch pr.Status {
	case http.StatusConflict, http.StatusPreconditionFailed, http.StatusUnprocessableEntity, http.StatusForbidden:
	default:
		return
	}
	c, err := a.opts.Store.GetClient(ctx, targetID)
	if err != nil {
		return
	}
	e := p.audit(action, targetType, targetID, c.AccountID, fmt.Sprintf("refused: %d %s", pr.Status, pr.Detail))
	e.Outcome = "failure"
	if _, err := a.opts.Store.AppendAudit(ctx, e); err != nil {
		a.opts.Logger.WarnContext(ctx, "audit a refused change", "err", err)
	}
}

func (a *API) updateClient(w http.ResponseWriter, r *http.Request, p *principal, kind storage.Kind) {
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
	c, err := a.UpdateClient(r.Context(), Actor{p}, kind, pathID(r), want, in)
	if err != nil {
		writeProblem(w, r, storeProblem(err))
		return
	}
	w.Header().Set("ETag", etag(c.Version))
	writeJSON(w, http.StatusOK, viewClient(c, a.opts.Now()))
}

// UpdateClient changes the fields in sets of credential id of kind, all or
// none, when its version is want (0: whatever it is). Disabling it, or
// narrowing its scopes, revokes its tokens.
func (a *API) UpdateClient(ctx context.Context, act Actor, kind storage.Kind, id, want int64, in ClientInput) (storage.Client, error) {
	p := act.p
	c, pr := a.change(ctx, p, kind, id, want, "update", func(tx storage.Store, c *storage.Client) (string, error) {
		old := *c
		old.Scopes, old.GrantTypes = slices.Clone(c.Scopes), slices.Clone(c.GrantTypes)
		if errs := a.apply(in, c, p, false); errs != nil {
			return "", invalid(errs)
		}
		// The management scope goes only to a credential an active admin
		// answers for, as on create.
		if slices.Contains(c.Scopes, a.opts.ManagementScope) && !slices.Contains(old.Scopes, a.opts.ManagementScope) {
			owner, err := tx.GetUser(ctx, c.OwnerID)
			if err != nil && !isNotFound(err) {
				return "", unavailable(err)
			}
			if c.OwnerID == 0 || err != nil || owner.Role != storage.RoleAdmin || owner.Status != storage.StatusActive {
				return "", invalid([]fieldError{{Field: "scopes", Detail: "the management scope needs an owner who is an active admin"}})
			}
		}
		// Narrowing what a credential may do also narrows its live tokens.
		for _, s := range old.Scopes {
			if !slices.Contains(c.Scopes, s) && c.Status == storage.StatusActive {
				c.Revoke()
				break
			}
		}
		return describeChanges(old, *c, changedFields(in)), nil
	})
	if pr != nil {
		return storage.Client{}, *pr
	}
	return c, nil
}

// describeChanges says, for the audit trail, what an update changed: each
// field that differs, old → new (a credential has no secret among these
// fields; the secret changes only by rotation). sent are the fields the
// update named, so one sent unchanged reads "unchanged".
func describeChanges(old, cur storage.Client, sent []string) string {
	var out []string
	add := func(field, from, to string) {
		if from != to {
			out = append(out, field+" "+from+" → "+to)
		}
	}
	add("name", strconv.Quote(old.Name), strconv.Quote(cur.Name))
	// Descriptions are cut, so the fields after them fit the event's
	// detail (storage cuts it at a few hundred characters).
	add("description", strconv.Quote(shorten(old.Description, 60)), strconv.Quote(shorten(cur.Description, 60)))
	add("access_rights", orNone(old.AccessRights), orNone(cur.AccessRights))
	add("scopes", orNone(strings.Join(old.Scopes, " ")), orNone(strings.Join(cur.Scopes, " ")))
	add("grant_types", orNone(strings.Join(old.GrantTypes, " ")), orNone(strings.Join(cur.GrantTypes, " ")))
	add("may_introspect", strconv.FormatBool(old.MayIntrospect), strconv.FormatBool(cur.MayIntrospect))
	add("token_lifetime", old.TokenLifetime.String(), cur.TokenLifetime.String())
	add("reuse_tokens", strconv.FormatBool(old.ReuseTokens), strconv.FormatBool(cur.ReuseTokens))
	add("rate_limits", rateLimitsText(old.RateLimits), rateLimitsText(cur.RateLimits))
	add("expires_at", timeText(old.ExpiresAt), timeText(cur.ExpiresAt))
	add("status", string(old.Status), string(cur.Status))
	if out == nil {
		return "unchanged (sent " + orNone(strings.Join(sent, ", ")) + ")"
	}
	return strings.Join(out, "; ")
}

// shorten cuts s to n characters, marking the cut with an ellipsis.
func shorten(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

func rateLimitsText(l map[string]storage.RateLimit) string {
	var parts []string
	for _, class := range slices.Sorted(maps.Keys(l)) {
		parts = append(parts, fmt.Sprintf("%s=%d:%d", class, l[class].Rate, l[class].Burst))
	}
	return orNone(strings.Join(parts, " "))
}

func changedFields(in clientInput) []string {
	var out []string
	add := func(set bool, name string) {
		if set {
			out = append(out, name)
		}
	}
	add(in.Name != nil, "name")
	add(in.Description != nil, "description")
	add(in.AccessRights != nil, "access_rights")
	add(in.Scopes != nil, "scopes")
	add(in.GrantTypes != nil, "grant_types")
	add(in.MayIntrospect != nil, "may_introspect")
	add(in.TokenLifetime != nil, "token_lifetime")
	add(in.ReuseTokens != nil, "reuse_tokens")
	add(in.RateLimits != nil, "rate_limits")
	add(in.ExpiresAt != nil, "expires_at")
	add(in.Status != nil, "status")
	return out
}

// rotateInput chooses how long the old secret keeps working.
type rotateInput struct {
	// OverlapSeconds: 0 retires the old secret (and its tokens) at once;
	// absent means the configured default.
	OverlapSeconds *int64 `json:"overlap_seconds"`
}

func (a *API) rotateClient(w http.ResponseWriter, r *http.Request, p *principal, kind storage.Kind) {
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
	c, plain, err := a.RotateClient(r.Context(), Actor{p}, kind, pathID(r), want, in.OverlapSeconds)
	if err != nil {
		writeProblem(w, r, storeProblem(err))
		return
	}
	w.Header().Set("ETag", etag(c.Version))
	writeJSON(w, http.StatusOK, withSecret(viewClient(c, a.opts.Now()), c, plain))
}

// RotateClient gives credential id of kind a new secret, answered once. The
// old one keeps working for overlapSeconds (nil: the configured default; 0
// retires it, and its tokens, at once).
func (a *API) RotateClient(ctx context.Context, act Actor, kind storage.Kind, id, want int64, overlapSeconds *int64) (storage.Client, string, error) {
	overlap := a.opts.RotationOverlap
	if overlapSeconds != nil {
		max := int64(a.opts.MaxRotationOverlap / time.Second)
		if *overlapSeconds < 0 || *overlapSeconds > max {
			return storage.Client{}, "", invalid([]fieldError{{Field: "overlap_seconds", Detail: fmt.Sprintf("must be 0 to %d", max)}})
		}
		overlap = time.Duration(*overlapSeconds) * time.Second
	}
	plain, hash, err := a.newSecret(ctx)
	if err != nil {
		return storage.Client{}, "", problem{Status: http.StatusInternalServerError, cause: err}
	}
	now := a.opts.Now()
	c, pr := a.change(ctx, act.p, kind, id, want, "rotate_secret", func(_ storage.Store, c *storage.Client) (string, error) {
		if c.Status != storage.StatusActive {
			return "", problem{Status: http.StatusConflict, Detail: "Enable the credential before rotating its secret."}
		}
		next := max(c.Generation, c.PreviousGeneration) + 1
		if overlap > 0 {
			c.PreviousSecretHash, c.PreviousGeneration, c.PreviousRetireAt = c.SecretHash, c.Generation, now.Add(overlap)
		} else {
			c.PreviousSecretHash, c.PreviousGeneration, c.PreviousRetireAt = "", 0, time.Time{}
		}
		c.SecretHash, c.SecretHint, c.Generation = hash, apikey.Hint(plain), next
		if c.Kind == storage.KindKey {
			var err error
			if c.SecretHint, err = apikey.KeyHint(c.ID, plain); err != nil {
				return "", err
			}
		}
		return fmt.Sprintf("old secret retires at %s", now.Add(overlap).UTC().Format(time.RFC3339)), nil
	})
	if pr != nil {
		return storage.Client{}, "", *pr
	}
	return c, plain, nil
}

func (a *API) deleteClient(w http.ResponseWriter, r *http.Request, p *principal, kind storage.Kind) {
	want, pr := ifMatch(r)
	if pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	replacement, err := a.DeleteClient(r.Context(), Actor{p}, kind, pathID(r), want)
	if err != nil {
		writeProblem(w, r, storeProblem(err))
		return
	}
	if replacement.ID != 0 {
		w.Header().Set("Tollgate-Replacement-Key", strconv.FormatInt(replacement.ID, 10))
	}
	w.WriteHeader(http.StatusNoContent)
}

// DeleteClient deletes credential id of kind when its version is want (0:
// whatever it is). Deleting a user's default key issues a new default key
// in the same transaction, answered as replacement (zero otherwise).
func (a *API) DeleteClient(ctx context.Context, act Actor, kind storage.Kind, id, want int64) (replacement storage.Client, err error) {
	p := act.p
	c, pr := a.loadClient(ctx, p, id, kind)
	if pr != nil {
		return storage.Client{}, *pr
	}
	if pr := a.checkManagePolicy(ctx, p, c, "delete"); pr != nil {
		return storage.Client{}, *pr
	}
	err = a.opts.Store.InTx(ctx, func(tx storage.Store) error {
		// Lock the row and check If-Match inside the transaction, so a change
		// committed since the read above is not deleted unseen.
		if _, err := tx.UpdateClient(ctx, c.ID, func(cur *storage.Client) error {
			if want != 0 && cur.Version != want {
				return errPrecondion
			}
			return nil
		}); err != nil {
			return err
		}
		if err := tx.DeleteClient(ctx, c.ID); err != nil {
			return err
		}
		if _, err := tx.AppendAudit(ctx, p.audit(string(kind)+".delete", string(kind), c.ID, c.AccountID, "name "+strconv.Quote(c.Name))); err != nil {
			return err
		}
		if !c.IsDefault {
			return nil
		}
		// Every user keeps a default key: deleting it issues a new one.
		var err error
		replacement, err = a.newDefaultKey(ctx, tx, c.OwnerID, c.AccountID)
		if err != nil {
			return err
		}
		_, err = tx.AppendAudit(ctx, p.audit("key.create_default", "key", replacement.ID, replacement.AccountID, "replaces deleted default key "+strconv.FormatInt(c.ID, 10)))
		return err
	})
	if err != nil {
		return storage.Client{}, storeProblem(err)
	}
	return replacement, nil
}

// newDefaultKey creates the system-generated default key of user ownerID.
// Its secret is shown to nobody: the owner rotates it to get a copy.
func (a *API) newDefaultKey(ctx context.Context, tx storage.Store, ownerID, accountID int64) (storage.Client, error) {
	return CreateDefaultKey(ctx, tx, a.opts.Hasher, ownerID, accountID, a.opts.DefaultAccessRights, a.opts.AccessRights[a.opts.DefaultAccessRights])
}

// CreateDefaultKey creates the system-generated default API key of user
// ownerID with the access rights bundle rights (of scopes). Its secret is
// shown to nobody: the owner rotates the key to get a copy.
func CreateDefaultKey(ctx context.Context, tx storage.Clients, hasher Hasher, ownerID, accountID int64, rights string, scopes []string) (storage.Client, error) {
	plain, err := secret.Generate()
	if err != nil {
		return storage.Client{}, err
	}
	hash, err := hasher.Hash(ctx, []byte(plain))
	if err != nil {
		return storage.Client{}, err
	}
	c, err := tx.CreateClient(ctx, storage.Client{
		AccountID: accountID, OwnerID: ownerID, Kind: storage.KindKey, IsDefault: true,
		Name: "Default key", Description: "Created by the system.",
		SecretHash: string(hash), SecretHint: apikey.Hint(plain),
		AccessRights: rights, Scopes: slices.Clone(scopes),
		GrantTypes: []string{"client_credentials"}, Status: storage.StatusActive,
	})
	if err != nil {
		return storage.Client{}, err
	}
	return setKeyHint(ctx, tx, c, plain)
}

// setKeyHint stores the hint of key c, created with secret plain: the
// key's real last characters (apikey.KeyHint), which depend on its id, so
// they are known only once it is stored. Clients keep their secret's hint.
func setKeyHint(ctx context.Context, tx storage.Clients, c storage.Client, plain string) (storage.Client, error) {
	if c.Kind != storage.KindKey {
		return c, nil
	}
	hint, err := apikey.KeyHint(c.ID, plain)
	if err != nil {
		return storage.Client{}, fmt.Errorf("key hint: %w", err)
	}
	return tx.UpdateClient(ctx, c.ID, func(c *storage.Client) error {
		c.SecretHint = hint
		return nil
	})
}

// tokenInput confirms the caller's identity for a client token.
type tokenInput struct {
	Password string `json:"password"`
	Lifetime *int64 `json:"lifetime"`
}

// ClientToken is a token generated for a client, shown once.
type ClientToken struct {
	AccessToken string
	Lifetime    time.Duration
	ExpiresAt   time.Time
	Scopes      []string
}

// clientToken serves POST /clients/{id}/tokens: a long-lived token for the
// client, after the calling user re-enters their own password.
func (a *API) clientToken(w http.ResponseWriter, r *http.Request, p *principal) {
	var in tokenInput
	if pr := decode(r, a.opts.MaxBodyBytes, &in); pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	tok, err := a.GenerateClientToken(r.Context(), Actor{p}, pathID(r), in.Password, in.Lifetime)
	if err != nil {
		writeProblem(w, r, storeProblem(err))
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

// GenerateClientToken mints a long-lived token for client id after act, a
// user, confirmed who they are with their own password (through the
// brute-force protection). lifetime is in seconds; nil means the
// configured client token lifetime, which is also the most it may be.
func (a *API) GenerateClientToken(ctx context.Context, act Actor, id int64, password string, lifetime *int64) (ClientToken, error) {
	p := act.p
	if p.user == nil {
		return ClientToken{}, problem{Status: http.StatusForbidden, Detail: "Only a user can confirm their identity with a password."}
	}
	life := a.opts.ClientTokenLifetime
	if lifetime != nil {
		max := int64(a.opts.ClientTokenLifetime / time.Second)
		if *lifetime <= 0 || *lifetime > max {
			return ClientToken{}, invalid([]fieldError{{Field: "lifetime", Detail: fmt.Sprintf("must be 1 to %d seconds", max)}})
		}
		life = time.Duration(*lifetime) * time.Second
	}
	c, pr := a.loadClient(ctx, p, id, storage.KindClient)
	if pr != nil {
		return ClientToken{}, *pr
	}
	if err := a.verifyPassword(ctx, p.user.Username, p.user.PasswordHash, password, "The password is wrong: identity not confirmed."); err != nil {
		return ClientToken{}, err
	}
	if !c.Usable(a.opts.Now()) {
		return ClientToken{}, problem{Status: http.StatusConflict, Detail: "The client is disabled or expired."}
	}
	now := a.opts.Now().Truncate(time.Second)
	// The audit event comes first: no token without its record.
	if _, err := a.opts.Store.AppendAudit(ctx, p.audit("client.generate_token", "client", c.ID, c.AccountID,
		"token expires at "+now.Add(life).UTC().Format(time.RFC3339))); err != nil {
		return ClientToken{}, unavailable(err)
	}
	tok, rec, err := a.opts.Tokens.Issue(ctx, "", tokens.Claims{
		ClientID: c.ID, Generation: c.Generation, AccountID: c.AccountID,
		GrantType: "client_token", ExpiresAt: now.Add(life),
	}, c.Scopes, nil)
	if err != nil {
		return ClientToken{}, unavailable(err)
	}
	return ClientToken{AccessToken: tok, Lifetime: life, ExpiresAt: rec.ExpiresAt, Scopes: rec.Scopes}, nil
}
