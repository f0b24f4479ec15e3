package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/tollgate/tollgate/pkg/manage"
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
	// Budget bounds the whole subtree together; null: none of its own.
	Budget     *budgetView     `json:"budget"`
	QuotaUsage *quotaUsageView `json:"quota_usage,omitempty"`
	CreatedAt  time.Time       `json:"created_at"`
	UpdatedAt  time.Time       `json:"updated_at"`
	Version    int64           `json:"version"`
}

// policiesView shows an account's own policy settings; null inherits.
type policiesView struct {
	RequirePasswordForNewKeys *bool   `json:"require_password_for_new_keys"`
	KeysManagedBy             *string `json:"keys_managed_by"`
	LeakedKeyAction           *string `json:"leaked_key_action"`
}

// effectiveView shows the policies in force for an account.
type effectiveView struct {
	RequirePasswordForNewKeys bool   `json:"require_password_for_new_keys"`
	KeysManagedBy             string `json:"keys_managed_by"`
	LeakedKeyAction           string `json:"leaked_key_action"`
}

func viewAccount(acc storage.Account, eff storage.EffectivePolicies) accountView {
	v := accountView{
		ID: acc.ID, ParentID: acc.ParentID, Name: acc.Name, Status: string(acc.Status),
		Policies: policiesView{RequirePasswordForNewKeys: acc.Policies.RequirePasswordForNewKeys},
		EffectivePolicies: effectiveView{
			RequirePasswordForNewKeys: eff.RequirePasswordForNewKeys, KeysManagedBy: string(eff.KeysManagedBy),
			LeakedKeyAction: string(eff.LeakedKeyAction),
		},
		CreatedAt: acc.CreatedAt, UpdatedAt: acc.UpdatedAt, Version: acc.Version,
		Budget: viewBudget(acc.Budget),
	}
	if m := acc.Policies.KeysManagedBy; m != storage.KeysManagedByInherit {
		s := string(m)
		v.Policies.KeysManagedBy = &s
	}
	if a := acc.Policies.LeakedKeyAction; a != storage.LeakedKeyInherit {
		s := string(a)
		v.Policies.LeakedKeyAction = &s
	}
	return v
}

// viewAccounts shows accs with the policies in force for each.
func (a *API) viewAccounts(ctx context.Context, accs ...storage.Account) ([]accountView, error) {
	effs, err := a.opts.Service.PoliciesOf(ctx, accs...)
	if err != nil {
		return nil, err
	}
	out := make([]accountView, len(accs))
	for i, acc := range accs {
		out[i] = viewAccount(acc, effs[i])
	}
	return out, nil
}

// writeAccount answers acc with status and its ETag.
func (a *API) writeAccount(w http.ResponseWriter, r *http.Request, status int, acc storage.Account) {
	views, err := a.viewAccounts(r.Context(), acc)
	if err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	v := views[0]
	u, err := a.opts.Service.AccountQuotaUsage(r.Context(), acc)
	if err != nil && status == http.StatusOK && r.Method == http.MethodGet {
		writeProblem(w, r, problemOf(err))
		return
	}
	// After a change, a failed read of the usage only leaves it out.
	v.QuotaUsage = viewQuotaUsage(u)
	w.Header().Set("ETag", etag(acc.Version))
	writeJSON(w, status, v)
}

// Optional is a member of a change that can be left out, set, or set to
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
	// As strict as the body around it: a misspelt member of a nested
	// object is an error, not ignored.
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
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

// policiesInput is the policies member of an account body: a field left
// out keeps its value, null makes it inherit from the parent.
type policiesInput struct {
	RequirePasswordForNewKeys Optional[bool]   `json:"require_password_for_new_keys,omitzero"`
	KeysManagedBy             Optional[string] `json:"keys_managed_by,omitzero"`
	LeakedKeyAction           Optional[string] `json:"leaked_key_action,omitzero"`
}

func (a *API) accountRoutes() {
	a.handle(http.MethodPost, "/accounts", a.createAccount)
	a.handle(http.MethodGet, "/accounts/{id:[0-9]+}", a.getAccount)
	a.handle(http.MethodPatch, "/accounts/{id:[0-9]+}", a.updateAccount)
	a.handle(http.MethodGet, "/accounts/{id:[0-9]+}/children", a.listChildren)
}

// accountInput is the body of POST /accounts and PATCH /accounts/{id}.
type accountInput struct {
	ParentID *int64  `json:"parent_id"`
	Name     *string `json:"name"`
	Status   *string `json:"status"`
	// Policies changes the account's own policy settings.
	Policies *policiesInput `json:"policies"`
	// Budget replaces the account's budget; null removes it.
	Budget Optional[budgetInput] `json:"budget,omitzero"`
}

// domain returns in as the service takes it.
func (in accountInput) domain() manage.AccountInput {
	out := manage.AccountInput{ParentID: in.ParentID, Name: in.Name, Status: (*storage.Status)(in.Status), Budget: budgetDomain(in.Budget)}
	if in.Policies != nil {
		out.Policies = &manage.PoliciesInput{
			RequirePasswordForNewKeys: manage.Optional[bool](in.Policies.RequirePasswordForNewKeys),
			KeysManagedBy: manage.Optional[storage.KeysManagedBy]{
				Set: in.Policies.KeysManagedBy.Set, Value: (*storage.KeysManagedBy)(in.Policies.KeysManagedBy.Value),
			},
			LeakedKeyAction: manage.Optional[storage.LeakedKeyAction]{
				Set: in.Policies.LeakedKeyAction.Set, Value: (*storage.LeakedKeyAction)(in.Policies.LeakedKeyAction.Value),
			},
		}
	}
	return out
}

func (a *API) createAccount(w http.ResponseWriter, r *http.Request, act manage.Actor) {
	var in accountInput
	if pr := decode(r, a.opts.MaxBodyBytes, &in); pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	acc, err := a.opts.Service.CreateAccount(r.Context(), act, in.domain())
	if err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	w.Header().Set("Location", Prefix+"/accounts/"+strconv.FormatInt(acc.ID, 10))
	a.writeAccount(w, r, http.StatusCreated, acc)
}

func (a *API) getAccount(w http.ResponseWriter, r *http.Request, act manage.Actor) {
	acc, err := a.opts.Service.GetAccount(r.Context(), act, pathID(r))
	if err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	a.writeAccount(w, r, http.StatusOK, acc)
}

func (a *API) listChildren(w http.ResponseWriter, r *http.Request, act manage.Actor) {
	after, limit, pr := page(r)
	if pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	children, err := a.opts.Service.ListChildren(r.Context(), act, pathID(r), storage.Page{After: after, Limit: limit})
	if err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	views, err := a.viewAccounts(r.Context(), children...)
	if err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	writeJSON(w, http.StatusOK, newList(views, limit, func(v accountView) int64 { return v.ID }))
}

func (a *API) updateAccount(w http.ResponseWriter, r *http.Request, act manage.Actor) {
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
	out, err := a.opts.Service.UpdateAccount(r.Context(), act, pathID(r), want, in.domain())
	if err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	a.writeAccount(w, r, http.StatusOK, out)
}
