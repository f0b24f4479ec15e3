package client

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Status is a record's status: active or disabled (a credential past its
// expiry reads expired).
type Status string

// The statuses a change may set.
const (
	StatusActive   Status = "active"
	StatusDisabled Status = "disabled"
)

// Account is an account of the tenant tree.
type Account struct {
	ID int64 `json:"id"`
	// ParentID is 0 for a root account.
	ParentID int64  `json:"parent_id,omitempty"`
	Name     string `json:"name"`
	Status   Status `json:"status"`
	// Policies are the account's own settings; EffectivePolicies what
	// applies once inheritance is resolved.
	Policies          AccountPolicies   `json:"policies"`
	EffectivePolicies EffectivePolicies `json:"effective_policies"`
	// Budget bounds the whole subtree together; nil: none of its own.
	Budget *Budget `json:"budget"`
	// QuotaUsage is what is spent of the budget's quota this period.
	QuotaUsage *QuotaUsage `json:"quota_usage,omitempty"`
	CreatedAt  time.Time   `json:"created_at"`
	UpdatedAt  time.Time   `json:"updated_at"`
	// Version is the record's version, its ETag: give it as IfMatch to
	// refuse a change when the record changed since.
	Version int64 `json:"version"`
	// Raw is the record's JSON as the server sent it.
	Raw json.RawMessage `json:"-"`
}

// AccountPolicies are an account's own policy settings; nil means the
// setting is inherited.
type AccountPolicies struct {
	RequirePasswordForNewKeys *bool   `json:"require_password_for_new_keys"`
	KeysManagedBy             *string `json:"keys_managed_by"`
	// LeakedKeyAction is what happens to a credential reported leaked:
	// LeakedKeyDisable or LeakedKeyNotify.
	LeakedKeyAction *string `json:"leaked_key_action"`
}

// EffectivePolicies are the settings that apply to an account.
type EffectivePolicies struct {
	RequirePasswordForNewKeys bool   `json:"require_password_for_new_keys"`
	KeysManagedBy             string `json:"keys_managed_by"`
	LeakedKeyAction           string `json:"leaked_key_action"`
}

// Who manages clients and keys (AccountPolicies.KeysManagedBy).
const (
	KeysManagedByAnyone = "anyone"
	KeysManagedByAdmins = "admins"
)

// What happens to a credential a secret-scanning partner reports found in
// public (AccountPolicies.LeakedKeyAction).
const (
	LeakedKeyDisable = "disable"
	LeakedKeyNotify  = "notify"
)

// PolicyChange changes an account's policies: a setting left zero keeps its
// value, Set gives it one, Inherit makes it inherit again.
type PolicyChange struct {
	RequirePasswordForNewKeys Setting[bool]   `json:"require_password_for_new_keys,omitzero"`
	KeysManagedBy             Setting[string] `json:"keys_managed_by,omitzero"`
	LeakedKeyAction           Setting[string] `json:"leaked_key_action,omitzero"`
}

// Setting is one setting of a change: unchanged (the zero Setting), set to
// a value, or inherited (sent as null).
type Setting[T any] struct {
	changed, inherit bool
	value            T
}

// Set is a setting changed to v.
func Set[T any](v T) Setting[T] { return Setting[T]{changed: true, value: v} }

// Inherit is a setting the account inherits again.
func Inherit[T any]() Setting[T] { return Setting[T]{changed: true, inherit: true} }

// Remove is a setting removed (sent as null): a credential's quota, an
// account's budget.
func Remove[T any]() Setting[T] { return Setting[T]{changed: true, inherit: true} }

// Budget is what an account's whole subtree may use together: per-second
// limits per rate class and a quota. Only an admin of a parent account may
// set it.
type Budget struct {
	RateLimits map[string]RateLimit `json:"rate_limits,omitempty"`
	Quota      *Quota               `json:"quota,omitempty"`
}

// IsZero reports whether the setting is left unchanged.
func (s Setting[T]) IsZero() bool { return !s.changed }

// MarshalJSON encodes the value, or null to inherit.
func (s Setting[T]) MarshalJSON() ([]byte, error) {
	if s.inherit {
		return []byte("null"), nil
	}
	return json.Marshal(s.value)
}

// AccountCreate is a new sub-account.
type AccountCreate struct {
	// ParentID defaults to the caller's account.
	ParentID int64         `json:"parent_id,omitzero"`
	Name     string        `json:"name"`
	Policies *PolicyChange `json:"policies,omitempty"`
	// Budget bounds the new account's subtree.
	Budget *Budget `json:"budget,omitempty"`
}

// AccountUpdate changes the fields it sets.
type AccountUpdate struct {
	Name     *string       `json:"name,omitempty"`
	Status   Status        `json:"status,omitzero"`
	Policies *PolicyChange `json:"policies,omitempty"`
	// Budget replaces the account's budget (Set) or removes it (Remove);
	// only an admin of a parent account may.
	Budget Setting[Budget] `json:"budget,omitzero"`
	// IfMatch, when set, is the version (or ETag) the record must still
	// have.
	IfMatch string `json:"-"`
}

func accountRaw(a *Account) *json.RawMessage { return &a.Raw }

// CreateAccount creates a sub-account (admins only).
func (c *Client) CreateAccount(ctx context.Context, in AccountCreate) (*Account, error) {
	return record(ctx, c, call{method: http.MethodPost, path: "/accounts", body: in}, accountRaw)
}

// GetAccount reads an account.
func (c *Client) GetAccount(ctx context.Context, id int64) (*Account, error) {
	return record(ctx, c, call{method: http.MethodGet, path: idPath("/accounts", id)}, accountRaw)
}

// ListAccountChildren reads a page of an account's direct children.
func (c *Client) ListAccountChildren(ctx context.Context, id int64, p Page) (*List[Account], error) {
	return list[Account](ctx, c, idPath("/accounts", id, "children"), p.query())
}

// UpdateAccount renames an account, sets its status or its policies.
func (c *Client) UpdateAccount(ctx context.Context, id int64, in AccountUpdate) (*Account, error) {
	return record(ctx, c, call{method: http.MethodPatch, path: idPath("/accounts", id), body: in, ifMatch: in.IfMatch}, accountRaw)
}

// DisableAccount disables an account: its subtree's credentials and tokens
// stop working. ifMatch may be empty.
func (c *Client) DisableAccount(ctx context.Context, id int64, ifMatch string) (*Account, error) {
	return c.UpdateAccount(ctx, id, AccountUpdate{Status: StatusDisabled, IfMatch: ifMatch})
}

// EnableAccount enables an account. ifMatch may be empty.
func (c *Client) EnableAccount(ctx context.Context, id int64, ifMatch string) (*Account, error) {
	return c.UpdateAccount(ctx, id, AccountUpdate{Status: StatusActive, IfMatch: ifMatch})
}
