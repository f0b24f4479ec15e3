package e2e

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/pkg/client"
)

// sdk returns a Go SDK client of the fixture's server holding token.
func (f *fixture) sdk(t *testing.T, token admCaller) *client.Client {
	t.Helper()
	c, err := client.New(f.srv.URL, client.WithToken(string(token)), client.WithHTTPClient(f.srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wantAPIError fails t unless err is a *client.Error of status naming
// fields, and is told apart by is.
func wantAPIError(t *testing.T, what string, err error, is func(error) bool, status int, fields ...string) {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) {
		t.Errorf("%s: err = %v, want a *client.Error of status %d", what, err, status)
		return
	}
	if e.StatusCode != status || !is(err) {
		t.Errorf("%s: status %d (%v), want %d", what, e.StatusCode, err, status)
	}
	if e.Title == "" || e.Type == "" {
		t.Errorf("%s: problem without type or title: %+v", what, e)
	}
	for _, want := range fields {
		if !slices.ContainsFunc(e.Fields, func(fe client.FieldError) bool { return fe.Field == want && fe.Detail != "" }) {
			t.Errorf("%s: fields %+v do not name %q", what, e.Fields, want)
		}
	}
}

func TestSDKAccounts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		alice := f.sdk(t, f.admUser("alice"))

		acc, err := alice.CreateAccount(ctx, client.AccountCreate{ParentID: f.child.ID, Name: "sdk-team"})
		if err != nil {
			t.Fatalf("create account: %v", err)
		}
		if acc.ID == 0 || acc.ParentID != f.child.ID || acc.Name != "sdk-team" || acc.Status != client.StatusActive || acc.Version == 0 || acc.CreatedAt.IsZero() {
			t.Errorf("created account = %+v", acc)
		}
		if !strings.Contains(string(acc.Raw), `"name":"sdk-team"`) {
			t.Errorf("Raw = %s, want the answer's JSON", acc.Raw)
		}
		got, err := alice.GetAccount(ctx, acc.ID)
		if err != nil || got.ID != acc.ID || got.Version != acc.Version {
			t.Fatalf("get account = %+v, %v; want %d version %d", got, err, acc.ID, acc.Version)
		}

		// Rename with the version read; the old version is then stale.
		renamed, err := alice.UpdateAccount(ctx, acc.ID, client.AccountUpdate{Name: new("sdk-team-2"), IfMatch: "1"})
		if err != nil || renamed.Name != "sdk-team-2" || renamed.Version <= acc.Version {
			t.Fatalf("rename = %+v, %v", renamed, err)
		}
		_, err = alice.UpdateAccount(ctx, acc.ID, client.AccountUpdate{Name: new("late"), IfMatch: "1"})
		wantAPIError(t, "rename with a stale If-Match", err, client.IsPreconditionFailed, http.StatusPreconditionFailed)
		_, err = alice.CreateAccount(ctx, client.AccountCreate{ParentID: f.child.ID, Name: ""})
		wantAPIError(t, "account without a name", err, client.IsInvalid, http.StatusUnprocessableEntity, "name")

		// Policies: set, then inherit again.
		set, err := alice.UpdateAccount(ctx, acc.ID, client.AccountUpdate{Policies: &client.PolicyChange{
			RequirePasswordForNewKeys: client.Set(true), KeysManagedBy: client.Set(client.KeysManagedByAdmins)}})
		if err != nil {
			t.Fatalf("set policies: %v", err)
		}
		if p := set.Policies; p.RequirePasswordForNewKeys == nil || !*p.RequirePasswordForNewKeys || p.KeysManagedBy == nil || *p.KeysManagedBy != "admins" {
			t.Errorf("policies = %+v, want true and admins", p)
		}
		if e := set.EffectivePolicies; !e.RequirePasswordForNewKeys || e.KeysManagedBy != "admins" {
			t.Errorf("effective policies = %+v", e)
		}
		back, err := alice.UpdateAccount(ctx, acc.ID, client.AccountUpdate{Policies: &client.PolicyChange{RequirePasswordForNewKeys: client.Inherit[bool]()}})
		if err != nil {
			t.Fatalf("inherit: %v", err)
		}
		if back.Policies.RequirePasswordForNewKeys != nil || back.Policies.KeysManagedBy == nil {
			t.Errorf("after inherit: policies = %+v, want the password setting inherited and keys_managed_by kept", back.Policies)
		}

		// Disable and enable.
		if d, err := alice.DisableAccount(ctx, acc.ID, ""); err != nil || d.Status != client.StatusDisabled {
			t.Errorf("disable = %+v, %v", d, err)
		}
		if e, err := alice.EnableAccount(ctx, acc.ID, ""); err != nil || e.Status != client.StatusActive {
			t.Errorf("enable = %+v, %v", e, err)
		}

		// Children, a page at a time.
		var want []int64
		for _, name := range []string{"c1", "c2", "c3"} {
			a, err := alice.CreateAccount(ctx, client.AccountCreate{ParentID: acc.ID, Name: name})
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, a.ID)
		}
		var seen []int64
		page := client.Page{Limit: 2}
		for range 5 {
			l, err := alice.ListAccountChildren(ctx, acc.ID, page)
			if err != nil {
				t.Fatalf("children: %v", err)
			}
			if len(l.Items) > 2 {
				t.Errorf("page of %d, want at most 2", len(l.Items))
			}
			for _, a := range l.Items {
				seen = append(seen, a.ID)
			}
			if l.Next == 0 {
				break
			}
			page.After = l.Next
		}
		if !slices.Equal(seen, want) {
			t.Errorf("children over pages = %v, want %v", seen, want)
		}

		// Another tree's account does not exist for carol; a member may not
		// create accounts.
		_, err = f.sdk(t, f.admCarol()).GetAccount(ctx, acc.ID)
		wantAPIError(t, "another tree's account", err, client.IsNotFound, http.StatusNotFound)
		f.admCreateUser(t, admCaller(f.admUser("alice")), f.root, "sdk.member", "member")
		_, err = f.sdk(t, f.admUser("sdk.member")).CreateAccount(ctx, client.AccountCreate{Name: "nope"})
		wantAPIError(t, "a member creating an account", err, client.IsForbidden, http.StatusForbidden)
	})
}

func TestSDKUsers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		alice := f.sdk(t, f.admUser("alice"))

		u, err := alice.CreateUser(ctx, client.UserCreate{AccountID: f.child.ID, Username: "sdk.user", Password: testPassword})
		if err != nil {
			t.Fatalf("create user: %v", err)
		}
		if u.AccountID != f.child.ID || u.Username != "sdk.user" || u.Role != client.RoleMember || u.Status != client.StatusActive {
			t.Errorf("created user = %+v", u)
		}
		if strings.Contains(string(u.Raw), "password") {
			t.Errorf("user answer holds a password member: %s", u.Raw)
		}
		_, err = alice.CreateUser(ctx, client.UserCreate{AccountID: f.child.ID, Username: "sdk.user", Password: testPassword})
		wantAPIError(t, "a taken username", err, client.IsConflict, http.StatusConflict)
		_, err = alice.CreateUser(ctx, client.UserCreate{Username: "sdk.short", Password: "short"})
		wantAPIError(t, "a short password", err, client.IsInvalid, http.StatusUnprocessableEntity, "password")

		if got, err := alice.GetUser(ctx, u.ID); err != nil || got.Username != "sdk.user" {
			t.Errorf("get user = %+v, %v", got, err)
		}
		l, err := alice.ListUsers(ctx, client.UserFilter{Name: "SDK.U"})
		if err != nil || len(l.Items) != 1 || l.Items[0].ID != u.ID {
			t.Errorf("list ?name=SDK.U = %+v, %v; want only user %d", l, err, u.ID)
		}
		l, err = alice.ListUsers(ctx, client.UserFilter{AccountID: f.child.ID})
		if err != nil || !slices.ContainsFunc(l.Items, func(x client.User) bool { return x.ID == u.ID }) {
			t.Errorf("list of the child account = %+v, %v; want user %d", l, err, u.ID)
		}

		admin, err := alice.UpdateUser(ctx, u.ID, client.UserUpdate{Role: client.RoleAdmin, IfMatch: "1"})
		if err != nil || admin.Role != client.RoleAdmin {
			t.Fatalf("set role = %+v, %v", admin, err)
		}
		_, err = alice.UpdateUser(ctx, u.ID, client.UserUpdate{Role: client.RoleMember, IfMatch: `"1"`})
		wantAPIError(t, "set role with a stale ETag", err, client.IsPreconditionFailed, http.StatusPreconditionFailed)
		_, err = alice.UpdateUser(ctx, u.ID, client.UserUpdate{Role: "owner"})
		wantAPIError(t, "an unknown role", err, client.IsInvalid, http.StatusUnprocessableEntity, "role")

		// The user's token dies with a new password and with disabling.
		tok := f.tokenDSP(f.dsp, "sdk.user")
		if err := alice.SetPassword(ctx, u.ID, client.PasswordChange{Password: testPassword + "!"}); err != nil {
			t.Fatalf("set password: %v", err)
		}
		if f.active(tok) {
			t.Error("the user's token is active after a password reset")
		}
		if d, err := alice.DisableUser(ctx, u.ID, ""); err != nil || d.Status != client.StatusDisabled {
			t.Errorf("disable = %+v, %v", d, err)
		}
		if e, err := alice.EnableUser(ctx, u.ID, ""); err != nil || e.Status != client.StatusActive {
			t.Errorf("enable = %+v, %v", e, err)
		}

		// bob (an admin of the child) cannot see the root's users.
		_, err = f.sdk(t, f.admUser("bob")).GetUser(ctx, f.alice.ID)
		wantAPIError(t, "a user above the caller", err, client.IsNotFound, http.StatusNotFound)

		if err := alice.DeleteUser(ctx, u.ID, ""); err != nil {
			t.Fatalf("delete user: %v", err)
		}
		_, err = alice.GetUser(ctx, u.ID)
		wantAPIError(t, "a deleted user", err, client.IsNotFound, http.StatusNotFound)
	})
}
