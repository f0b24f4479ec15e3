package manage_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/bruteforce"
	bfmemory "github.com/tollgate/tollgate/pkg/bruteforce/memory"
	"github.com/tollgate/tollgate/pkg/manage"
	"github.com/tollgate/tollgate/pkg/reqctx"
	"github.com/tollgate/tollgate/pkg/secret"
	"github.com/tollgate/tollgate/pkg/tokens"
	"github.com/tollgate/tollgate/storage"
	tokmemory "github.com/tollgate/tollgate/storage/memory"
	sqlstore "github.com/tollgate/tollgate/storage/sql"
	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

// backends are the databases every test runs on: the embedded SQLite store
// and PostgreSQL (skipped when unreachable, except in CI).
var backends = []struct {
	name string
	url  func(t *testing.T) string
}{
	{"sqlite", sqltest.SQLite},
	{"postgres", sqltest.Postgres},
}

const (
	adminPassword  = "correct horse battery"
	memberPassword = "member password 1"
	mgmtScope      = "tollgate:manage"
)

// tenant is a root account made by Bootstrap, its admin, a member, and a
// sub-account.
type tenant struct {
	account storage.Account
	child   storage.Account
	admin   storage.User
	member  storage.User
	asAdmin manage.Actor
	asMem   manage.Actor
	client  storage.Client // the bootstrap client, owned by admin
}

type fixture struct {
	store *sqlstore.Store
	svc   *manage.Service
	a, b  tenant
}

// newFixture opens a fresh database at url and builds the service over it
// with two tenants that know nothing of each other.
func newFixture(t *testing.T, url string) *fixture {
	t.Helper()
	store, err := sqlstore.Open(t.Context(), sqlstore.Options{URL: url, QueryTimeout: time.Minute})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if _, err := store.Migrate(t.Context()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	hasher, err := secret.NewHasher("p1", map[string][]byte{"p1": []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	passwords, err := secret.NewPasswords(secret.Argon2Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	if err != nil {
		t.Fatal(err)
	}
	opaque, err := tokens.NewOpaque([]byte("token secret token secret token secret!!"), nil)
	if err != nil {
		t.Fatal(err)
	}
	guard := bruteforce.New(bfmemory.New(bfmemory.Options{}), bruteforce.Options{Kind: bruteforce.KindUser, Threshold: 2, SourceThreshold: 100})
	svc := manage.New(manage.Options{
		Store: store, Hasher: hasher, Passwords: passwords, Guard: guard,
		Tokens:              tokens.New(tokens.Options{Format: opaque, Tokens: tokmemory.New(tokmemory.Options{}), Store: store}),
		ManagementScope:     mgmtScope,
		AccessRights:        map[string][]string{"events": {"events"}, "manage": {"events", mgmtScope}},
		DefaultAccessRights: "events", GrantTypes: []string{"client_credentials", "eskimi_dsp"},
		RotationOverlap: time.Hour, MaxRotationOverlap: 24 * time.Hour, ClientTokenLifetime: 24 * time.Hour,
		RateClasses: []string{"default"},
	})
	f := &fixture{store: store, svc: svc}
	f.a = f.newTenant(t, "a")
	f.b = f.newTenant(t, "b")
	return f
}

func (f *fixture) newTenant(t *testing.T, name string) tenant {
	t.Helper()
	ctx := t.Context()
	done, err := f.svc.Bootstrap(ctx, manage.BootstrapInput{AccountName: name, Username: name + "-admin", Password: adminPassword,
		ClientName: "first", Scopes: []string{"events", mgmtScope}, GrantTypes: []string{"client_credentials"}})
	if err != nil {
		t.Fatalf("Bootstrap %s: %v", name, err)
	}
	tn := tenant{account: done.Account, admin: done.User, client: done.Client}
	tn.asAdmin = manage.UserActor(done.User, storage.Client{}, "192.0.2.1")
	if tn.child, err = f.svc.CreateAccount(ctx, tn.asAdmin, manage.AccountInput{Name: ptr(name + " child")}); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	if tn.member, err = f.svc.CreateUser(ctx, tn.asAdmin, manage.UserInput{Username: ptr(name + "-member"), Password: ptr(memberPassword)}); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	tn.asMem = manage.UserActor(tn.member, storage.Client{}, "192.0.2.2")
	return tn
}

func ptr[T any](v T) *T { return &v }

// code returns the code of err, or "" for nil and for an error that is not
// the service's.
func code(err error) manage.Code {
	if e, ok := errors.AsType[*manage.Error](err); ok {
		return e.Code
	}
	return ""
}

func forEachBackend(t *testing.T, test func(t *testing.T, f *fixture)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, newFixture(t, b.url(t))) })
	}
}

// TestErrorCodes calls each operation the way that refuses it and checks the
// code it returns: one case (at least) per code.
func TestErrorCodes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		cancelled, cancel := context.WithCancel(t.Context())
		cancel()
		tests := []struct {
			name string
			call func(ctx context.Context) error
			want manage.Code
		}{
			{"invalid username", func(ctx context.Context) error {
				_, err := f.svc.CreateUser(ctx, f.a.asAdmin, manage.UserInput{Username: ptr("x"), Password: ptr(memberPassword)})
				return err
			}, manage.Invalid},
			{"another tenant's user", func(ctx context.Context) error {
				_, err := f.svc.GetUser(ctx, f.a.asAdmin, f.b.member.ID)
				return err
			}, manage.NotFound},
			{"another tenant's client", func(ctx context.Context) error {
				_, err := f.svc.GetClient(ctx, f.a.asAdmin, storage.KindClient, f.b.client.ID)
				return err
			}, manage.NotFound},
			{"another tenant's account", func(ctx context.Context) error {
				_, err := f.svc.GetAccount(ctx, f.a.asAdmin, f.b.account.ID)
				return err
			}, manage.NotFound},
			{"a username taken in another letter case", func(ctx context.Context) error {
				_, err := f.svc.CreateUser(ctx, f.a.asAdmin, manage.UserInput{Username: ptr("B-MEMBER"), Password: ptr(memberPassword)})
				return err
			}, manage.Conflict},
			{"a member creates a user", func(ctx context.Context) error {
				_, err := f.svc.CreateUser(ctx, f.a.asMem, manage.UserInput{Username: ptr("someone"), Password: ptr(memberPassword)})
				return err
			}, manage.Forbidden},
			{"a member lists the users of their account", func(ctx context.Context) error {
				_, err := f.svc.ListUsers(ctx, f.a.asMem, storage.UserFilter{AccountID: f.a.account.ID}, storage.Page{Limit: 10})
				return err
			}, manage.Forbidden},
			{"an admin deletes themself", func(ctx context.Context) error {
				return f.svc.DeleteUser(ctx, f.a.asAdmin, f.a.admin.ID, 0)
			}, manage.Forbidden},
			{"a stale version", func(ctx context.Context) error {
				_, err := f.svc.UpdateUser(ctx, f.a.asAdmin, f.a.member.ID, f.a.member.Version+7, manage.UserUpdate{Role: ptr(storage.RoleAdmin)})
				return err
			}, manage.PreconditionFailed},
			{"a backend that fails", func(context.Context) error {
				_, err := f.svc.GetAccount(cancelled, f.a.asAdmin, f.a.account.ID)
				return err
			}, manage.Unavailable},
		}
		for _, tt := range tests {
			err := tt.call(t.Context())
			if got := code(err); got != tt.want {
				t.Errorf("%s: code %q (%v), want %q", tt.name, got, err, tt.want)
			}
			if e, ok := errors.AsType[*manage.Error](err); ok && e.Detail == "" {
				t.Errorf("%s: no detail for people", tt.name)
			}
		}
	})
}

// TestInvalidFields checks that an invalid call names every wrong field, in
// the order the API has always listed them, and changes nothing.
func TestInvalidFields(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		_, err := f.svc.CreateUser(ctx, f.a.asAdmin, manage.UserInput{AccountID: ptr(f.b.account.ID), Username: ptr("bad name!"),
			Password: ptr("short"), Role: ptr(storage.Role("owner"))})
		e, ok := errors.AsType[*manage.Error](err)
		if !ok || e.Code != manage.Invalid {
			t.Fatalf("CreateUser: %v, want an Invalid *manage.Error", err)
		}
		want := []manage.FieldError{
			{Field: "account_id", Detail: "no such account among those you manage"},
			{Field: "username", Detail: "may contain only letters A–Z and a–z, digits, and . _ @ -"},
			{Field: "password", Detail: "must be 12 to 1024 bytes"},
			{Field: "role", Detail: "must be admin or member"},
		}
		if !slices.Equal(e.Fields, want) {
			t.Errorf("fields\n got %v\nwant %v", e.Fields, want)
		}

		_, err = f.svc.UpdateAccount(ctx, f.a.asAdmin, f.a.account.ID, 0, manage.AccountInput{
			ParentID: ptr(f.a.child.ID), Name: ptr("a\u202eb"), Status: ptr(storage.StatusDisabled),
			Policies: &manage.PoliciesInput{KeysManagedBy: manage.Optional[storage.KeysManagedBy]{Set: true, Value: ptr(storage.KeysManagedBy("nobody"))}},
		})
		e, ok = errors.AsType[*manage.Error](err)
		if !ok || e.Code != manage.Invalid {
			t.Fatalf("UpdateAccount: %v, want an Invalid *manage.Error", err)
		}
		var fields []string
		for _, fe := range e.Fields {
			fields = append(fields, fe.Field)
		}
		if want := []string{"parent_id", "name", "status", "policies.keys_managed_by"}; !slices.Equal(fields, want) {
			t.Errorf("UpdateAccount fields %v, want %v", fields, want)
		}
		acc, err := f.svc.GetAccount(ctx, f.a.asAdmin, f.a.account.ID)
		if err != nil || acc.Version != f.a.account.Version || acc.Status != storage.StatusActive {
			t.Errorf("the account changed after an invalid update: %+v, %v", acc, err)
		}
	})
}

// TestAuthorization checks who may do what: subtree and ownership, and the
// management powers of a client token.
func TestAuthorization(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		// An admin reaches a sub-account; its parent's admin of another
		// tenant does not.
		if _, err := f.svc.ListUsers(ctx, f.a.asAdmin, storage.UserFilter{AccountID: f.a.child.ID}, storage.Page{Limit: 5}); err != nil {
			t.Errorf("admin lists the users of a sub-account: %v", err)
		}
		if _, err := f.svc.ListUsers(ctx, f.b.asAdmin, storage.UserFilter{AccountID: f.a.child.ID}, storage.Page{Limit: 5}); code(err) != manage.NotFound {
			t.Errorf("another tenant's admin lists a sub-account's users: %v, want not found", err)
		}
		// A member sees the credentials they own, not the admin's.
		key, _, err := f.svc.CreateClient(ctx, f.a.asMem, storage.KindKey, manage.ClientInput{Name: ptr("mine")})
		if err != nil {
			t.Fatalf("member creates a key: %v", err)
		}
		if _, err := f.svc.GetClient(ctx, f.a.asMem, storage.KindKey, key.ID); err != nil {
			t.Errorf("member reads their key: %v", err)
		}
		if _, err := f.svc.GetClient(ctx, f.a.asMem, storage.KindClient, f.a.client.ID); code(err) != manage.NotFound {
			t.Errorf("member reads the admin's client: %v, want not found", err)
		}
		if _, err := f.svc.GetClient(ctx, f.a.asAdmin, storage.KindClient, key.ID); code(err) != manage.NotFound {
			t.Errorf("a key read as a client: %v, want not found", err)
		}
		// A member may not hand out the management scope.
		_, _, err = f.svc.CreateClient(ctx, f.a.asMem, storage.KindClient, manage.ClientInput{Name: ptr("x"), Scopes: &[]string{mgmtScope}})
		if e, ok := errors.AsType[*manage.Error](err); !ok || e.Code != manage.Invalid || e.Fields[0].Field != "scopes" {
			t.Errorf("member grants the management scope: %v, want invalid scopes", err)
		}

		// A client token: only with the management scope, only while its
		// owner is an active admin, never without an owner.
		if _, err := f.svc.ClientActor(ctx, f.a.client, []string{"events"}, ""); code(err) != manage.Forbidden {
			t.Errorf("client token without the management scope: %v, want forbidden", err)
		}
		act, err := f.svc.ClientActor(ctx, f.a.client, []string{mgmtScope}, "")
		if err != nil {
			t.Fatalf("client of an active admin: %v", err)
		}
		if _, err := f.svc.GetUser(ctx, act, f.a.member.ID); err != nil {
			t.Errorf("client token reads a user of its account: %v", err)
		}
		if _, err := f.svc.GetUser(ctx, act, f.b.member.ID); code(err) != manage.NotFound {
			t.Errorf("client token reads another tenant's user: %v, want not found", err)
		}
		ownerless, _, err := f.svc.CreateClient(ctx, f.a.asAdmin, storage.KindClient, manage.ClientInput{Name: ptr("account's"), AccountID: ptr(f.a.child.ID)})
		if err != nil {
			t.Fatalf("admin creates an account credential: %v", err)
		}
		if ownerless.OwnerID != 0 {
			t.Fatalf("account credential owned by %d", ownerless.OwnerID)
		}
		if _, err := f.svc.ClientActor(ctx, ownerless, []string{mgmtScope}, ""); code(err) != manage.Forbidden {
			t.Errorf("client token of a client without an owner: %v, want forbidden", err)
		}
		if _, err := f.svc.UpdateUser(ctx, f.a.asAdmin, f.a.admin.ID, 0, manage.UserUpdate{Role: ptr(storage.RoleMember)}); code(err) != manage.Invalid {
			t.Errorf("admin demotes themself: %v, want invalid", err)
		}
		second, err := f.svc.CreateUser(ctx, f.a.asAdmin, manage.UserInput{Username: ptr("a-second"), Password: ptr(memberPassword), Role: ptr(storage.RoleAdmin)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.UpdateUser(ctx, manage.UserActor(second, storage.Client{}, ""), f.a.admin.ID, 0, manage.UserUpdate{Role: ptr(storage.RoleMember)}); err != nil {
			t.Fatalf("demote the first admin: %v", err)
		}
		if _, err := f.svc.ClientActor(ctx, f.a.client, []string{mgmtScope}, ""); code(err) != manage.Forbidden {
			t.Errorf("client token of a demoted owner: %v, want forbidden", err)
		}
	})
}

// TestAccountPolicies checks keys_managed_by and
// require_password_for_new_keys, and that a refused change is audited.
func TestAccountPolicies(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		key, _, err := f.svc.CreateClient(ctx, f.a.asMem, storage.KindKey, manage.ClientInput{Name: ptr("before")})
		if err != nil {
			t.Fatal(err)
		}
		admins := storage.KeysManagedByAdmins
		if _, err := f.svc.UpdateAccount(ctx, f.a.asAdmin, f.a.account.ID, 0, manage.AccountInput{Policies: &manage.PoliciesInput{
			KeysManagedBy: manage.Optional[storage.KeysManagedBy]{Set: true, Value: &admins}}}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.svc.CreateClient(ctx, f.a.asMem, storage.KindKey, manage.ClientInput{Name: ptr("after")}); code(err) != manage.Forbidden {
			t.Errorf("member creates a key where admins manage keys: %v, want forbidden", err)
		}
		if _, err := f.svc.UpdateClient(ctx, f.a.asMem, storage.KindKey, key.ID, 0, manage.ClientInput{Name: ptr("renamed")}); code(err) != manage.Forbidden {
			t.Errorf("member renames a key where admins manage keys: %v, want forbidden", err)
		}
		if _, err := f.svc.DeleteClient(ctx, f.a.asMem, storage.KindKey, key.ID, 0); code(err) != manage.Forbidden {
			t.Errorf("member deletes a key where admins manage keys: %v, want forbidden", err)
		}
		events, err := f.svc.ListAudit(ctx, f.a.asAdmin, f.a.account.ID, storage.Page{Limit: 5})
		if err != nil {
			t.Fatal(err)
		}
		if e := events[0]; e.Action != "key.delete" || e.Outcome != "failure" || !strings.HasPrefix(e.Detail, "refused: 403 ") || e.ActorUserID != f.a.member.ID {
			t.Errorf("latest audit event %+v, want the refused key.delete of the member", e)
		}

		yes := true
		if _, err := f.svc.UpdateAccount(ctx, f.a.asAdmin, f.a.account.ID, 0, manage.AccountInput{Policies: &manage.PoliciesInput{
			RequirePasswordForNewKeys: manage.Optional[bool]{Set: true, Value: &yes}}}); err != nil {
			t.Fatal(err)
		}
		_, _, err = f.svc.CreateClient(ctx, f.a.asAdmin, storage.KindKey, manage.ClientInput{Name: ptr("k")})
		if e, ok := errors.AsType[*manage.Error](err); !ok || e.Code != manage.Invalid || e.Fields[0].Field != "password" {
			t.Errorf("new key without the password: %v, want invalid password", err)
		}
		_, _, err = f.svc.CreateClient(ctx, f.a.asAdmin, storage.KindKey, manage.ClientInput{Name: ptr("k"), Password: ptr("wrong password!")})
		if e, ok := errors.AsType[*manage.Error](err); !ok || e.Code != manage.Forbidden || len(e.Fields) != 1 || e.Fields[0] != (manage.FieldError{Field: "password", Detail: "is wrong"}) {
			t.Errorf("new key with a wrong password: %v, want forbidden with the password field", err)
		}
		if _, _, err := f.svc.CreateClient(ctx, f.a.asAdmin, storage.KindKey, manage.ClientInput{Name: ptr("k"), Password: ptr(adminPassword)}); err != nil {
			t.Errorf("new key with the password: %v", err)
		}
		act, err := f.svc.ClientActor(ctx, f.a.client, []string{mgmtScope}, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.svc.CreateClient(ctx, act, storage.KindKey, manage.ClientInput{Name: ptr("k"), Password: ptr(adminPassword)}); code(err) != manage.Forbidden {
			t.Errorf("a client token creates a key where the password is asked: %v, want forbidden", err)
		}
	})
}

// TestPasswordConfirmation checks the password a user types to confirm who
// they are: wrong is Forbidden, and after the threshold the brute-force
// protection blocks, with a time to retry.
func TestPasswordConfirmation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ctx := reqctx.WithSource(t.Context(), "192.0.2.9")
		change := manage.PasswordChange{OldPassword: ptr("not my password"), Password: ptr("a brand new password")}
		for i := range 2 {
			if err := f.svc.SetPassword(ctx, f.a.asMem, f.a.member.ID, change); code(err) != manage.Forbidden {
				t.Fatalf("wrong old password %d: %v, want forbidden", i+1, err)
			}
		}
		err := f.svc.SetPassword(ctx, f.a.asMem, f.a.member.ID, manage.PasswordChange{OldPassword: ptr(memberPassword), Password: ptr("a brand new password")})
		e, ok := errors.AsType[*manage.Error](err)
		if !ok || e.Code != manage.Blocked || e.RetryAfter <= 0 {
			t.Fatalf("after the threshold: %v, want blocked with a time to retry", err)
		}
		// Another user, from elsewhere, is not held back; the admin resets
		// without an old password, and may not give one.
		if err := f.svc.SetPassword(t.Context(), f.a.asAdmin, f.a.member.ID, change); code(err) != manage.Invalid {
			t.Errorf("admin reset with an old password: %v, want invalid", err)
		}
		if err := f.svc.SetPassword(t.Context(), f.a.asAdmin, f.a.member.ID, manage.PasswordChange{Password: ptr("a brand new password")}); err != nil {
			t.Errorf("admin reset: %v", err)
		}
		if err := f.svc.SetPassword(t.Context(), f.b.asAdmin, f.a.member.ID, manage.PasswordChange{Password: ptr("a brand new password")}); code(err) != manage.NotFound {
			t.Errorf("another tenant's admin resets: %v, want not found", err)
		}
	})
}

// TestClientTokens checks the management credentials: a token for a client
// after the user's own password, refused for a disabled client.
func TestClientTokens(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		tok, err := f.svc.GenerateClientToken(ctx, f.a.asAdmin, f.a.client.ID, adminPassword, ptr(int64(60)))
		if err != nil {
			t.Fatalf("GenerateClientToken: %v", err)
		}
		if tok.AccessToken == "" || tok.Lifetime != time.Minute || !slices.Contains(tok.Scopes, mgmtScope) {
			t.Errorf("token %+v", tok)
		}
		if _, err := f.svc.GenerateClientToken(ctx, f.a.asAdmin, f.a.client.ID, adminPassword, ptr(int64(0))); code(err) != manage.Invalid {
			t.Errorf("lifetime 0: %v, want invalid", err)
		}
		if _, err := f.svc.GenerateClientToken(ctx, f.b.asAdmin, f.a.client.ID, adminPassword, nil); code(err) != manage.NotFound {
			t.Errorf("another tenant's client: %v, want not found", err)
		}
		if _, err := f.svc.UpdateClient(ctx, f.a.asAdmin, storage.KindClient, f.a.client.ID, 0, manage.ClientInput{Status: ptr(storage.StatusDisabled)}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.GenerateClientToken(ctx, f.a.asAdmin, f.a.client.ID, adminPassword, nil); code(err) != manage.Conflict {
			t.Errorf("disabled client: %v, want conflict", err)
		}
		if _, _, err := f.svc.RotateClient(ctx, f.a.asAdmin, storage.KindClient, f.a.client.ID, 0, nil); code(err) != manage.Conflict {
			t.Errorf("rotate a disabled client: %v, want conflict", err)
		}
	})
}

// TestBootstrap checks the first account: a taken username is a conflict
// and writes nothing.
func TestBootstrap(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		_, err := f.svc.Bootstrap(ctx, manage.BootstrapInput{AccountName: "again", Username: "A-ADMIN", Password: adminPassword, ClientName: "c"})
		if code(err) != manage.Conflict {
			t.Fatalf("Bootstrap with a taken username: %v, want conflict", err)
		}
		keys, err := f.svc.ListClients(ctx, f.a.asAdmin, storage.KindKey, storage.ClientFilter{AccountID: f.a.account.ID, Subtree: true}, storage.Page{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if i := slices.IndexFunc(keys, func(c storage.Client) bool { return c.IsDefault && c.OwnerID == f.a.admin.ID }); i < 0 {
			t.Errorf("the bootstrapped admin has no default key among %d keys", len(keys))
		}
	})
}

// TestAccessTokenStrategy: a credential's token format is opaque unless set
// to jwt, is one of the two, and a change is audited.
func TestAccessTokenStrategy(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		c, _, err := f.svc.CreateClient(ctx, f.a.asAdmin, storage.KindClient, manage.ClientInput{Name: ptr("default")})
		if err != nil || c.AccessTokenStrategy != storage.StrategyOpaque {
			t.Fatalf("CreateClient: strategy %q, %v, want opaque", c.AccessTokenStrategy, err)
		}
		_, _, err = f.svc.CreateClient(ctx, f.a.asAdmin, storage.KindClient, manage.ClientInput{Name: ptr("bad"), AccessTokenStrategy: ptr("paseto")})
		e, ok := errors.AsType[*manage.Error](err)
		if !ok || e.Code != manage.Invalid || len(e.Fields) != 1 || e.Fields[0].Field != "access_token_strategy" {
			t.Fatalf("CreateClient with paseto: %v, want Invalid on access_token_strategy", err)
		}
		c, err = f.svc.UpdateClient(ctx, f.a.asAdmin, storage.KindClient, c.ID, 0, manage.ClientInput{AccessTokenStrategy: ptr(storage.StrategyJWT)})
		if err != nil || c.AccessTokenStrategy != storage.StrategyJWT {
			t.Fatalf("UpdateClient to jwt: %q, %v", c.AccessTokenStrategy, err)
		}
		events, err := f.store.ListAudit(ctx, storage.AuditFilter{}, storage.Page{Limit: 1})
		if err != nil || len(events) != 1 || !strings.Contains(events[0].Detail, "access_token_strategy opaque → jwt") {
			t.Errorf("the change's audit event: %+v, %v", events, err)
		}
	})
}

// TestDPoPBoundAccessTokens: the setting is off unless set, its change is
// audited, and a bound client gets no Bearer token from the management API.
func TestDPoPBoundAccessTokens(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		c, _, err := f.svc.CreateClient(ctx, f.a.asAdmin, storage.KindClient, manage.ClientInput{Name: ptr("default")})
		if err != nil || c.DPoPBoundAccessTokens {
			t.Fatalf("CreateClient: bound %v, %v, want false", c.DPoPBoundAccessTokens, err)
		}
		c, err = f.svc.UpdateClient(ctx, f.a.asAdmin, storage.KindClient, c.ID, 0, manage.ClientInput{DPoPBoundAccessTokens: ptr(true)})
		if err != nil || !c.DPoPBoundAccessTokens {
			t.Fatalf("UpdateClient to bound: %v, %v", c.DPoPBoundAccessTokens, err)
		}
		events, err := f.store.ListAudit(ctx, storage.AuditFilter{}, storage.Page{Limit: 1})
		if err != nil || len(events) != 1 || !strings.Contains(events[0].Detail, "dpop_bound_access_tokens false → true") {
			t.Errorf("the change's audit event: %+v, %v", events, err)
		}
	})
}
