package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// Role is a user's role.
type Role string

// The roles.
const (
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
)

// User is a user of an account.
type User struct {
	ID        int64     `json:"id"`
	AccountID int64     `json:"account_id"`
	Username  string    `json:"username"`
	Role      Role      `json:"role"`
	Status    Status    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Version is the record's version, its ETag.
	Version int64 `json:"version"`
	// Raw is the record's JSON as the server sent it.
	Raw json.RawMessage `json:"-"`
}

// UserCreate is a new user. Creating a user also creates the user's
// default API key.
type UserCreate struct {
	// AccountID defaults to the caller's account.
	AccountID int64  `json:"account_id,omitzero"`
	Username  string `json:"username"`
	Password  string `json:"password"`
	// Role defaults to member.
	Role Role `json:"role,omitzero"`
}

// UserUpdate changes the fields it sets.
type UserUpdate struct {
	Role   Role   `json:"role,omitzero"`
	Status Status `json:"status,omitzero"`
	// IfMatch, when set, is the version (or ETag) the record must still
	// have.
	IfMatch string `json:"-"`
}

// UserFilter selects users. Without AccountID: the caller's account and
// its whole subtree.
type UserFilter struct {
	AccountID int64
	// Subtree, with AccountID, includes the account's descendants.
	Subtree bool
	// Name keeps users whose username contains it, ignoring case.
	Name string
	Page
}

func (f UserFilter) query() url.Values {
	q := f.Page.query()
	setInt(q, "account_id", f.AccountID)
	if f.Subtree {
		q.Set("subtree", "true")
	}
	if f.Name != "" {
		q.Set("name", f.Name)
	}
	return q
}

// PasswordChange sets a user's password: an admin resets another user's
// with Password alone; users change their own with OldPassword too.
type PasswordChange struct {
	OldPassword string `json:"old_password,omitzero"`
	Password    string `json:"password"`
}

func userRaw(u *User) *json.RawMessage { return &u.Raw }

// CreateUser creates a user (admins only).
func (c *Client) CreateUser(ctx context.Context, in UserCreate) (*User, error) {
	return record(ctx, c, call{method: http.MethodPost, path: "/users", body: in}, userRaw)
}

// GetUser reads a user.
func (c *Client) GetUser(ctx context.Context, id int64) (*User, error) {
	return record(ctx, c, call{method: http.MethodGet, path: idPath("/users", id)}, userRaw)
}

// ListUsers reads a page of users (admins only).
func (c *Client) ListUsers(ctx context.Context, f UserFilter) (*List[User], error) {
	return list[User](ctx, c, "/users", f.query())
}

// UpdateUser changes a user's role or status.
func (c *Client) UpdateUser(ctx context.Context, id int64, in UserUpdate) (*User, error) {
	return record(ctx, c, call{method: http.MethodPatch, path: idPath("/users", id), body: in, ifMatch: in.IfMatch}, userRaw)
}

// DisableUser disables a user: the user's tokens stop working. ifMatch may
// be empty.
func (c *Client) DisableUser(ctx context.Context, id int64, ifMatch string) (*User, error) {
	return c.UpdateUser(ctx, id, UserUpdate{Status: StatusDisabled, IfMatch: ifMatch})
}

// EnableUser enables a user. ifMatch may be empty.
func (c *Client) EnableUser(ctx context.Context, id int64, ifMatch string) (*User, error) {
	return c.UpdateUser(ctx, id, UserUpdate{Status: StatusActive, IfMatch: ifMatch})
}

// DeleteUser deletes a user (not the caller). ifMatch may be empty.
func (c *Client) DeleteUser(ctx context.Context, id int64, ifMatch string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: idPath("/users", id), ifMatch: ifMatch})
	return err
}

// SetPassword resets or changes a user's password. Every token the user
// held until then stops working, the caller's own included.
func (c *Client) SetPassword(ctx context.Context, id int64, in PasswordChange) error {
	_, err := c.do(ctx, call{method: http.MethodPost, path: idPath("/users", id, "password"), body: in})
	return err
}
