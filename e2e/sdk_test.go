package e2e

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

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

		// Users change their own password with the old one.
		self := f.sdk(t, admCaller(f.tokenDSP(f.dsp, "bob")))
		err = self.SetPassword(ctx, f.bob.ID, client.PasswordChange{OldPassword: "not bob's password", Password: testPassword + "?"})
		wantAPIError(t, "changing one's password with a wrong old one", err, client.IsForbidden, http.StatusForbidden)
		if err := self.SetPassword(ctx, f.bob.ID, client.PasswordChange{OldPassword: testPassword, Password: testPassword + "?"}); err != nil {
			t.Errorf("changing one's own password: %v", err)
		}
		if err := alice.DeleteUser(ctx, u.ID, ""); err != nil {
			t.Fatalf("delete user: %v", err)
		}
		_, err = alice.GetUser(ctx, u.ID)
		wantAPIError(t, "a deleted user", err, client.IsNotFound, http.StatusNotFound)
	})
}

func TestSDKClientsAndTokens(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		alice := f.sdk(t, f.admUser("alice"))

		c, err := alice.CreateClient(ctx, client.CredentialCreate{Name: "sdk-client", Description: "made by the SDK",
			Scopes: []string{"events"}, GrantTypes: []string{"client_credentials"}})
		if err != nil {
			t.Fatalf("create client: %v", err)
		}
		f.secrets = append(f.secrets, c.ClientSecret)
		if c.Kind != "client" || c.Use != "client_secret" || c.ClientSecret == "" || c.Key != "" || !slices.Equal(c.Scopes, []string{"events"}) {
			t.Errorf("created client = %+v", c)
		}
		if got := f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basic(c.ID, c.ClientSecret)); got.status != http.StatusOK {
			t.Errorf("token with the returned secret: status %d, body %s", got.status, got.body)
		}
		_, err = alice.CreateClient(ctx, client.CredentialCreate{Name: "both", AccessRights: "full", Scopes: []string{"read"}})
		wantAPIError(t, "access rights and scopes", err, client.IsInvalid, http.StatusUnprocessableEntity)

		got, err := alice.GetClient(ctx, c.ID)
		if err != nil || got.Name != "sdk-client" || got.Description != "made by the SDK" || got.SecretHint == "" {
			t.Errorf("get client = %+v, %v", got, err)
		}
		l, err := alice.ListClients(ctx, client.CredentialFilter{Name: "SDK-CL"})
		if err != nil || len(l.Items) != 1 || l.Items[0].ID != c.ID {
			t.Errorf("list ?name=SDK-CL = %+v, %v; want only client %d", l, err, c.ID)
		}

		// Edit under If-Match; the stale version is refused.
		edited, err := alice.UpdateClient(ctx, c.ID, client.CredentialUpdate{Name: new("sdk-client-2"), TokenLifetime: new(int64(600)),
			RateLimits: map[string]client.RateLimit{"default": {Rate: 5, Burst: 10}}, IfMatch: "1"})
		if err != nil || edited.Name != "sdk-client-2" || edited.TokenLifetime != 600 || edited.RateLimits["default"] != (client.RateLimit{Rate: 5, Burst: 10}) {
			t.Fatalf("edit = %+v, %v", edited, err)
		}
		_, err = alice.UpdateClient(ctx, c.ID, client.CredentialUpdate{Name: new("late"), IfMatch: "1"})
		wantAPIError(t, "edit with a stale If-Match", err, client.IsPreconditionFailed, http.StatusPreconditionFailed)
		cleared, err := alice.UpdateClient(ctx, c.ID, client.CredentialUpdate{RateLimits: map[string]client.RateLimit{}})
		if err != nil || cleared.RateLimits != nil {
			t.Errorf("clearing the rate limits = %+v, %v", cleared, err)
		}

		// A long-lived token, confirmed with the caller's password.
		tok, err := alice.CreateClientToken(ctx, c.ID, client.ClientTokenRequest{Password: testPassword, Lifetime: new(int64(3600))})
		if err != nil || tok.AccessToken == "" || tok.ExpiresIn != 3600 || tok.ExpiresAt.IsZero() {
			t.Fatalf("client token = %+v, %v", tok, err)
		}
		if !f.active(tok.AccessToken) {
			t.Error("the client token is not active")
		}
		_, err = alice.CreateClientToken(ctx, c.ID, client.ClientTokenRequest{Password: "not the password at all"})
		wantAPIError(t, "a client token with a wrong password", err, client.IsForbidden, http.StatusForbidden)

		// Rotate at once: the old secret and its token die.
		rotated, err := alice.RotateClient(ctx, c.ID, client.Rotation{Overlap: new(time.Duration(0))})
		if err != nil || rotated.ClientSecret == "" || rotated.ClientSecret == c.ClientSecret {
			t.Fatalf("rotate = %+v, %v", rotated, err)
		}
		f.secrets = append(f.secrets, rotated.ClientSecret)
		if got := f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basic(c.ID, c.ClientSecret)); got.status != http.StatusUnauthorized {
			t.Errorf("token with the old secret after rotate: status %d, want 401", got.status)
		}
		if got := f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basic(c.ID, rotated.ClientSecret)); got.status != http.StatusOK {
			t.Errorf("token with the new secret: status %d, body %s", got.status, got.body)
		}

		// Disabled, it cannot rotate (409); enabled again, it can be deleted.
		if d, err := alice.DisableClient(ctx, c.ID, ""); err != nil || d.Status != client.StatusDisabled || d.DisabledReason != "manual" {
			t.Errorf("disable = %+v, %v", d, err)
		}
		_, err = alice.RotateClient(ctx, c.ID, client.Rotation{})
		wantAPIError(t, "rotating a disabled client", err, client.IsConflict, http.StatusConflict)
		if e, err := alice.EnableClient(ctx, c.ID, ""); err != nil || e.Status != client.StatusActive {
			t.Errorf("enable = %+v, %v", e, err)
		}
		if err := alice.DeleteClient(ctx, c.ID, ""); err != nil {
			t.Fatalf("delete client: %v", err)
		}
		_, err = alice.GetClient(ctx, c.ID)
		wantAPIError(t, "a deleted client", err, client.IsNotFound, http.StatusNotFound)
		_, err = f.sdk(t, f.admCarol()).GetClient(ctx, f.cc.ID)
		wantAPIError(t, "another tree's client", err, client.IsNotFound, http.StatusNotFound)
	})
}

func TestSDKKeysPoliciesAndAudit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		aliceTok := f.admUser("alice")
		alice := f.sdk(t, aliceTok)

		k, err := alice.CreateKey(ctx, client.CredentialCreate{Name: "sdk-key", AccessRights: "full"})
		if err != nil {
			t.Fatalf("create key: %v", err)
		}
		f.secrets = append(f.secrets, k.Key, k.ClientSecret)
		if k.Kind != "key" || k.Use != "key" || !strings.HasPrefix(k.Key, "tgk_") || k.KeyHint == "" {
			t.Errorf("created key = %+v", k)
		}
		if got := f.post("/auth/access/session", "", "", "X-API-Key", k.Key); got.status != http.StatusOK {
			t.Errorf("session with the returned key: status %d, body %s", got.status, got.body)
		}
		_, err = alice.CreateKey(ctx, client.CredentialCreate{Name: "with grants", GrantTypes: []string{"client_credentials"}})
		wantAPIError(t, "a key with grant types", err, client.IsInvalid, http.StatusUnprocessableEntity)
		if g, err := alice.GetKey(ctx, k.ID); err != nil || g.AccessRights != "full" {
			t.Errorf("get key = %+v, %v", g, err)
		}
		if e, err := alice.UpdateKey(ctx, k.ID, client.CredentialUpdate{Description: new("edited"), IfMatch: strconv.FormatInt(k.Version, 10)}); err != nil || e.Description != "edited" {
			t.Errorf("edit key = %+v, %v", e, err)
		}
		r, err := alice.RotateKey(ctx, k.ID, client.Rotation{IfMatch: strconv.FormatInt(k.Version+1, 10)})
		if err != nil || r.Key == "" || r.Key == k.Key || r.PreviousSecretRetireAt == nil {
			t.Fatalf("rotate key = %+v, %v", r, err)
		}
		f.secrets = append(f.secrets, r.Key, r.ClientSecret)
		if d, err := alice.DisableKey(ctx, k.ID, ""); err != nil || d.Status != client.StatusDisabled {
			t.Errorf("disable key = %+v, %v", d, err)
		}
		if e, err := alice.EnableKey(ctx, k.ID, ""); err != nil || e.Status != client.StatusActive {
			t.Errorf("enable key = %+v, %v", e, err)
		}

		// Pagination over every key of the tree, one at a time.
		var all []int64
		page := client.CredentialFilter{Page: client.Page{Limit: 1}}
		for range 50 {
			l, err := alice.ListKeys(ctx, page)
			if err != nil {
				t.Fatalf("list keys: %v", err)
			}
			if len(l.Items) > 1 {
				t.Fatalf("page of %d keys, want 1", len(l.Items))
			}
			for _, x := range l.Items {
				all = append(all, x.ID)
			}
			if l.Next == 0 {
				break
			}
			page.After = l.Next
		}
		if !slices.Contains(all, k.ID) || len(all) != len(slices.Compact(slices.Sorted(slices.Values(all)))) {
			t.Errorf("keys over pages = %v, want each once, %d among them", all, k.ID)
		}

		// Deleting a user's default key makes a new one.
		mia := f.admCreateUser(t, aliceTok, f.child, "sdk.mia", "member")
		def := f.admDefaultKey(t, mia)
		replacement, err := alice.DeleteKey(ctx, def, "")
		if err != nil || replacement == 0 || replacement == def {
			t.Errorf("delete default key = %d, %v; want a new key's id", replacement, err)
		}
		if _, err := alice.DeleteKey(ctx, k.ID, ""); err != nil {
			t.Errorf("delete key: %v", err)
		}
		_, err = alice.GetKey(ctx, k.ID)
		wantAPIError(t, "a deleted key", err, client.IsNotFound, http.StatusNotFound)

		// The child account asks for the creator's password.
		if _, err := alice.UpdateAccount(ctx, f.child.ID, client.AccountUpdate{Policies: &client.PolicyChange{RequirePasswordForNewKeys: client.Set(true)}}); err != nil {
			t.Fatalf("set policy: %v", err)
		}
		_, err = alice.CreateKey(ctx, client.CredentialCreate{Name: "no password", AccountID: f.child.ID})
		wantAPIError(t, "a key without the password the policy asks", err, client.IsInvalid, http.StatusUnprocessableEntity, "password")
		withPassword, err := alice.CreateKey(ctx, client.CredentialCreate{Name: "with password", AccountID: f.child.ID, Password: testPassword})
		if err != nil {
			t.Fatalf("a key with the password: %v", err)
		}
		f.secrets = append(f.secrets, withPassword.Key, withPassword.ClientSecret)

		// The audit trail holds what was done, newest first, a page at a time.
		events, err := alice.ListAudit(ctx, client.AuditFilter{Page: client.Page{Limit: 100}})
		if err != nil {
			t.Fatalf("audit: %v", err)
		}
		if !slices.ContainsFunc(events.Items, func(e client.AuditEvent) bool {
			return e.Action == "key.create" && e.TargetID == k.ID && e.TargetType == "key" && e.Outcome == "success" && e.ActorUserID == f.alice.ID
		}) {
			t.Errorf("audit has no key.create of %d by alice: %+v", k.ID, events.Items)
		}
		if !slices.IsSortedFunc(events.Items, func(a, b client.AuditEvent) int { return int(b.ID - a.ID) }) {
			t.Error("audit events are not newest first")
		}
		first, err := alice.ListAudit(ctx, client.AuditFilter{Page: client.Page{Limit: 2}})
		if err != nil || len(first.Items) != 2 || first.Next == 0 {
			t.Fatalf("first audit page = %+v, %v", first, err)
		}
		second, err := alice.ListAudit(ctx, client.AuditFilter{Page: client.Page{Limit: 2, After: first.Next}})
		if err != nil || len(second.Items) == 0 || second.Items[0].ID >= first.Items[1].ID {
			t.Errorf("second audit page = %+v, %v; want older than %d", second, err, first.Items[1].ID)
		}
		_, err = f.sdk(t, f.admUser("sdk.mia")).ListAudit(ctx, client.AuditFilter{})
		wantAPIError(t, "a member reading the audit", err, client.IsForbidden, http.StatusForbidden)
	})
}

func TestSDKClientCredentials(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		mgr, _ := f.admManager(f.root)
		c, err := client.New(f.srv.URL+"/", client.WithClientCredentials(strconv.FormatInt(mgr.ID, 10), f.secretOf[mgr.ID]),
			client.WithHTTPClient(f.srv.Client()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetAccount(ctx, f.child.ID); err != nil {
			t.Fatalf("as the management client: %v", err)
		}
		// The token expires on the server's clock: the next call gets a
		// new one.
		f.clock.advance(2 * time.Hour)
		if _, err := c.GetAccount(ctx, f.child.ID); err != nil {
			t.Fatalf("after the token expired: %v", err)
		}

		bad, err := client.New(f.srv.URL, client.WithClientCredentials(strconv.FormatInt(mgr.ID, 10), typo(f.secretOf[mgr.ID])),
			client.WithHTTPClient(f.srv.Client()))
		if err != nil {
			t.Fatal(err)
		}
		_, err = bad.GetAccount(ctx, f.child.ID)
		var te *client.TokenError
		var e *client.Error
		if !errors.As(err, &te) || !errors.As(err, &e) || e.Code != "invalid_client" || !client.IsUnauthorized(err) {
			t.Errorf("a wrong secret: err = %v, want a TokenError holding a 401 invalid_client", err)
		}

		_, err = client.New(f.srv.URL)
		if err == nil {
			t.Error("New without credentials: no error")
		}
		if _, err := client.New("ftp://example.test", client.WithToken("x")); err == nil {
			t.Error("New with an ftp URL: no error")
		}
	})
}

// TestSDKTokenExchange: the SDK exchanges its client's token for one acting
// on a descendant account (ExchangeToken, ForAccount, which renews it), and
// an API key for a key token; the narrowed client manages the child's
// subtree only.
func TestSDKTokenExchange(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		mgr, _ := f.admManager(f.root)
		c, err := client.New(f.srv.URL, client.WithClientCredentials(strconv.FormatInt(mgr.ID, 10), f.secretOf[mgr.ID]),
			client.WithHTTPClient(f.srv.Client()))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := c.ExchangeToken(ctx, client.TokenExchange{AccountID: f.child.ID})
		if err != nil {
			t.Fatalf("ExchangeToken: %v", err)
		}
		f.secrets = append(f.secrets, tok.AccessToken)
		if tok.IssuedTokenType != client.TokenTypeAccessToken || tok.ExpiresIn <= 0 {
			t.Errorf("exchanged = %+v, want an access token with a lifetime", tok)
		}
		if got := f.introspect(f.rs, tok.AccessToken).json(t)["account_id"]; got != float64(f.child.ID) {
			t.Errorf("exchanged token's account_id = %v, want the child %d", got, f.child.ID)
		}
		_, err = c.ExchangeToken(ctx, client.TokenExchange{AccountID: f.other.ID})
		var e *client.Error
		if !errors.As(err, &e) || e.Code != "invalid_target" || e.StatusCode != http.StatusBadRequest {
			t.Errorf("exchange for another tree: err = %v, want 400 invalid_target", err)
		}

		child, err := c.ForAccount(ctx, f.child.ID)
		if err != nil {
			t.Fatalf("ForAccount: %v", err)
		}
		if _, err := child.GetAccount(ctx, f.child.ID); err != nil {
			t.Errorf("narrowed client reading the child: %v", err)
		}
		_, err = child.GetAccount(ctx, f.root.ID)
		wantAPIError(t, "narrowed client reading the root", err, client.IsNotFound, http.StatusNotFound)
		// Renewed once it expires.
		f.clock.advance(2 * time.Hour)
		if _, err := child.GetAccount(ctx, f.child.ID); err != nil {
			t.Errorf("narrowed client after its token expired: %v", err)
		}

		if _, err := f.sdk(t, "some-token").ForAccount(ctx, f.child.ID); !errors.Is(err, client.ErrNoClientCredentials) {
			t.Errorf("ForAccount with a static token: err = %v, want ErrNoClientCredentials", err)
		}

		bob := f.admUser("bob")
		key := f.admWant(t, bob, http.MethodPost, "/keys", `{"name":"sdk exchange"}`, http.StatusCreated)
		f.secrets = append(f.secrets, key["key"].(string), key["client_secret"].(string))
		kt, err := c.ExchangeAPIKey(ctx, key["key"].(string), client.TokenExchange{})
		if err != nil {
			t.Fatalf("ExchangeAPIKey: %v", err)
		}
		f.secrets = append(f.secrets, kt.AccessToken)
		if got := f.introspect(f.rs, kt.AccessToken).json(t)["client_id"]; got != strconv.FormatInt(admID(t, key), 10) {
			t.Errorf("key token's client_id = %v, want the key's %d", got, admID(t, key))
		}
		if _, err := c.ExchangeAPIKey(ctx, typo(key["key"].(string)), client.TokenExchange{}); !client.IsUnauthorized(err) {
			t.Errorf("a wrong key: err = %v, want 401", err)
		}
	})
}
