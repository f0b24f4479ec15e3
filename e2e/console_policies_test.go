package e2e

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/storage"
)

// The console's account settings page shows and edits the policies, and
// the credential pages follow them: the password field on the add form,
// read-only pages for members when only admins manage credentials, and
// every refused POST refused. A sub-account inherits unless it overrides.
func TestConsoleAccountPolicies(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		alice := f.browser(t)
		alice.signIn("alice")
		alice.post("/console/users/new", "username", "mia", "password", testPassword, "role", "member").want(t, http.StatusSeeOther)

		// Defaults: everything inherits, nothing is asked.
		p := alice.get("/console/settings").want(t, http.StatusOK).has(t, "Account settings", `id="effective-password">not asked`,
			`id="effective-managed">every user, their own`)
		alice.get("/console/keys/new").want(t, http.StatusOK).lacks(t, `id="password"`)
		version := p.value(t, "settings-version")

		// A bad choice is refused beside its field; nothing is saved.
		p = alice.post("/console/settings", "version", version, "require_password_for_new_keys", "true", "keys_managed_by", "owners").
			want(t, http.StatusUnprocessableEntity)
		if got := p.fieldError(t, "keys_managed_by"); got == "" {
			t.Error("no error beside keys_managed_by")
		}
		if acc, _ := f.db.GetAccount(ctx, f.root.ID); acc.Policies.RequirePasswordForNewKeys != nil {
			t.Errorf("root policies after a refused save = %+v, want none set", acc.Policies)
		}

		alice.post("/console/settings", "version", version, "require_password_for_new_keys", "true", "keys_managed_by", "admins").
			want(t, http.StatusSeeOther, "/console/settings?ok=saved")
		alice.get("/console/settings?ok=saved").want(t, http.StatusOK).has(t, "Your changes are saved", `id="effective-password">asked`,
			`id="effective-managed">admins only`, `<option value="admins" selected>`)
		if acc, _ := f.db.GetAccount(ctx, f.root.ID); acc.Policies.KeysManagedBy != storage.KeysManagedByAdmins ||
			acc.Policies.RequirePasswordForNewKeys == nil || !*acc.Policies.RequirePasswordForNewKeys {
			t.Errorf("root policies = %+v, want password asked, admins manage", acc.Policies)
		}

		// The admin's add form asks for the password; a wrong one is shown
		// beside the field, and nothing is made.
		alice.get("/console/keys/new").want(t, http.StatusOK).has(t, `id="password"`)
		before := countClients(t, f, storage.KindKey)
		p = alice.post("/console/keys/new", "name", "k", "access_rights", "full").want(t, http.StatusUnprocessableEntity)
		if got := p.fieldError(t, "password"); got == "" {
			t.Error("no error beside the missing password")
		}
		p = alice.post("/console/keys/new", "name", "k", "access_rights", "full", "password", "wrong").want(t, http.StatusForbidden)
		if got := p.fieldError(t, "password"); got != "The password is wrong." {
			t.Errorf("error beside the password = %q, want %q", got, "The password is wrong.")
		}
		p.lacks(t, `value="wrong"`)
		if got := countClients(t, f, storage.KindKey); got != before {
			t.Errorf("%d keys after refusals, want %d", got, before)
		}
		p = alice.post("/console/keys/new", "name", "k", "access_rights", "full", "password", testPassword).want(t, http.StatusOK)
		f.secrets = append(f.secrets, p.value(t, "api-key"))

		// The member sees their default key, read-only, and every change is
		// refused.
		mia := f.browser(t)
		mia.signIn("mia")
		keys := listKeys(t, f, "mia")
		if len(keys) != 1 {
			t.Fatalf("mia's keys = %+v, want her default key", keys)
		}
		kid := strconv.FormatInt(keys[0].ID, 10)
		mia.get("/console/keys").want(t, http.StatusOK).has(t, "Default key", `id="read-only"`, `id="status-`+kid+`"`).
			lacks(t, `id="add"`, `id="toggle-`+kid+`"`, "/console/keys/"+kid+"/delete")
		mia.get("/console/keys/"+kid).want(t, http.StatusOK).has(t, `id="read-only"`).
			lacks(t, `id="details"`, `id="rotate"`, `id="delete-link"`, `id="toggle-`+kid+`"`)
		mia.get("/console/keys/new").want(t, http.StatusForbidden)
		mia.get("/console/keys/"+kid+"/delete").want(t, http.StatusForbidden)
		mia.get("/console/settings").want(t, http.StatusForbidden)
		for _, post := range [][]string{
			{"/console/keys/new", "name", "k", "access_rights", "full", "password", testPassword},
			{"/console/clients/new", "name", "c", "access_rights", "full", "password", testPassword},
			{"/console/keys/" + kid, "name", "renamed", "version", strconv.FormatInt(keys[0].Version, 10)},
			{"/console/keys/" + kid + "/status", "status", "disabled", "confirm", "yes"},
			{"/console/keys/" + kid + "/rotate", "version", strconv.FormatInt(keys[0].Version, 10)},
			{"/console/keys/" + kid + "/delete", "version", strconv.FormatInt(keys[0].Version, 10)},
			{"/console/settings", "keys_managed_by", "anyone"},
		} {
			mia.post(post[0], post[1:]...).want(t, http.StatusForbidden)
		}
		if k, err := f.db.GetClient(ctx, keys[0].ID); err != nil || k.Version != keys[0].Version {
			t.Errorf("mia's key after refused posts = %+v, %v; want it unchanged", k, err)
		}

		// The child inherits; overriding it there changes only the child.
		alice.post("/console/account", "account", strconv.FormatInt(f.child.ID, 10), "back", "/console/settings").
			want(t, http.StatusSeeOther, "/console/settings?ok=switched")
		p = alice.get("/console/settings").want(t, http.StatusOK).has(t, `id="effective-password">asked`, `id="effective-managed">admins only`,
			`<option value="" selected>Inherit (asked)`, `<option value="" selected>Inherit (admins only)`)
		alice.post("/console/settings", "version", p.value(t, "settings-version"), "require_password_for_new_keys", "false", "keys_managed_by", "").
			want(t, http.StatusSeeOther, "/console/settings?ok=saved")
		alice.get("/console/settings").has(t, `id="effective-password">not asked`, `id="effective-managed">admins only`)
		alice.get("/console/keys/new").want(t, http.StatusOK).lacks(t, `id="password"`)
		p = alice.post("/console/keys/new", "name", "in the child", "access_rights", "full").want(t, http.StatusOK)
		key := p.value(t, "api-key")
		f.secrets = append(f.secrets, key)
		if id, _, err := apikey.Parse(key); err != nil {
			t.Fatal(err)
		} else if c, _ := f.db.GetClient(ctx, id); c.AccountID != f.child.ID {
			t.Errorf("key made in the child belongs to account %d", c.AccountID)
		}
		if eff, _ := f.db.EffectivePolicies(ctx, f.root.ID); !eff.RequirePasswordForNewKeys {
			t.Error("the child's override changed the root")
		}
		events := admEventsOf(t, f, f.child)
		if !admHasEvent(events, "account.update", f.child.ID) {
			t.Error("no audit event for the child's policy change")
		}
	})
}

// admEventsOf lists the audit events of acc straight from the store.
func admEventsOf(t *testing.T, f *fixture, acc storage.Account) []storage.AuditEvent {
	t.Helper()
	return f.admEvents(t, acc)
}
