package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// accountView is an account as the API shows it.
type accountView struct {
	ID       int64  `json:"id"`
	ParentID int64  `json:"parent_id,omitempty"`
	Name     string `json:"name"`
	Status   string `json:"status"`
	// Policies are the account's own settings, null where it inherits;
	// EffectivePolicies are those in force, resolved up the tree.
	Policies          policiesView  `json:"policies"`
	EffectivePolicies effectiveView `json:"effective_policies"`
	CreatedAt         time.Time     `json:"created_at"`
	UpdatedAt         time.Time     `json:"updated_at"`
	Version           int64         `json:"version"`
}

// policiesView shows an account's own policy settings; null inherits.
type policiesView struct {
	RequirePasswordForNewKeys *bool   `json:"require_password_for_new_keys"`
	KeysManagedBy             *string `json:"keys_managed_by"`
}

// effectiveView shows the policies in force for an account.
type effectiveView struct {
	RequirePasswordForNewKeys bool   `json:"require_password_for_new_keys"`
	KeysManagedBy             string `json:"keys_managed_by"`
}

func viewAccount(acc storage.Account, eff storage.EffectivePolicies) accountView {
	v := accountView{
		ID: acc.ID, ParentID: acc.ParentID, Name: acc.Name, Status: string(acc.Status),
		Policies: policiesView{RequirePasswordForNewKeys: acc.Policies.RequirePasswordForNewKeys},
		EffectivePolicies: effectiveView{
			RequirePasswordForNewKeys: eff.RequirePasswordForNewKeys, KeysManagedBy: string(eff.KeysManagedBy),
		},
		CreatedAt: acc.CreatedAt, UpdatedAt: acc.UpdatedAt, Version: acc.Version,
	}
	if m := acc.Policies.KeysManagedBy; m != storage.KeysManagedByInherit {
		s := string(m)
		v.Policies.KeysManagedBy = &s
	}
	return v
}

// viewAccounts shows accs with the policies in force for each.
func (a *API) viewAccounts(ctx context.Context, accs ...storage.Account) ([]accountView, error) {
	out := make([]accountView, len(accs))
	for i, acc := range accs {
		eff, err := a.opts.Store.EffectivePolicies(ctx, acc.ID)
		if err != nil {
			return nil, storeProblem(err)
		}
		out[i] = viewAccount(acc, eff)
	}
	return out, nil
}

// writeAccount answers acc with status and its ETag.
func (a *API) writeAccount(w http.ResponseWriter, r *http.Request, status int, acc storage.Account) {
	views, err := a.viewAccounts(r.Context(), acc)
	if err != nil {
		writeProblem(w, r, storeProblem(err))
		return
	}
	w.Header().Set("ETag", etag(acc.Version))
	writeJSON(w, status, views[0])
}

// Optional is a field of a change that can be left out, set, or set to
// null: Set says whether it was given, Value is nil for null. For account
// policies null means "inherit from the parent".
type Optional[T any] struct {
	Set   bool
	Value *T
}

// UnmarshalJSON records that the field was given; encoding/json calls it
// for null too, which a pointer field could not tell from absence.
func (o *Optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		o.Value = nil
		return nil
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	o.Value = &v
	return nil
}

// MarshalJSON writes o as it was read: null or the value. A field not
// given is left out by its omitzero tag.
func (o Optional[T]) MarshalJSON() ([]byte, error) {
	if o.Value == nil {
		return []byte("null"), nil
	}
	return json.Marshal(*o.Value)
}

// PoliciesInput changes an account's policies: a field left out keeps its
// value, null makes it inherit from the parent.
type PoliciesInput struct {
	RequirePasswordForNewKeys Optional[bool]   `json:"require_password_for_new_keys,omitzero"`
	KeysManagedBy             Optional[string] `json:"keys_managed_by,omitzero"`
}

// AccountInput is what creating or changing an account sets; nil fields
// are left as they are.
type AccountInput = accountInput

// applyPolicies validates in and applies it to pol, returning the changes
// for the audit trail ("field old → new", "inherit" for unset).
func applyPolicies(in *PoliciesInput, pol *storage.AccountPolicies) ([]string, []fieldError) {
	if in == nil {
		return nil, nil
	}
	var changes []string
	var errs []fieldError
	if f := in.RequirePasswordForNewKeys; f.Set {
		old := pol.RequirePasswordForNewKeys
		if boolText(old) != boolText(f.Value) {
			changes = append(changes, "require_password_for_new_keys "+boolText(old)+" → "+boolText(f.Value))
		}
		pol.RequirePasswordForNewKeys = f.Value
	}
	if f := in.KeysManagedBy; f.Set {
		next := storage.KeysManagedByInherit
		if f.Value != nil {
			next = storage.KeysManagedBy(*f.Value)
		}
		if !next.Valid() || (f.Value != nil && next == storage.KeysManagedByInherit) {
			errs = append(errs, fieldError{Field: "policies.keys_managed_by", Detail: "must be anyone, admins, or null to inherit"})
		} else {
			if next != pol.KeysManagedBy {
				changes = append(changes, "keys_managed_by "+managedText(pol.KeysManagedBy)+" → "+managedText(next))
			}
			pol.KeysManagedBy = next
		}
	}
	return changes, errs
}

func boolText(b *bool) string {
	if b == nil {
		return "inherit"
	}
	return strconv.FormatBool(*b)
}

func managedText(m storage.KeysManagedBy) string {
	if m == storage.KeysManagedByInherit {
		return "inherit"
	}
	return string(m)
}

// InheritedPolicies returns the policies account id, which act may read,
// would have with no setting of its own: its parent's effective policies,
// or the defaults for a root. The parent may be out of act's reach; what
// it passes down is still the account's business.
func (a *API) InheritedPolicies(ctx context.Context, act Actor, id int64) (storage.EffectivePolicies, error) {
	acc, pr := a.loadAccount(ctx, act.p, id)
	if pr != nil {
		return storage.EffectivePolicies{}, *pr
	}
	if acc.ParentID == 0 {
		return storage.DefaultPolicies, nil
	}
	eff, err := a.opts.Store.EffectivePolicies(ctx, acc.ParentID)
	if err != nil {
		return eff, storeProblem(err)
	}
	return eff, nil
}

// EffectivePolicies returns the policies in force for account id, which
// act may read (their own account, or for an admin any of their subtree).
func (a *API) EffectivePolicies(ctx context.Context, act Actor, id int64) (storage.EffectivePolicies, error) {
	if _, pr := a.loadAccount(ctx, act.p, id); pr != nil {
		return storage.EffectivePolicies{}, *pr
	}
	eff, err := a.opts.Store.EffectivePolicies(ctx, id)
	if err != nil {
		return eff, storeProblem(err)
	}
	return eff, nil
}

func (a *API) accountRoutes() {
	a.handle(http.MethodPost, "/accounts", a.createAccount)
	a.handle(http.MethodGet, "/accounts/{id:[0-9]+}", a.getAccount)
	a.handle(http.MethodPatch, "/accounts/{id:[0-9]+}", a.updateAccount)
	a.handle(http.MethodGet, "/accounts/{id:[0-9]+}/children", a.listChildren)
}

// loadAccount reads account id for p: a member may read their own account,
// an admin every account of their subtree; anything else answers 404.
func (a *API) loadAccount(ctx context.Context, p *principal, id int64) (storage.Account, *problem) {
	if id != p.accountID {
		if pr := a.reach(ctx, p, id); pr != nil {
			return storage.Account{}, pr
		}
	}
	acc, err := a.opts.Store.GetAccount(ctx, id)
	if err != nil {
		pr := storeProblem(err)
		return acc, &pr
	}
	return acc, nil
}

// accountInput is the body of POST /accounts and PATCH /accounts/{id}.
type accountInput struct {
	ParentID *int64  `json:"parent_id"`
	Name     *string `json:"name"`
	Status   *string `json:"status"`
	// Policies changes the account's own policy settings.
	Policies *PoliciesInput `json:"policies"`
}

func (a *API) createAccount(w http.ResponseWriter, r *http.Request, p *principal) {
	var in accountInput
	if pr := decode(r, a.opts.MaxBodyBytes, &in); pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	if !p.admin {
		writeProblem(w, r, errForbidden)
		return
	}
	acc := storage.Account{ParentID: p.accountID, Status: storage.StatusActive}
	var errs []fieldError
	if in.ParentID != nil {
		ok, err := a.inSubtree(r.Context(), p, *in.ParentID)
		if err != nil {
			writeProblem(w, r, unavailable(err))
			return
		}
		if !ok {
			errs = append(errs, fieldError{Field: "parent_id", Detail: "no such account among those you manage"})
		}
		acc.ParentID = *in.ParentID
	}
	if in.Name == nil {
		errs = append(errs, fieldError{Field: "name", Detail: "is required"})
	} else if msg := text(*in.Name, 1, maxNameLength); msg != "" {
		errs = append(errs, fieldError{Field: "name", Detail: msg})
	} else {
		acc.Name = strings.TrimSpace(*in.Name)
	}
	if in.Status != nil {
		errs = append(errs, fieldError{Field: "status", Detail: "a new account is always active"})
	}
	policyChanges, policyErrs := applyPolicies(in.Policies, &acc.Policies)
	errs = append(errs, policyErrs...)
	if errs != nil {
		writeProblem(w, r, invalid(errs))
		return
	}
	ctx := r.Context()
	err := a.opts.Store.InTx(ctx, func(tx storage.Store) error {
		var err error
		if acc, err = tx.CreateAccount(ctx, acc); err != nil {
			return err
		}
		detail := fmt.Sprintf("name %q, parent %d", acc.Name, acc.ParentID)
		if len(policyChanges) > 0 {
			detail += ", " + strings.Join(policyChanges, ", ")
		}
		_, err = tx.AppendAudit(ctx, p.audit("account.create", "account", acc.ID, acc.ID, detail))
		return err
	})
	if err != nil {
		writeProblem(w, r, storeProblem(err))
		return
	}
	w.Header().Set("Location", Prefix+"/accounts/"+strconv.FormatInt(acc.ID, 10))
	a.writeAccount(w, r, http.StatusCreated, acc)
}

func (a *API) getAccount(w http.ResponseWriter, r *http.Request, p *principal) {
	acc, err := a.GetAccount(r.Context(), Actor{p}, pathID(r))
	if err != nil {
		writeProblem(w, r, storeProblem(err))
		return
	}
	a.writeAccount(w, r, http.StatusOK, acc)
}

// GetAccount reads account id: act's own, or for an admin any of their
// subtree.
func (a *API) GetAccount(ctx context.Context, act Actor, id int64) (storage.Account, error) {
	acc, pr := a.loadAccount(ctx, act.p, id)
	if pr != nil {
		return storage.Account{}, *pr
	}
	return acc, nil
}

func (a *API) listChildren(w http.ResponseWriter, r *http.Request, p *principal) {
	after, limit, pr := page(r)
	if pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	children, err := a.ListChildren(r.Context(), Actor{p}, pathID(r), storage.Page{After: after, Limit: limit})
	if err != nil {
		writeProblem(w, r, storeProblem(err))
		return
	}
	views, err := a.viewAccounts(r.Context(), children...)
	if err != nil {
		writeProblem(w, r, storeProblem(err))
		return
	}
	writeJSON(w, http.StatusOK, newList(views, limit, func(v accountView) int64 { return v.ID }))
}

// ListChildren lists one page of the direct children of account id, for an
// admin of its subtree.
func (a *API) ListChildren(ctx context.Context, act Actor, id int64, pg storage.Page) ([]storage.Account, error) {
	if pr := a.reach(ctx, act.p, id); pr != nil {
		return nil, *pr
	}
	children, err := a.opts.Store.ListChildren(ctx, id, pg)
	if err != nil {
		return nil, storeProblem(err)
	}
	return children, nil
}

func (a *API) updateAccount(w http.ResponseWriter, r *http.Request, p *principal) {
	var in accountInput
	if pr := decode(r, a.opts.MaxBodyBytes, &in); pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	want, pr := ifMatch(r)
	if pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	out, err := a.UpdateAccount(r.Context(), Actor{p}, pathID(r), want, in)
	if err != nil {
		writeProblem(w, r, storeProblem(err))
		return
	}
	a.writeAccount(w, r, http.StatusOK, out)
}

// UpdateAccount changes the fields in sets of account id, all or none, when
// its version is want (0: whatever it is). act must be an admin of a
// subtree holding the account. Each change, policies included, is recorded
// in the audit trail as old → new.
func (a *API) UpdateAccount(ctx context.Context, act Actor, id, want int64, in AccountInput) (storage.Account, error) {
	p := act.p
	if pr := a.reach(ctx, p, id); pr != nil {
		return storage.Account{}, *pr
	}
	var errs []fieldError
	if in.ParentID != nil {
		errs = append(errs, fieldError{Field: "parent_id", Detail: "an account cannot move"})
	}
	if in.Name != nil {
		if msg := text(*in.Name, 1, maxNameLength); msg != "" {
			errs = append(errs, fieldError{Field: "name", Detail: msg})
		}
	}
	if in.Status != nil {
		switch st := storage.Status(*in.Status); {
		case !st.Valid():
			errs = append(errs, fieldError{Field: "status", Detail: "must be active or disabled"})
		case st != storage.StatusActive && id == p.accountID:
			// Only strict descendants: nobody locks themself out.
			errs = append(errs, fieldError{Field: "status", Detail: "you may not disable your own account"})
		}
	}
	// Policies are validated once here; applied again to the locked row.
	probe := storage.AccountPolicies{}
	if _, perrs := applyPolicies(in.Policies, &probe); perrs != nil {
		errs = append(errs, perrs...)
	}
	if errs != nil {
		return storage.Account{}, invalid(errs)
	}
	var out storage.Account
	err := a.opts.Store.InTx(ctx, func(tx storage.Store) error {
		var changes []string
		acc, err := tx.UpdateAccount(ctx, id, func(acc *storage.Account) error {
			if want != 0 && acc.Version != want {
				return errPrecondion
			}
			changes = changes[:0]
			if in.Name != nil && strings.TrimSpace(*in.Name) != acc.Name {
				changes = append(changes, fmt.Sprintf("name %q → %q", acc.Name, strings.TrimSpace(*in.Name)))
				acc.Name = strings.TrimSpace(*in.Name)
			}
			// Credentials and tokens of the subtree are checked against
			// the account's standing at every use; the status change also
			// moves the subtree's token cut-off, so that enabling the
			// account again revives no token of before.
			if in.Status != nil && storage.Status(*in.Status) != acc.Status {
				changes = append(changes, fmt.Sprintf("status %s → %s", acc.Status, *in.Status))
				acc.SetStatus(storage.Status(*in.Status), a.opts.Now())
			}
			policyChanges, _ := applyPolicies(in.Policies, &acc.Policies)
			changes = append(changes, policyChanges...)
			return nil
		})
		if err != nil {
			return err
		}
		out = acc
		detail := "no change"
		if len(changes) > 0 {
			detail = strings.Join(changes, ", ")
		}
		_, err = tx.AppendAudit(ctx, p.audit("account.update", "account", acc.ID, acc.ID, detail))
		return err
	})
	if err != nil {
		return storage.Account{}, storeProblem(err)
	}
	return out, nil
}
