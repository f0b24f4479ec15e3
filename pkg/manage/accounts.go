package manage

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/tollgate/tollgate/storage"
)

// Optional is a field of a change that can be left out, set, or set to
// null: Set says whether it was given, Value is nil for null. For account
// policies null means "inherit from the parent".
type Optional[T any] struct {
	Set   bool
	Value *T
}

// PoliciesInput changes an account's policies: a field left out keeps its
// value, null makes it inherit from the parent.
type PoliciesInput struct {
	RequirePasswordForNewKeys Optional[bool]
	KeysManagedBy             Optional[storage.KeysManagedBy]
	LeakedKeyAction           Optional[storage.LeakedKeyAction]
}

// AccountInput is what creating or changing an account sets; nil fields are
// left as they are.
type AccountInput struct {
	ParentID *int64
	Name     *string
	Status   *storage.Status
	// Policies changes the account's own policy settings.
	Policies *PoliciesInput
	// Budget replaces the account's budget; set to nil removes it. Only an
	// admin of a strict ancestor may set it: an account's own admins
	// cannot raise what their subtree may use.
	Budget Optional[BudgetInput]
}

// applyBudget validates in and returns the budget it sets (nil: none).
func (s *Service) applyBudget(in Optional[BudgetInput]) (*storage.Budget, []FieldError) {
	if in.Value == nil {
		return nil, nil
	}
	var errs []FieldError
	b := storage.Budget{}
	limits, lerrs := s.checkRateLimits("budget.rate_limits", in.Value.RateLimits)
	errs = append(errs, lerrs...)
	b.RateLimits = limits
	if in.Value.Quota != nil {
		q, qerrs := checkQuota("budget.quota", *in.Value.Quota)
		errs = append(errs, qerrs...)
		b.Quota = q
	}
	if errs != nil {
		return nil, errs
	}
	if b.Empty() {
		return nil, nil
	}
	return &b, nil
}

// applyPolicies validates in and applies it to pol, returning the changes
// for the audit trail ("field old → new", "inherit" for unset).
func applyPolicies(in *PoliciesInput, pol *storage.AccountPolicies) ([]string, []FieldError) {
	if in == nil {
		return nil, nil
	}
	var changes []string
	var errs []FieldError
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
			next = *f.Value
		}
		if !next.Valid() || (f.Value != nil && next == storage.KeysManagedByInherit) {
			errs = append(errs, FieldError{Field: "policies.keys_managed_by", Detail: "must be anyone, admins, or null to inherit"})
		} else {
			if next != pol.KeysManagedBy {
				changes = append(changes, "keys_managed_by "+managedText(pol.KeysManagedBy)+" → "+managedText(next))
			}
			pol.KeysManagedBy = next
		}
	}
	if f := in.LeakedKeyAction; f.Set {
		next := storage.LeakedKeyInherit
		if f.Value != nil {
			next = *f.Value
		}
		if !next.Valid() || (f.Value != nil && next == storage.LeakedKeyInherit) {
			errs = append(errs, FieldError{Field: "policies.leaked_key_action", Detail: "must be disable, notify, or null to inherit"})
		} else {
			if next != pol.LeakedKeyAction {
				changes = append(changes, "leaked_key_action "+leakedText(pol.LeakedKeyAction)+" → "+leakedText(next))
			}
			pol.LeakedKeyAction = next
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

func leakedText(a storage.LeakedKeyAction) string {
	if a == storage.LeakedKeyInherit {
		return "inherit"
	}
	return string(a)
}

// loadAccount reads account id for p: a member may read their own account,
// an admin every account of their subtree; anything else is not found.
func (s *Service) loadAccount(ctx context.Context, p *principal, id int64) (storage.Account, error) {
	if id != p.accountID {
		if err := s.reach(ctx, p, id); err != nil {
			return storage.Account{}, err
		}
	}
	acc, err := s.opts.Store.GetAccount(ctx, id)
	if err != nil {
		return acc, storeError(err)
	}
	return acc, nil
}

// InheritedPolicies returns the policies account id, which act may read,
// would have with no setting of its own: its parent's effective policies,
// or the defaults for a root. The parent may be out of act's reach; what
// it passes down is still the account's business.
func (s *Service) InheritedPolicies(ctx context.Context, act Actor, id int64) (storage.EffectivePolicies, error) {
	acc, err := s.loadAccount(ctx, act.p, id)
	if err != nil {
		return storage.EffectivePolicies{}, err
	}
	if acc.ParentID == 0 {
		return storage.DefaultPolicies, nil
	}
	eff, err := s.opts.Store.EffectivePolicies(ctx, acc.ParentID)
	if err != nil {
		return eff, storeError(err)
	}
	return eff, nil
}

// EffectivePolicies returns the policies in force for account id, which
// act may read (their own account, or for an admin any of their subtree).
func (s *Service) EffectivePolicies(ctx context.Context, act Actor, id int64) (storage.EffectivePolicies, error) {
	if _, err := s.loadAccount(ctx, act.p, id); err != nil {
		return storage.EffectivePolicies{}, err
	}
	eff, err := s.opts.Store.EffectivePolicies(ctx, id)
	if err != nil {
		return eff, storeError(err)
	}
	return eff, nil
}

// PoliciesOf returns the policies in force for each of accs, which the
// caller has read through the service, in their order.
func (s *Service) PoliciesOf(ctx context.Context, accs ...storage.Account) ([]storage.EffectivePolicies, error) {
	out := make([]storage.EffectivePolicies, len(accs))
	for i, acc := range accs {
		eff, err := s.opts.Store.EffectivePolicies(ctx, acc.ID)
		if err != nil {
			return nil, storeError(err)
		}
		out[i] = eff
	}
	return out, nil
}

// CreateAccount creates a sub-account of act's account or, with
// in.ParentID, of another account of act's subtree. Only admins may; a new
// account is always active.
func (s *Service) CreateAccount(ctx context.Context, act Actor, in AccountInput) (storage.Account, error) {
	p := act.p
	if !p.admin {
		return storage.Account{}, errForbidden()
	}
	acc := storage.Account{ParentID: p.accountID, Status: storage.StatusActive}
	var errs []FieldError
	if in.ParentID != nil {
		ok, err := s.inSubtree(ctx, p, *in.ParentID)
		if err != nil {
			return storage.Account{}, unavailable(err)
		}
		if !ok {
			errs = append(errs, FieldError{Field: "parent_id", Detail: "no such account among those you manage"})
		}
		acc.ParentID = *in.ParentID
	}
	if in.Name == nil {
		errs = append(errs, FieldError{Field: "name", Detail: "is required"})
	} else if msg := text(*in.Name, 1, maxNameLength); msg != "" {
		errs = append(errs, FieldError{Field: "name", Detail: msg})
	} else {
		acc.Name = strings.TrimSpace(*in.Name)
	}
	if in.Status != nil {
		errs = append(errs, FieldError{Field: "status", Detail: "a new account is always active"})
	}
	policyChanges, policyErrs := applyPolicies(in.Policies, &acc.Policies)
	errs = append(errs, policyErrs...)
	// The creator is an admin of the new account's parent: a strict
	// ancestor, who may give it a budget.
	budget, budgetErrs := s.applyBudget(in.Budget)
	errs = append(errs, budgetErrs...)
	acc.Budget = budget
	if budget != nil {
		policyChanges = append(policyChanges, "budget "+budgetText(budget))
	}
	if errs != nil {
		return storage.Account{}, invalid(errs)
	}
	err := s.opts.Store.InTx(ctx, func(tx storage.Store) error {
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
		return storage.Account{}, storeError(err)
	}
	return acc, nil
}

// GetAccount reads account id: act's own, or for an admin any of their
// subtree.
func (s *Service) GetAccount(ctx context.Context, act Actor, id int64) (storage.Account, error) {
	return s.loadAccount(ctx, act.p, id)
}

// ListChildren lists one page of the direct children of account id, for an
// admin of its subtree.
func (s *Service) ListChildren(ctx context.Context, act Actor, id int64, pg storage.Page) ([]storage.Account, error) {
	if err := s.reach(ctx, act.p, id); err != nil {
		return nil, err
	}
	children, err := s.opts.Store.ListChildren(ctx, id, pg)
	if err != nil {
		return nil, storeError(err)
	}
	return children, nil
}

// UpdateAccount changes the fields in sets of account id, all or none, when
// its version is want (0: whatever it is). act must be an admin of a
// subtree holding the account. Each change, policies included, is recorded
// in the audit trail as old → new.
func (s *Service) UpdateAccount(ctx context.Context, act Actor, id, want int64, in AccountInput) (storage.Account, error) {
	p := act.p
	if err := s.reach(ctx, p, id); err != nil {
		return storage.Account{}, err
	}
	var errs []FieldError
	if in.ParentID != nil {
		errs = append(errs, FieldError{Field: "parent_id", Detail: "an account cannot move"})
	}
	if in.Name != nil {
		if msg := text(*in.Name, 1, maxNameLength); msg != "" {
			errs = append(errs, FieldError{Field: "name", Detail: msg})
		}
	}
	if in.Status != nil {
		switch st := *in.Status; {
		case !st.Valid():
			errs = append(errs, FieldError{Field: "status", Detail: "must be active or disabled"})
		case st != storage.StatusActive && id == p.accountID:
			// Only strict descendants: nobody locks themself out.
			errs = append(errs, FieldError{Field: "status", Detail: "you may not disable your own account"})
		}
	}
	// Policies are validated once here; applied again to the locked row.
	probe := storage.AccountPolicies{}
	if _, perrs := applyPolicies(in.Policies, &probe); perrs != nil {
		errs = append(errs, perrs...)
	}
	budget, budgetErrs := s.applyBudget(in.Budget)
	errs = append(errs, budgetErrs...)
	if in.Budget.Set && id == p.accountID {
		// A budget bounds what the subtree may use together; those it
		// bounds do not set it. An admin sets budgets of the accounts
		// below their own, never their own account's.
		errs = append(errs, FieldError{Field: "budget", Detail: "only an admin of a parent account may change an account's budget"})
	}
	if errs != nil {
		return storage.Account{}, invalid(errs)
	}
	var out storage.Account
	err := s.opts.Store.InTx(ctx, func(tx storage.Store) error {
		var changes []string
		acc, err := tx.UpdateAccount(ctx, id, func(acc *storage.Account) error {
			if want != 0 && acc.Version != want {
				return errPrecondition()
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
			if in.Status != nil && *in.Status != acc.Status {
				changes = append(changes, fmt.Sprintf("status %s → %s", acc.Status, *in.Status))
				acc.SetStatus(*in.Status, s.opts.Now())
			}
			policyChanges, _ := applyPolicies(in.Policies, &acc.Policies)
			changes = append(changes, policyChanges...)
			if in.Budget.Set && budgetText(acc.Budget) != budgetText(budget) {
				changes = append(changes, "budget "+budgetText(acc.Budget)+" → "+budgetText(budget))
			}
			if in.Budget.Set {
				acc.Budget = budget
			}
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
		return storage.Account{}, storeError(err)
	}
	return out, nil
}
