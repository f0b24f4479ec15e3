package manage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/pkg/assertion"
	"github.com/tollgate/tollgate/pkg/egress"
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

// ClientInput is what a create or an edit of a credential sets; nil fields
// are left as they are (or take their defaults on create).
type ClientInput struct {
	Name         *string
	Description  *string
	AccessRights *string
	Scopes       *[]string
	GrantTypes   *[]string
	// MayIntrospect lets the credential introspect tokens (admins only).
	MayIntrospect *bool
	// TokenLifetime is in seconds; 0 is the configured default.
	TokenLifetime *int64
	ReuseTokens   *bool
	// AccessTokenStrategy is storage.StrategyOpaque or StrategyJWT.
	AccessTokenStrategy *string
	// TokenEndpointAuthMethod is storage.AuthSecretBasic, AuthSecretPost
	// or AuthPrivateKeyJWT; the last needs JWKS or JWKSURI (one of them).
	TokenEndpointAuthMethod *string
	// JWKS is a public JWK Set's JSON; "" removes it.
	JWKS *string
	// JWKSURI is the https URL of the client's JWK Set; "" removes it.
	JWKSURI *string
	// DPoPBoundAccessTokens requires a DPoP proof for every token.
	DPoPBoundAccessTokens *bool
	// RateLimits replaces the credential's overrides of rate classes; an
	// empty map removes them all.
	RateLimits *map[string]storage.RateLimit
	// Quota sets the credential's quota (admins only); set to nil removes
	// it.
	Quota Optional[QuotaInput]
	// AllowedCIDRs replaces the networks the credential may be used from
	// (addresses or CIDR prefixes, canonicalised); empty: anywhere.
	AllowedCIDRs *[]string
	// ExpiresAt is an RFC 3339 time; "" clears it (never expires).
	ExpiresAt *string
	Status    *storage.Status
	// OwnerID and AccountID say whose a new credential is (an admin's
	// choice); they cannot change.
	OwnerID   *int64
	AccountID *int64
	// Password is the actor's own password, asked on create when the
	// account's policy requires it; never stored or shown.
	Password *string
}

// apply validates in and applies it to c, collecting every problem.
func (s *Service) apply(in ClientInput, c *storage.Client, p *principal, creating bool) []FieldError {
	var errs []FieldError
	bad := func(field, detail string) { errs = append(errs, FieldError{Field: field, Detail: detail}) }
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
		scopes, ok := s.opts.AccessRights[*in.AccessRights]
		if !ok {
			bad("access_rights", "must be one of "+strings.Join(s.bundleNames(), ", "))
		}
		for _, sc := range scopes {
			if sc == s.opts.ManagementScope && !p.admin {
				bad("access_rights", "this bundle holds the management scope, which only admins may grant")
				break
			}
		}
		c.AccessRights, c.Scopes = *in.AccessRights, slices.Clone(scopes)
	case in.Scopes != nil:
		for _, sc := range *in.Scopes {
			if !s.scopeAllowed(sc, p) {
				bad("scopes", fmt.Sprintf("%q is not a scope you may grant", sc))
			}
		}
		c.AccessRights, c.Scopes = "", dedupe(*in.Scopes)
	case creating:
		c.AccessRights, c.Scopes = s.opts.DefaultAccessRights, slices.Clone(s.opts.AccessRights[s.opts.DefaultAccessRights])
	}
	if in.GrantTypes != nil {
		if c.Kind == storage.KindKey {
			bad("grant_types", "an API key always uses client_credentials")
		}
		for _, g := range *in.GrantTypes {
			if !slices.Contains(s.opts.GrantTypes, g) {
				bad("grant_types", fmt.Sprintf("must be among %s", strings.Join(s.opts.GrantTypes, ", ")))
				break
			}
		}
		c.GrantTypes = dedupe(*in.GrantTypes)
	} else if creating {
		c.GrantTypes = s.DefaultGrantTypes(c.Kind)
	}
	if in.MayIntrospect != nil {
		if !p.admin && *in.MayIntrospect {
			bad("may_introspect", "only admins may let a credential introspect tokens")
		}
		c.MayIntrospect = *in.MayIntrospect
	}
	if in.TokenLifetime != nil {
		if *in.TokenLifetime < 0 || *in.TokenLifetime > int64(s.opts.ClientTokenLifetime/time.Second) {
			bad("token_lifetime", fmt.Sprintf("must be 0 (the default) to %d seconds", int64(s.opts.ClientTokenLifetime/time.Second)))
		}
		c.TokenLifetime = time.Duration(*in.TokenLifetime) * time.Second
	}
	if in.ReuseTokens != nil {
		c.ReuseTokens = *in.ReuseTokens
	}
	if in.DPoPBoundAccessTokens != nil {
		c.DPoPBoundAccessTokens = *in.DPoPBoundAccessTokens
	}
	if in.AccessTokenStrategy != nil {
		if *in.AccessTokenStrategy != storage.StrategyOpaque && *in.AccessTokenStrategy != storage.StrategyJWT {
			bad("access_token_strategy", "must be opaque or jwt")
		}
		c.AccessTokenStrategy = *in.AccessTokenStrategy
	} else if creating {
		c.AccessTokenStrategy = storage.StrategyOpaque
	}
	errs = append(errs, s.applyAuthMethod(in, c, creating)...)
	if in.RateLimits != nil {
		if !p.admin {
			bad("rate_limits", "only admins may change a credential's rate limits")
		}
		limits, lerrs := s.checkRateLimits("rate_limits", *in.RateLimits)
		errs = append(errs, lerrs...)
		c.RateLimits = limits
	}
	if in.Quota.Set {
		// Like the rate limits: what a credential may spend is the
		// provider's call, not the key holder's.
		if !p.admin {
			bad("quota", "only admins may change a credential's quota")
		}
		c.Quota = nil
		if in.Quota.Value != nil {
			q, qerrs := checkQuota("quota", *in.Quota.Value)
			errs = append(errs, qerrs...)
			c.Quota = q
		}
	}
	if in.AllowedCIDRs != nil {
		// Whoever may edit the credential may fence it in: the allowlist
		// only ever narrows where it works.
		cidrs, cerrs := CanonicalCIDRs(*in.AllowedCIDRs)
		errs = append(errs, cerrs...)
		c.AllowedCIDRs = cidrs
	}
	if in.ExpiresAt != nil {
		if *in.ExpiresAt == "" {
			c.ExpiresAt = time.Time{}
		} else if t, err := time.Parse(time.RFC3339, *in.ExpiresAt); err != nil {
			bad("expires_at", "must be an RFC 3339 time, or \"\" for never")
		} else if !t.After(s.opts.Now()) {
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
			c.Enable(s.opts.Now())
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

// maxJWKSURI bounds a jwks_uri.
const maxJWKSURI = 2048

// applyAuthMethod applies how the client authenticates: a secret, or
// private_key_jwt with exactly one of an inline public JWK Set (validated
// by assertion.ParseKeySet: public signature keys only, no symmetric or
// private members, bounded size and count) and an https jwks_uri (http and
// non-public hosts only where Options.JWKSAllowHTTP). A client moving
// between a secret and keys has its tokens revoked: the credential they
// were minted with is gone.
func (s *Service) applyAuthMethod(in ClientInput, c *storage.Client, creating bool) []FieldError {
	var errs []FieldError
	bad := func(field, detail string) { errs = append(errs, FieldError{Field: field, Detail: detail}) }
	before := c.UsesPrivateKeyJWT()
	if in.TokenEndpointAuthMethod != nil {
		switch m := *in.TokenEndpointAuthMethod; m {
		case storage.AuthSecretBasic, storage.AuthSecretPost, storage.AuthPrivateKeyJWT:
			c.TokenEndpointAuthMethod = m
		default:
			bad("token_endpoint_auth_method", "must be client_secret_basic, client_secret_post or private_key_jwt")
		}
	} else if creating {
		c.TokenEndpointAuthMethod = storage.AuthSecretBasic
	}
	if in.JWKS != nil && in.JWKSURI != nil && *in.JWKS != "" && *in.JWKSURI != "" {
		bad("jwks", "give jwks or jwks_uri, not both")
		return errs
	}
	if in.JWKS != nil {
		if *in.JWKS != "" {
			if _, err := assertion.ParseKeySet([]byte(*in.JWKS)); err != nil {
				bad("jwks", err.Error())
			}
			c.JWKSURI = ""
		}
		c.JWKS = *in.JWKS
	}
	if in.JWKSURI != nil {
		if u := *in.JWKSURI; u != "" {
			if len(u) > maxJWKSURI {
				bad("jwks_uri", fmt.Sprintf("must be at most %d characters", maxJWKSURI))
			} else if err := egress.CheckURL(u, s.opts.JWKSAllowHTTP); err != nil {
				bad("jwks_uri", "must be an https URL of a public host, without user info or fragment")
			}
			c.JWKS = ""
		}
		c.JWKSURI = *in.JWKSURI
	}
	if c.UsesPrivateKeyJWT() {
		if c.Kind == storage.KindKey {
			bad("token_endpoint_auth_method", "an API key always authenticates with its secret")
		}
		if c.JWKS == "" && c.JWKSURI == "" {
			bad("jwks", "private_key_jwt needs jwks or jwks_uri")
		}
	} else if in.JWKS == nil && in.JWKSURI == nil {
		// A client moving back to a secret drops its keys.
		c.JWKS, c.JWKSURI = "", ""
	} else if c.JWKS != "" || c.JWKSURI != "" {
		bad("jwks", "jwks and jwks_uri are for private_key_jwt clients only")
	}
	if !creating && before != c.UsesPrivateKeyJWT() {
		c.Revoke()
	}
	return errs
}

func (s *Service) bundleNames() []string {
	names := make([]string, 0, len(s.opts.AccessRights))
	for n := range s.opts.AccessRights {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// scopeAllowed reports whether p may put scope s on a credential: a scope of
// a bundle, or the management scope for admins.
func (s *Service) scopeAllowed(sc string, p *principal) bool {
	if !scope.Valid(sc) {
		return false
	}
	if sc == s.opts.ManagementScope {
		return p.admin
	}
	for _, b := range s.opts.AccessRights {
		if slices.Contains(b, sc) {
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
func (s *Service) newSecret(ctx context.Context) (string, string, error) {
	plain, err := secret.Generate()
	if err != nil {
		return "", "", err
	}
	h, err := s.opts.Hasher.Hash(ctx, []byte(plain))
	if err != nil {
		return "", "", err
	}
	return plain, string(h), nil
}

// CreateClient creates a credential of kind for act and answers it with its
// secret, the only time the secret is shown. By default it belongs to act's
// account and is owned by act; an admin may give in.OwnerID or in.AccountID
// of their subtree.
func (s *Service) CreateClient(ctx context.Context, act Actor, kind storage.Kind, in ClientInput) (storage.Client, string, error) {
	p := act.p
	c := storage.Client{Kind: kind, Status: storage.StatusActive, AccountID: p.accountID, OwnerID: p.userID(), CreatedBy: p.userID()}
	errs := s.apply(in, &c, p, true)
	// Whose is it? An admin may create credentials for a user or account of
	// the subtree; a member only for themselves.
	if in.OwnerID != nil && *in.OwnerID != c.OwnerID {
		owner, err := s.opts.Store.GetUser(ctx, *in.OwnerID)
		ok := err == nil && p.admin
		if ok {
			ok, err = s.inSubtree(ctx, p, owner.AccountID)
		}
		if err != nil && !isNotFound(err) {
			return storage.Client{}, "", unavailable(err)
		}
		if !ok {
			errs = append(errs, FieldError{Field: "owner_id", Detail: "no such user among those you manage"})
		}
		c.OwnerID, c.AccountID = owner.ID, owner.AccountID
		if ok && slices.Contains(c.Scopes, s.opts.ManagementScope) && owner.Role != storage.RoleAdmin {
			errs = append(errs, FieldError{Field: "owner_id", Detail: "a credential with the management scope needs an admin owner"})
		}
	}
	if in.AccountID != nil && *in.AccountID != c.AccountID {
		ok, err := s.inSubtree(ctx, p, *in.AccountID)
		if err != nil {
			return storage.Client{}, "", unavailable(err)
		}
		if !ok || !p.admin || in.OwnerID != nil {
			errs = append(errs, FieldError{Field: "account_id", Detail: "no such account among those you manage (or it contradicts owner_id)"})
		}
		c.AccountID = *in.AccountID
		if in.OwnerID == nil {
			c.OwnerID = 0
		}
	}
	if slices.Contains(c.Scopes, s.opts.ManagementScope) && c.OwnerID == 0 {
		errs = append(errs, FieldError{Field: "scopes", Detail: "the management scope needs an admin owner: an account credential cannot hold it"})
	}
	if errs != nil {
		return storage.Client{}, "", invalid(errs)
	}
	if err := s.checkCreatePolicies(ctx, p, c.AccountID, in.Password); err != nil {
		return storage.Client{}, "", err
	}
	plain, hash, err := s.newSecret(ctx)
	if err != nil {
		return storage.Client{}, "", internal(err)
	}
	c.SecretHash, c.SecretHint = hash, apikey.Hint(plain)
	err = s.opts.Store.InTx(ctx, func(tx storage.Store) error {
		var err error
		if c, err = tx.CreateClient(ctx, c); err != nil {
			return err
		}
		if c, err = setKeyHint(ctx, tx, c, plain); err != nil {
			return err
		}
		_, err = tx.AppendAudit(ctx, p.audit(string(kind)+".create", string(kind), c.ID, c.AccountID, createDetail(c)))
		return err
	})
	if err != nil {
		return storage.Client{}, "", storeError(err)
	}
	if c.UsesPrivateKeyJWT() {
		// Its secret is never a credential: it is not shown.
		return c, "", nil
	}
	return c, plain, nil
}

// createDetail says, for the audit trail, what a new credential is: its
// name, and the limits it was created with.
func createDetail(c storage.Client) string {
	d := "name " + strconv.Quote(c.Name)
	if c.Quota != nil {
		d += ", quota " + quotaText(c.Quota)
	}
	if len(c.AllowedCIDRs) > 0 {
		d += ", allowed_cidrs " + cidrsText(c.AllowedCIDRs)
	}
	if len(c.RateLimits) > 0 {
		d += ", rate_limits " + rateLimitsText(c.RateLimits)
	}
	return d
}

// checkCreatePolicies applies the policies of account accountID to p
// creating a credential there: with keys_managed_by admins only an admin
// may; with require_password_for_new_keys the creator confirms who they
// are with their own password, through the same brute-force protection
// and check as a client token's confirmation. A management client acting
// for its owner has no password to give and is refused: the policy exists
// so that a bearer credential alone (a stolen token) cannot mint long-lived
// ones.
func (s *Service) checkCreatePolicies(ctx context.Context, p *principal, accountID int64, password *string) error {
	pol, err := s.opts.Store.EffectivePolicies(ctx, accountID)
	if err != nil {
		return storeError(err)
	}
	if !p.admin && pol.KeysManagedBy == storage.KeysManagedByAdmins {
		return errAdminsManageKeys()
	}
	if !pol.RequirePasswordForNewKeys {
		return nil
	}
	if p.user == nil {
		return &Error{Code: Forbidden, Detail: "This account requires the creator's own password for a new credential, " +
			"and a client token has none: create it as a user (console, CLI or a user's token)."}
	}
	if password == nil || *password == "" {
		return invalid([]FieldError{{Field: "password", Detail: "is required: this account asks for your own password to create a credential"}})
	}
	err = s.confirmPassword(ctx, *p.user, *password, "The password is wrong: the credential was not created.")
	if e, ok := errors.AsType[*Error](err); ok && e.Code == Forbidden && e.Err == nil {
		e.Fields = []FieldError{{Field: "password", Detail: "is wrong"}}
		return e
	}
	return err
}

// errAdminsManageKeys refuses a member under keys_managed_by admins.
func errAdminsManageKeys() *Error {
	return &Error{Code: Forbidden, Detail: "This account's policy lets only admins create, change or delete credentials (keys_managed_by: admins)."}
}

// checkManagePolicy refuses p changing or deleting credential c when the
// policy of c's account lets only admins manage credentials, and records
// the refusal.
func (s *Service) checkManagePolicy(ctx context.Context, p *principal, c storage.Client, action string) error {
	if p.admin {
		return nil
	}
	pol, err := s.opts.Store.EffectivePolicies(ctx, c.AccountID)
	if err != nil {
		return storeError(err)
	}
	if pol.KeysManagedBy != storage.KeysManagedByAdmins {
		return nil
	}
	refusal := errAdminsManageKeys()
	s.auditRefusal(ctx, p, string(c.Kind)+"."+action, string(c.Kind), c.ID, refusal)
	return refusal
}

// whatever f asks; an admin any account of their subtree (another account
// is not found).
func (s *Service) ListClients(ctx context.Context, act Actor, kind storage.Kind, f storage.ClientFilter, pg storage.Page) ([]storage.Client, error) {
	p := act.p
	f.Kind = kind
	if !p.admin {
		f = storage.ClientFilter{AccountID: p.accountID, OwnerID: p.userID(), Status: f.Status, Kind: kind, Name: f.Name}
	} else if ok, err := s.inSubtree(ctx, p, f.AccountID); err != nil {
		return nil, unavailable(err)
	} else if !ok {
		return nil, errNotFound()
	}
	items, err := s.opts.Store.ListClients(ctx, f, pg)
	if err != nil {
		return nil, storeError(err)
	}
	return items, nil
}

// GetClient reads credential id of kind: not found when it does not exist,
// is of another kind, or is not act's to see.
func (s *Service) GetClient(ctx context.Context, act Actor, kind storage.Kind, id int64) (storage.Client, error) {
	return s.loadClient(ctx, act.p, id, kind)
}

// change loads credential id for p, checks the version it must have (want;
// 0: any) and applies fn in one transaction with its audit event.
func (s *Service) change(ctx context.Context, p *principal, kind storage.Kind, id, want int64, action string, fn func(tx storage.Store, c *storage.Client) (string, error)) (storage.Client, error) {
	cur, err := s.loadClient(ctx, p, id, kind)
	if err != nil {
		return storage.Client{}, err
	}
	if err := s.checkManagePolicy(ctx, p, cur, action); err != nil {
		return storage.Client{}, err
	}
	var out storage.Client
	err = s.opts.Store.InTx(ctx, func(tx storage.Store) error {
		var detail string
		c, err := tx.UpdateClient(ctx, id, func(c *storage.Client) error {
			if want != 0 && c.Version != want {
				return errPrecondition()
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
		refusal := storeError(err)
		s.auditRefusal(ctx, p, string(kind)+"."+action, string(kind), id, refusal)
		return storage.Client{}, refusal
	}
	return out, nil
}

// auditRefusal records a refused change of a record the caller can see
// (conflict, failed precondition, invalid fields), outside the transaction
// that was rolled back. Outages are not refusals and are not recorded.
func (s *Service) auditRefusal(ctx context.Context, p *principal, action, targetType string, targetID int64, refusal *Error) {
	switch refusal.Code {
	case Conflict, PreconditionFailed, Invalid, Forbidden:
	default:
		return
	}
	c, err := s.opts.Store.GetClient(ctx, targetID)
	if err != nil {
		return
	}
	e := p.audit(action, targetType, targetID, c.AccountID, fmt.Sprintf("refused: %d %s", refusal.Code.number(), refusal.Detail))
	e.Outcome = "failure"
	if _, err := s.opts.Store.AppendAudit(ctx, e); err != nil {
		s.opts.Logger.WarnContext(ctx, "audit a refused change", "err", err)
	}
}

// UpdateClient changes the fields in sets of credential id of kind, all or
// none, when its version is want (0: whatever it is). Disabling it, or
// narrowing its scopes, revokes its tokens.
func (s *Service) UpdateClient(ctx context.Context, act Actor, kind storage.Kind, id, want int64, in ClientInput) (storage.Client, error) {
	p := act.p
	return s.change(ctx, p, kind, id, want, "update", func(tx storage.Store, c *storage.Client) (string, error) {
		old := *c
		old.Scopes, old.GrantTypes = slices.Clone(c.Scopes), slices.Clone(c.GrantTypes)
		if errs := s.apply(in, c, p, false); errs != nil {
			return "", invalid(errs)
		}
		// The management scope goes only to a credential an active admin
		// answers for, as on create.
		if slices.Contains(c.Scopes, s.opts.ManagementScope) && !slices.Contains(old.Scopes, s.opts.ManagementScope) {
			owner, err := tx.GetUser(ctx, c.OwnerID)
			if err != nil && !isNotFound(err) {
				return "", unavailable(err)
			}
			if c.OwnerID == 0 || err != nil || owner.Role != storage.RoleAdmin || owner.Status != storage.StatusActive {
				return "", invalid([]FieldError{{Field: "scopes", Detail: "the management scope needs an owner who is an active admin"}})
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
	add("access_token_strategy", orNone(old.AccessTokenStrategy), orNone(cur.AccessTokenStrategy))
	add("token_endpoint_auth_method", orNone(old.TokenEndpointAuthMethod), orNone(cur.TokenEndpointAuthMethod))
	add("jwks", keysText(old.JWKS), keysText(cur.JWKS))
	add("jwks_uri", orNone(old.JWKSURI), orNone(cur.JWKSURI))
	add("dpop_bound_access_tokens", strconv.FormatBool(old.DPoPBoundAccessTokens), strconv.FormatBool(cur.DPoPBoundAccessTokens))
	add("rate_limits", rateLimitsText(old.RateLimits), rateLimitsText(cur.RateLimits))
	add("quota", quotaText(old.Quota), quotaText(cur.Quota))
	add("allowed_cidrs", cidrsText(old.AllowedCIDRs), cidrsText(cur.AllowedCIDRs))
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

func changedFields(in ClientInput) []string {
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
	add(in.AccessTokenStrategy != nil, "access_token_strategy")
	add(in.TokenEndpointAuthMethod != nil, "token_endpoint_auth_method")
	add(in.JWKS != nil, "jwks")
	add(in.JWKSURI != nil, "jwks_uri")
	add(in.DPoPBoundAccessTokens != nil, "dpop_bound_access_tokens")
	add(in.RateLimits != nil, "rate_limits")
	add(in.Quota.Set, "quota")
	add(in.AllowedCIDRs != nil, "allowed_cidrs")
	add(in.ExpiresAt != nil, "expires_at")
	add(in.Status != nil, "status")
	return out
}

// rotateInput chooses how long the old secret keeps working.

// RotateClient gives credential id of kind a new secret, answered once. The
// old one keeps working for overlapSeconds (nil: the configured default; 0
// retires it, and its tokens, at once).
func (s *Service) RotateClient(ctx context.Context, act Actor, kind storage.Kind, id, want int64, overlapSeconds *int64) (storage.Client, string, error) {
	overlap := s.opts.RotationOverlap
	if overlapSeconds != nil {
		max := int64(s.opts.MaxRotationOverlap / time.Second)
		if *overlapSeconds < 0 || *overlapSeconds > max {
			return storage.Client{}, "", invalid([]FieldError{{Field: "overlap_seconds", Detail: fmt.Sprintf("must be 0 to %d", max)}})
		}
		overlap = time.Duration(*overlapSeconds) * time.Second
	}
	plain, hash, err := s.newSecret(ctx)
	if err != nil {
		return storage.Client{}, "", internal(err)
	}
	now := s.opts.Now()
	c, err := s.change(ctx, act.p, kind, id, want, "rotate_secret", func(_ storage.Store, c *storage.Client) (string, error) {
		if c.Status != storage.StatusActive {
			return "", &Error{Code: Conflict, Detail: "Enable the credential before rotating its secret."}
		}
		if c.UsesPrivateKeyJWT() {
			return "", &Error{Code: Conflict, Detail: "A private_key_jwt client authenticates with its keys, not a secret: change its jwks or jwks_uri instead."}
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
	if err != nil {
		return storage.Client{}, "", err
	}
	return c, plain, nil
}

// DeleteClient deletes credential id of kind when its version is want (0:
// whatever it is). Deleting a user's default key issues a new default key
// in the same transaction, answered as replacement (zero otherwise).
func (s *Service) DeleteClient(ctx context.Context, act Actor, kind storage.Kind, id, want int64) (replacement storage.Client, err error) {
	p := act.p
	c, err := s.loadClient(ctx, p, id, kind)
	if err != nil {
		return storage.Client{}, err
	}
	if err := s.checkManagePolicy(ctx, p, c, "delete"); err != nil {
		return storage.Client{}, err
	}
	err = s.opts.Store.InTx(ctx, func(tx storage.Store) error {
		// Lock the row and check If-Match inside the transaction, so a change
		// committed since the read above is not deleted unseen.
		if _, err := tx.UpdateClient(ctx, c.ID, func(cur *storage.Client) error {
			if want != 0 && cur.Version != want {
				return errPrecondition()
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
		replacement, err = s.newDefaultKey(ctx, tx, c.OwnerID, c.AccountID)
		if err != nil {
			return err
		}
		_, err = tx.AppendAudit(ctx, p.audit("key.create_default", "key", replacement.ID, replacement.AccountID, "replaces deleted default key "+strconv.FormatInt(c.ID, 10)))
		return err
	})
	if err != nil {
		return storage.Client{}, storeError(err)
	}
	return replacement, nil
}

// newDefaultKey creates the system-generated default key of user ownerID.
// Its secret is shown to nobody: the owner rotates it to get a copy.
func (s *Service) newDefaultKey(ctx context.Context, tx storage.Store, ownerID, accountID int64) (storage.Client, error) {
	return createDefaultKey(ctx, tx, s.opts.Hasher, ownerID, accountID, s.opts.DefaultAccessRights, s.opts.AccessRights[s.opts.DefaultAccessRights])
}

// createDefaultKey creates the system-generated default API key of user
// ownerID with the access rights bundle rights (of scopes). Its secret is
// shown to nobody: the owner rotates the key to get a copy.
func createDefaultKey(ctx context.Context, tx storage.Clients, hasher Hasher, ownerID, accountID int64, rights string, scopes []string) (storage.Client, error) {
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

// ClientToken is a token generated for a client, shown once.
type ClientToken struct {
	AccessToken string
	Lifetime    time.Duration
	ExpiresAt   time.Time
	Scopes      []string
}

// clientToken serves POST /clients/{id}/tokens: a long-lived token for the

// GenerateClientToken mints a long-lived token for client id after act, a
// user, confirmed who they are with their own password (through the
// brute-force protection). lifetime is in seconds; nil means the
// configured client token lifetime, which is also the most it may be.
func (s *Service) GenerateClientToken(ctx context.Context, act Actor, id int64, password string, lifetime *int64) (ClientToken, error) {
	p := act.p
	if p.user == nil {
		return ClientToken{}, &Error{Code: Forbidden, Detail: "Only a user can confirm their identity with a password."}
	}
	life := s.opts.ClientTokenLifetime
	if lifetime != nil {
		max := int64(s.opts.ClientTokenLifetime / time.Second)
		if *lifetime <= 0 || *lifetime > max {
			return ClientToken{}, invalid([]FieldError{{Field: "lifetime", Detail: fmt.Sprintf("must be 1 to %d seconds", max)}})
		}
		life = time.Duration(*lifetime) * time.Second
	}
	c, err := s.loadClient(ctx, p, id, storage.KindClient)
	if err != nil {
		return ClientToken{}, err
	}
	if err := s.confirmPassword(ctx, *p.user, password, "The password is wrong: identity not confirmed."); err != nil {
		return ClientToken{}, err
	}
	if !c.Usable(s.opts.Now()) {
		return ClientToken{}, &Error{Code: Conflict, Detail: "The client is disabled or expired."}
	}
	if c.DPoPBoundAccessTokens {
		// A token made here would be a Bearer token: the client's tokens
		// must be bound to a key only the client holds.
		return ClientToken{}, &Error{Code: Conflict, Detail: "The client's tokens must be bound to a DPoP key: it gets them at the token endpoint with a DPoP proof."}
	}
	now := s.opts.Now().Truncate(time.Second)
	// The audit event comes first: no token without its record.
	if _, err := s.opts.Store.AppendAudit(ctx, p.audit("client.generate_token", "client", c.ID, c.AccountID,
		"token expires at "+now.Add(life).UTC().Format(time.RFC3339))); err != nil {
		return ClientToken{}, unavailable(err)
	}
	tok, rec, err := s.opts.Tokens.Issue(ctx, "", tokens.Claims{
		ClientID: c.ID, Generation: c.Generation, AccountID: c.AccountID,
		GrantType: "client_token", ExpiresAt: now.Add(life), Format: c.AccessTokenStrategy,
	}, c.Scopes, nil)
	if err != nil {
		return ClientToken{}, unavailable(err)
	}
	return ClientToken{AccessToken: tok, Lifetime: life, ExpiresAt: rec.ExpiresAt, Scopes: rec.Scopes}, nil
}

// clientVisible reports whether p may see (and manage) credential c: an admin
// of its account subtree, or its owner.
func (s *Service) clientVisible(ctx context.Context, p *principal, c storage.Client) (bool, error) {
	if !p.admin {
		if p.user == nil || c.OwnerID != p.user.ID {
			return false, nil
		}
		if !p.narrowed {
			return true, nil
		}
	}
	return s.inSubtree(ctx, p, c.AccountID)
}

// loadClient reads credential id of kind for p: not found when it does not
// exist, is of another kind, or is not p's to see.
func (s *Service) loadClient(ctx context.Context, p *principal, id int64, kind storage.Kind) (storage.Client, error) {
	c, err := s.opts.Store.GetClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return c, errNotFound()
	}
	if err != nil {
		return c, unavailable(err)
	}
	if c.Kind != kind {
		return c, errNotFound()
	}
	ok, err := s.clientVisible(ctx, p, c)
	if err != nil {
		return c, unavailable(err)
	}
	if !ok {
		return c, errNotFound()
	}
	return c, nil
}

// keysText describes a registered JWK Set for the audit log by its
// digest: public keys are no secret, but a whole set is too long a line.
func keysText(jwks string) string {
	if jwks == "" {
		return "none"
	}
	sum := sha256.Sum256([]byte(jwks))
	return "sha256:" + hex.EncodeToString(sum[:8])
}
