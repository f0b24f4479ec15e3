package e2e

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// admOwned lists the credentials user u owns, straight from the store.
func (f *fixture) admOwned(t *testing.T, u storage.User, kind storage.Kind) []storage.Client {
	t.Helper()
	cs, err := f.db.ListClients(t.Context(), storage.ClientFilter{AccountID: u.AccountID, OwnerID: u.ID, Kind: kind}, storage.Page{})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// admEvents lists the audit events of acc's subtree, straight from the
// store, newest first.
func (f *fixture) admEvents(t *testing.T, acc storage.Account) []storage.AuditEvent {
	t.Helper()
	es, err := f.db.ListAudit(t.Context(), storage.AuditFilter{AccountID: acc.ID, Subtree: true}, storage.Page{})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// admHasEvent reports whether events hold action on target.
func admHasEvent(events []storage.AuditEvent, action string, targetID int64) bool {
	return slices.ContainsFunc(events, func(e storage.AuditEvent) bool { return e.Action == action && e.TargetID == targetID })
}

func TestAdminUsersLifecycle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		alice := f.admUser("alice")
		ctx := t.Context()

		// Create a member of the child account.
		res := f.admDo(t, alice, http.MethodPost, "/users", admBody(map[string]any{
			"account_id": f.child.ID, "username": "mia.k@example-1", "password": testPassword}))
		if res.status != http.StatusCreated {
			t.Fatalf("create: status %d, body %s", res.status, res.body)
		}
		created := res.json(t)
		miaID := admID(t, created)
		want := map[string]any{"account_id": float64(f.child.ID), "username": "mia.k@example-1", "role": "member", "status": "active"}
		for k, v := range want {
			if created[k] != v {
				t.Errorf("created %s = %v, want %v", k, created[k], v)
			}
		}
		for _, k := range []string{"created_at", "updated_at", "version"} {
			if _, ok := created[k]; !ok {
				t.Errorf("created user has no %s: %v", k, created)
			}
		}
		if _, ok := created["password"]; ok {
			t.Errorf("created user shows a password field: %v", created)
		}
		etag := res.header.Get("ETag")
		if wantTag := `"` + strconv.FormatInt(int64(created["version"].(float64)), 10) + `"`; etag != wantTag {
			t.Errorf("ETag = %q, want %q", etag, wantTag)
		}
		if got, wantLoc := res.header.Get("Location"), "/api/v1/users/"+strconv.FormatInt(miaID, 10); got != wantLoc {
			t.Errorf("Location = %q, want %q", got, wantLoc)
		}
		mia, err := f.db.GetUser(ctx, miaID)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(mia.PasswordHash, "$argon2id$") {
			t.Errorf("stored password hash %q is not argon2id", mia.PasswordHash)
		}

		// Exactly one default key, active, with its audit events.
		keys := f.admOwned(t, mia, storage.KindKey)
		if len(keys) != 1 || !keys[0].IsDefault || keys[0].Status != storage.StatusActive || keys[0].AccountID != f.child.ID {
			t.Fatalf("keys of the new user = %+v, want exactly one active default key in the child account", keys)
		}
		if cs := f.admOwned(t, mia, storage.KindClient); len(cs) != 0 {
			t.Errorf("the new user owns %d clients, want 0", len(cs))
		}
		events := f.admEvents(t, f.child)
		if !admHasEvent(events, "user.create", miaID) || !admHasEvent(events, "key.create_default", keys[0].ID) {
			t.Errorf("audit events %+v lack user.create or key.create_default", events)
		}
		for _, e := range events {
			if e.ActorUserID != f.alice.ID || e.Outcome != "success" || e.RemoteAddr == "" {
				t.Errorf("audit event %+v: want actor alice, success, a remote address", e)
			}
		}

		// Get.
		miaPath := "/users/" + strconv.FormatInt(miaID, 10)
		got := f.admDo(t, alice, http.MethodGet, miaPath, "")
		if got.status != http.StatusOK || got.json(t)["username"] != "mia.k@example-1" || got.header.Get("ETag") != etag {
			t.Errorf("get: status %d ETag %q body %s", got.status, got.header.Get("ETag"), got.body)
		}

		// List: by default the caller's whole subtree; one account when
		// asked; every page bounded.
		all := admFieldIDs(f.admAll(t, alice, "/users", 2), "id")
		for _, id := range []int64{f.alice.ID, f.bob.ID, f.disabled.ID, miaID} {
			if !slices.Contains(all, id) {
				t.Errorf("users of the root subtree %v lack %d", all, id)
			}
		}
		if slices.Contains(all, f.carol.ID) || len(all) != 4 {
			t.Errorf("users of the root subtree = %v, want alice, bob, dave, mia", all)
		}
		if !slices.IsSorted(all) {
			t.Errorf("users %v are not in id order", all)
		}
		childOnly := admFieldIDs(f.admAll(t, alice, "/users?account_id="+strconv.FormatInt(f.child.ID, 10), 100), "id")
		if !slices.Equal(childOnly, []int64{f.bob.ID, miaID}) {
			t.Errorf("users of the child account = %v, want [bob mia]", childOnly)
		}
		rootOnly := admFieldIDs(f.admAll(t, alice, "/users?account_id="+strconv.FormatInt(f.root.ID, 10), 100), "id")
		if !slices.Equal(rootOnly, []int64{f.alice.ID, f.disabled.ID}) {
			t.Errorf("users of the root account alone = %v, want [alice dave]", rootOnly)
		}
		rootTree := admFieldIDs(f.admAll(t, alice, "/users?subtree=true&account_id="+strconv.FormatInt(f.root.ID, 10), 100), "id")
		if len(rootTree) != 4 {
			t.Errorf("users of the root subtree = %v, want 4", rootTree)
		}
		admProblem(t, f.admDo(t, alice, http.MethodGet, "/users?limit=101", ""), http.StatusBadRequest, "limit")
		admProblem(t, f.admDo(t, alice, http.MethodGet, "/users?after=x", ""), http.StatusBadRequest, "after")

		// Promote with a good If-Match; a stale one changes nothing.
		promoted := f.admDo(t, alice, http.MethodPatch, miaPath, `{"role":"admin"}`, "If-Match", etag)
		if promoted.status != http.StatusOK || promoted.json(t)["role"] != "admin" {
			t.Fatalf("promote: status %d body %s", promoted.status, promoted.body)
		}
		if promoted.header.Get("ETag") == etag {
			t.Errorf("ETag %q did not change with the update", etag)
		}
		admProblem(t, f.admDo(t, alice, http.MethodPatch, miaPath, `{"role":"member"}`, "If-Match", etag), http.StatusPreconditionFailed)
		if u, _ := f.db.GetUser(ctx, miaID); u.Role != storage.RoleAdmin {
			t.Errorf("role after a refused update = %s, want admin", u.Role)
		}
		back := f.admDo(t, alice, http.MethodPatch, miaPath, `{"role":"member"}`, "If-Match", promoted.header.Get("ETag"))
		if back.status != http.StatusOK || back.json(t)["role"] != "member" {
			t.Errorf("demote: status %d body %s", back.status, back.body)
		}
		if !admHasEvent(f.admEvents(t, f.child), "user.update", miaID) {
			t.Error("no user.update audit event")
		}

		// An admin resets the password: the new one signs in, the old one
		// no longer does.
		reset := "a-reset-password-for-mia"
		f.secrets = append(f.secrets, reset)
		f.admWant(t, alice, http.MethodPost, miaPath+"/password", admBody(map[string]any{"password": reset}), http.StatusNoContent)
		wantError(t, f.admLogin(mia.Username, testPassword), http.StatusBadRequest, "invalid_grant")
		// A token issued in the second of the reset is revoked with the
		// older ones (issue times are whole seconds): sign in a second later.
		f.clock.advance(time.Second)
		login := f.admLogin(mia.Username, reset)
		if login.status != http.StatusOK {
			t.Fatalf("sign in with the reset password: status %d body %s", login.status, login.body)
		}
		miaTok := admCaller(login.json(t)["access_token"].(string))

		// The user changes it back themself, confirming the old one.
		admProblem(t, f.admDo(t, miaTok, http.MethodPost, miaPath+"/password",
			admBody(map[string]any{"old_password": "not-the-password!", "password": testPassword})), http.StatusForbidden)
		admProblem(t, f.admDo(t, miaTok, http.MethodPost, miaPath+"/password",
			admBody(map[string]any{"password": testPassword})), http.StatusUnprocessableEntity, "old_password")
		f.admWant(t, miaTok, http.MethodPost, miaPath+"/password",
			admBody(map[string]any{"old_password": reset, "password": testPassword}), http.StatusNoContent)
		wantError(t, f.admLogin(mia.Username, reset), http.StatusBadRequest, "invalid_grant")
		// Changing the password revokes the user's tokens, the one that
		// asked included.
		admProblem(t, f.admDo(t, miaTok, http.MethodGet, miaPath, ""), http.StatusUnauthorized)
		f.clock.advance(time.Second)
		relogin := f.admLogin(mia.Username, testPassword)
		if relogin.status != http.StatusOK {
			t.Fatalf("sign in with the changed password: status %d body %s", relogin.status, relogin.body)
		}
		miaTok = admCaller(relogin.json(t)["access_token"].(string))
		// The user reads themself.
		if self := f.admWant(t, miaTok, http.MethodGet, miaPath, "", http.StatusOK); admID(t, self) != miaID {
			t.Errorf("self = %v", self)
		}
		events = f.admEvents(t, f.child)
		if !admHasEvent(events, "user.reset_password", miaID) || !admHasEvent(events, "user.change_password", miaID) {
			t.Errorf("audit events lack user.reset_password or user.change_password: %+v", events)
		}

		// Delete: the user, their keys and their tokens go.
		key, keyString := f.apiKey(mia, "events")
		if res := f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basicRaw("x", keyString)); res.status != http.StatusOK {
			t.Fatalf("key before the delete: status %d", res.status)
		}
		admProblem(t, f.admDo(t, alice, http.MethodDelete, miaPath, "", "If-Match", etag), http.StatusPreconditionFailed)
		f.admWant(t, alice, http.MethodDelete, miaPath, "", http.StatusNoContent)
		admProblem(t, f.admDo(t, alice, http.MethodGet, miaPath, ""), http.StatusNotFound)
		admProblem(t, f.admDo(t, alice, http.MethodDelete, miaPath, ""), http.StatusNotFound)
		if left := f.admOwned(t, mia, ""); len(left) != 0 {
			t.Errorf("the deleted user still owns %d credentials", len(left))
		}
		for _, c := range []storage.Client{keys[0], key} {
			if _, err := f.db.GetClient(ctx, c.ID); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("key %d of the deleted user: err %v, want not found", c.ID, err)
			}
		}
		wantError(t, f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basicRaw("x", keyString)), http.StatusUnauthorized, "invalid_client")
		admProblem(t, f.admDo(t, miaTok, http.MethodGet, miaPath, ""), http.StatusUnauthorized)
		events = f.admEvents(t, f.child)
		if !admHasEvent(events, "user.delete", miaID) || !admHasEvent(events, "key.delete", key.ID) {
			t.Errorf("audit events lack user.delete or key.delete: %+v", events)
		}
		for _, e := range events {
			if strings.Contains(e.Detail, reset) || strings.Contains(e.Detail, testPassword) || strings.Contains(e.Detail, "$argon2id$") {
				t.Errorf("audit detail %q carries a password", e.Detail)
			}
		}
	})
}

func TestAdminUsersByClientToken(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		manager, tok := f.admManager(f.child)
		u := f.admCreateUser(t, tok, f.child, "made-by-client", "admin")
		if u.Role != storage.RoleAdmin || u.AccountID != f.child.ID {
			t.Errorf("user = %+v, want an admin of the child account", u)
		}
		if keys := f.admOwned(t, u, storage.KindKey); len(keys) != 1 || !keys[0].IsDefault {
			t.Errorf("default keys = %+v, want one", keys)
		}
		// The trail names the credential and the person it answers to.
		for _, e := range f.admEvents(t, f.child) {
			if e.ActorClientID != manager.ID || e.ActorUserID != manager.OwnerID || manager.OwnerID == 0 {
				t.Errorf("event %+v: want the manager client %d as actor, and its owner %d as the user", e, manager.ID, manager.OwnerID)
			}
		}
		// Acting as an admin of its own account, and nowhere above it.
		admProblem(t, f.admDo(t, tok, http.MethodGet, "/users/"+strconv.FormatInt(f.alice.ID, 10), ""), http.StatusNotFound)
		f.admWant(t, tok, http.MethodGet, "/users/"+strconv.FormatInt(f.bob.ID, 10), "", http.StatusOK)
		// A password change needs a user: a client resets.
		f.admWant(t, tok, http.MethodPost, "/users/"+strconv.FormatInt(u.ID, 10)+"/password",
			admBody(map[string]any{"password": "another-good-password"}), http.StatusNoContent)
		f.secrets = append(f.secrets, "another-good-password")
		// A client token without the management scope is refused.
		admProblem(t, f.admDo(t, admCaller(f.tokenCC(f.cc)), http.MethodGet, "/users", ""), http.StatusForbidden)
		admProblem(t, f.admDo(t, "", http.MethodGet, "/users", ""), http.StatusUnauthorized)
		admProblem(t, f.admDo(t, "tg_at_not-a-token", http.MethodGet, "/users", ""), http.StatusUnauthorized)
	})
}

func TestAdminUsersValidation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		alice := f.admUser("alice")
		good := testPassword
		long := strings.Repeat("p", 1025)
		tests := []struct {
			name   string
			ct     string
			body   string
			status int
			fields []string
		}{
			{"all wrong", "", `{"username":"ab","password":"short","role":"boss"}`, 422, []string{"username", "password", "role"}},
			{"missing", "", `{}`, 422, []string{"username", "password"}},
			{"username with a space", "", admBody(map[string]any{"username": "two words", "password": good}), 422, []string{"username"}},
			{"username non-ascii", "", admBody(map[string]any{"username": "jürgen", "password": good}), 422, []string{"username"}},
			{"username too long", "", admBody(map[string]any{"username": strings.Repeat("u", 65), "password": good}), 422, []string{"username"}},
			{"password too long", "", admBody(map[string]any{"username": "longpass", "password": long}), 422, []string{"password"}},
			{"account outside", "", admBody(map[string]any{"username": "elsewhere", "password": good, "account_id": f.other.ID}), 422, []string{"account_id"}},
			{"unknown account", "", admBody(map[string]any{"username": "nowhere", "password": good, "account_id": 99999999}), 422, []string{"account_id"}},
			{"unknown field", "", admBody(map[string]any{"username": "extra", "password": good, "email": "x@example.com"}), 400, []string{"email"}},
			{"wrong type", "", `{"username":"typed","password":"` + good + `","role":5}`, 400, []string{"role"}},
			{"duplicate member", "", `{"username":"twice","password":"` + good + `","role":"member","role":"admin"}`, 400, []string{"role"}},
			{"duplicate member in another case", "", `{"username":"twice","password":"` + good + `","role":"member","Role":"admin"}`, 400, []string{"Role"}},
			{"duplicate member through an escape", "", `{"username":"twice","password":"` + good + `","role":"member","\u0072ole":"admin"}`, 400, []string{"role"}},
			{"not an object", "", `["x"]`, 400, nil},
			{"trailing data", "", admBody(map[string]any{"username": "trail", "password": good}) + `{}`, 400, nil},
			{"username taken", "", admBody(map[string]any{"username": "bob", "password": good}), 409, nil},
			{"text/plain", "text/plain", admBody(map[string]any{"username": "plain", "password": good}), 415, nil},
			{"oversized", "", admBody(map[string]any{"username": "big", "password": strings.Repeat("x", int(f.cfg.HTTP.MaxBodyBytes))}), 413, nil},
		}
		for _, tt := range tests {
			var header []string
			if tt.ct != "" {
				header = []string{"Content-Type", tt.ct}
			}
			res := f.admDo(t, alice, http.MethodPost, "/users", tt.body, header...)
			if res.status != tt.status {
				t.Errorf("%s: status %d, want %d (body %.300s)", tt.name, res.status, tt.status, res.body)
				continue
			}
			admProblem(t, res, tt.status, tt.fields...)
		}
		// Nothing of the refused requests was created.
		users, err := f.db.ListUsers(t.Context(), storage.UserFilter{}, storage.Page{})
		if err != nil {
			t.Fatal(err)
		}
		if len(users) != 4 {
			t.Errorf("%d users after refused creations, want the fixture's 4", len(users))
		}

		bobPath := "/users/" + strconv.FormatInt(f.bob.ID, 10)
		admProblem(t, f.admDo(t, alice, http.MethodPatch, bobPath, `{"role":"owner","status":"gone"}`), 422, "role", "status")
		admProblem(t, f.admDo(t, alice, http.MethodPatch, bobPath, `{"role":"member","role":"admin"}`), 400, "role")
		admProblem(t, f.admDo(t, alice, http.MethodPatch, bobPath, `{"username":"robert"}`), 400, "username")
		admProblem(t, f.admDo(t, alice, http.MethodPatch, bobPath, `{"role":"member"}`, "If-Match", "garbage"), 400)
		admProblem(t, f.admDo(t, alice, http.MethodPost, bobPath+"/password", `{"password":"short"}`), 422, "password")
		admProblem(t, f.admDo(t, alice, http.MethodPost, bobPath+"/password", `{"old_password":"x","password":"`+good+`"}`), 422, "old_password")
		admProblem(t, f.admDo(t, alice, http.MethodPost, bobPath+"/password", `{"password":"`+good+`"}`, "Content-Type", "application/x-www-form-urlencoded"), 415)
		if u, _ := f.db.GetUser(t.Context(), f.bob.ID); u.Version != f.bob.Version || u.Role != storage.RoleAdmin {
			t.Errorf("bob after refused changes = %+v, want unchanged", u)
		}
		admProblem(t, f.admDo(t, alice, http.MethodGet, "/users/99999999", ""), http.StatusNotFound)
		admProblem(t, f.admDo(t, alice, http.MethodPut, bobPath, `{}`), http.StatusMethodNotAllowed)
	})
}

func TestAdminSelfProtection(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		alice, bob := f.admUser("alice"), f.admUser("bob")
		alicePath := "/users/" + strconv.FormatInt(f.alice.ID, 10)
		admProblem(t, f.admDo(t, alice, http.MethodPatch, alicePath, `{"role":"member"}`), 422, "role")
		admProblem(t, f.admDo(t, alice, http.MethodPatch, alicePath, `{"status":"disabled"}`), 422, "status")
		admProblem(t, f.admDo(t, alice, http.MethodDelete, alicePath, ""), http.StatusForbidden)
		admProblem(t, f.admDo(t, alice, http.MethodPatch, "/accounts/"+strconv.FormatInt(f.root.ID, 10), `{"status":"disabled"}`), 422, "status")
		admProblem(t, f.admDo(t, bob, http.MethodPatch, "/accounts/"+strconv.FormatInt(f.child.ID, 10), `{"status":"disabled"}`), 422, "status")
		if u, _ := f.db.GetUser(t.Context(), f.alice.ID); u.Role != storage.RoleAdmin || u.Status != storage.StatusActive {
			t.Errorf("alice = %+v, want an active admin still", u)
		}
		for _, acc := range []storage.Account{f.root, f.child} {
			if got, _ := f.db.GetAccount(t.Context(), acc.ID); got.Status != storage.StatusActive {
				t.Errorf("account %s = %s, want active", acc.Name, got.Status)
			}
		}
		// What is not a self-lockout is allowed.
		f.admWant(t, alice, http.MethodPatch, alicePath, `{"role":"admin","status":"active"}`, http.StatusOK)
		f.admWant(t, bob, http.MethodPatch, "/accounts/"+strconv.FormatInt(f.child.ID, 10), `{"name":"kid"}`, http.StatusOK)
	})
}

func TestAdminUserDisable(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		alice := f.admUser("alice")
		uma := f.admCreateUser(t, alice, f.root, "uma", "")
		umaTok := f.admUser("uma")
		key, keyString := f.apiKey(uma, "events")
		keyToken := func() response {
			return f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basicRaw("uma", keyString))
		}
		res := keyToken()
		if res.status != http.StatusOK {
			t.Fatalf("key token: status %d body %s", res.status, res.body)
		}
		keyTok := res.json(t)["access_token"].(string)
		if !f.active(string(umaTok)) || !f.active(keyTok) {
			t.Fatal("fresh tokens inactive")
		}

		umaPath := "/users/" + strconv.FormatInt(uma.ID, 10)
		got := f.admWant(t, alice, http.MethodPatch, umaPath, `{"status":"disabled"}`, http.StatusOK)
		if got["status"] != "disabled" {
			t.Errorf("status = %v, want disabled", got["status"])
		}
		if f.active(string(umaTok)) {
			t.Error("the disabled user's eskimi_dsp token is active")
		}
		if f.active(keyTok) {
			t.Error("a token of the disabled user's key is active")
		}
		wantError(t, keyToken(), http.StatusUnauthorized, "invalid_client")
		wantError(t, f.admLogin("uma", testPassword), http.StatusBadRequest, "invalid_grant")
		admProblem(t, f.admDo(t, umaTok, http.MethodGet, umaPath, ""), http.StatusUnauthorized)
		owned := f.admOwned(t, uma, "")
		if len(owned) != 2 {
			t.Fatalf("uma owns %d credentials, want the default key and one more", len(owned))
		}
		events := f.admEvents(t, f.root)
		for _, c := range owned {
			if c.Status != storage.StatusDisabled {
				t.Errorf("credential %d of the disabled user is %s", c.ID, c.Status)
			}
			if !admHasEvent(events, "key.disable", c.ID) {
				t.Errorf("no key.disable audit event for %d", c.ID)
			}
		}
		if !admHasEvent(events, "user.update", uma.ID) {
			t.Error("no user.update audit event")
		}

		// Back on: the user signs in again; their credentials stay off
		// until someone turns them on.
		f.admWant(t, alice, http.MethodPatch, umaPath, `{"status":"active"}`, http.StatusOK)
		if res := f.admLogin("uma", testPassword); res.status != http.StatusOK {
			t.Errorf("sign in after re-enabling: status %d", res.status)
		}
		wantError(t, keyToken(), http.StatusUnauthorized, "invalid_client")
		if c, _ := f.db.GetClient(t.Context(), key.ID); c.Status != storage.StatusDisabled {
			t.Errorf("key after re-enabling its owner = %s, want disabled", c.Status)
		}
	})
}

// TestAdminCrossTenant runs the matrix of callers against records: the root
// admin, the child admin, the sibling tree's admin, a member of the child
// account, and a management client of the root account.
func TestAdminCrossTenant(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		alice, bob, carol := f.admUser("alice"), f.admUser("bob"), f.admCarol()
		mia := f.admCreateUser(t, alice, f.child, "mia", "member")
		member := f.admUser("mia")
		_, manager := f.admManager(f.root)
		user := func(u storage.User) string { return "/users/" + strconv.FormatInt(u.ID, 10) }
		account := func(a storage.Account) string { return "/accounts/" + strconv.FormatInt(a.ID, 10) }
		newUser := func(acc storage.Account) string {
			return admBody(map[string]any{"account_id": acc.ID, "username": "newbie", "password": testPassword})
		}
		newAccount := func(parent storage.Account) string {
			return admBody(map[string]any{"parent_id": parent.ID, "name": "sub"})
		}
		const (
			get, post, patch, del = http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete
			ok, forbidden, absent = http.StatusOK, http.StatusForbidden, http.StatusNotFound
		)
		reset := `{"password":"` + testPassword + `"}`
		tests := []struct {
			who                string
			caller             admCaller
			method, path, body string
			status             int
			fields             []string
		}{
			// The root admin reaches the child, not the sibling tree.
			{"alice", alice, get, user(f.bob), "", ok, nil},
			{"alice", alice, get, user(mia), "", ok, nil},
			{"alice", alice, get, user(f.carol), "", absent, nil},
			{"alice", alice, patch, user(f.carol), `{"role":"member"}`, absent, nil},
			{"alice", alice, del, user(f.carol), "", absent, nil},
			{"alice", alice, post, user(f.carol) + "/password", reset, absent, nil},
			{"alice", alice, get, account(f.child), "", ok, nil},
			{"alice", alice, get, account(f.other), "", absent, nil},
			{"alice", alice, get, account(f.other) + "/children", "", absent, nil},
			{"alice", alice, patch, account(f.other), `{"name":"mine"}`, absent, nil},
			{"alice", alice, get, "/users?account_id=" + strconv.FormatInt(f.other.ID, 10), "", absent, nil},
			{"alice", alice, get, "/audit?account_id=" + strconv.FormatInt(f.other.ID, 10), "", absent, nil},
			{"alice", alice, post, "/users", newUser(f.other), 422, []string{"account_id"}},
			{"alice", alice, post, "/accounts", newAccount(f.other), 422, []string{"parent_id"}},
			// The management client acts as an admin of the root.
			{"manager", manager, get, user(f.bob), "", ok, nil},
			{"manager", manager, get, user(f.carol), "", absent, nil},
			{"manager", manager, get, account(f.other), "", absent, nil},
			{"manager", manager, get, "/audit", "", ok, nil},
			// The child admin reaches the child only.
			{"bob", bob, get, user(mia), "", ok, nil},
			{"bob", bob, get, user(f.alice), "", absent, nil},
			{"bob", bob, get, user(f.disabled), "", absent, nil},
			{"bob", bob, patch, user(f.alice), `{"status":"disabled"}`, absent, nil},
			{"bob", bob, del, user(f.alice), "", absent, nil},
			{"bob", bob, post, user(f.alice) + "/password", reset, absent, nil},
			{"bob", bob, get, user(f.carol), "", absent, nil},
			{"bob", bob, get, account(f.root), "", absent, nil},
			{"bob", bob, patch, account(f.root), `{"name":"mine"}`, absent, nil},
			{"bob", bob, get, account(f.root) + "/children", "", absent, nil},
			{"bob", bob, get, account(f.child), "", ok, nil},
			{"bob", bob, get, account(f.child) + "/children", "", ok, nil},
			{"bob", bob, get, "/users?account_id=" + strconv.FormatInt(f.root.ID, 10), "", absent, nil},
			{"bob", bob, get, "/audit?account_id=" + strconv.FormatInt(f.root.ID, 10), "", absent, nil},
			{"bob", bob, post, "/users", newUser(f.root), 422, []string{"account_id"}},
			{"bob", bob, post, "/accounts", newAccount(f.root), 422, []string{"parent_id"}},
			// The sibling tree's admin reaches nothing of root's tree.
			{"carol", carol, get, user(f.alice), "", absent, nil},
			{"carol", carol, get, user(f.bob), "", absent, nil},
			{"carol", carol, del, user(mia), "", absent, nil},
			{"carol", carol, get, account(f.root), "", absent, nil},
			{"carol", carol, get, account(f.child), "", absent, nil},
			{"carol", carol, patch, account(f.child), `{"status":"disabled"}`, absent, nil},
			{"carol", carol, get, "/users?account_id=" + strconv.FormatInt(f.child.ID, 10), "", absent, nil},
			{"carol", carol, get, "/audit?account_id=" + strconv.FormatInt(f.root.ID, 10), "", absent, nil},
			{"carol", carol, get, account(f.other), "", ok, nil},
			// A member: themself and their account to read; nothing to
			// manage; nothing outside their account to see.
			{"member", member, get, user(mia), "", ok, nil},
			{"member", member, get, account(f.child), "", ok, nil},
			{"member", member, get, user(f.bob), "", forbidden, nil},
			{"member", member, patch, user(f.bob), `{"role":"member"}`, forbidden, nil},
			{"member", member, patch, user(mia), `{"role":"admin"}`, forbidden, nil},
			{"member", member, del, user(f.bob), "", forbidden, nil},
			{"member", member, post, user(f.bob) + "/password", reset, forbidden, nil},
			{"member", member, get, "/users", "", forbidden, nil},
			{"member", member, post, "/users", newUser(f.child), forbidden, nil},
			{"member", member, post, "/accounts", newAccount(f.child), forbidden, nil},
			{"member", member, patch, account(f.child), `{"name":"mine"}`, forbidden, nil},
			{"member", member, get, account(f.child) + "/children", "", forbidden, nil},
			{"member", member, get, "/audit", "", forbidden, nil},
			{"member", member, get, user(f.alice), "", absent, nil},
			{"member", member, del, user(f.alice), "", absent, nil},
			{"member", member, get, user(f.carol), "", absent, nil},
			{"member", member, get, account(f.root), "", absent, nil},
			{"member", member, get, account(f.other), "", absent, nil},
			{"member", member, get, "/users?account_id=" + strconv.FormatInt(f.root.ID, 10), "", absent, nil},
			{"member", member, get, "/audit?account_id=" + strconv.FormatInt(f.root.ID, 10), "", absent, nil},
		}
		unknown := f.admDo(t, alice, get, "/users/99999999", "")
		for _, tt := range tests {
			res := f.admDo(t, tt.caller, tt.method, tt.path, tt.body)
			if res.status != tt.status {
				t.Errorf("%s %s %s: status %d, want %d (body %s)", tt.who, tt.method, tt.path, res.status, tt.status, res.body)
				continue
			}
			if tt.status >= 400 {
				admProblem(t, res, tt.status, tt.fields...)
			}
			// Another tenant's record answers exactly like no record.
			if tt.status == absent && string(res.body) != string(unknown.body) {
				t.Errorf("%s %s %s: body %s, want the same as for an unknown id: %s", tt.who, tt.method, tt.path, res.body, unknown.body)
			}
		}
		// Nothing the matrix refused changed anything.
		for _, u := range []storage.User{f.alice, f.bob, f.carol, mia} {
			if got, err := f.db.GetUser(t.Context(), u.ID); err != nil || got.Version != u.Version {
				t.Errorf("user %s changed or went (%v)", u.Username, err)
			}
		}
		for _, acc := range []storage.Account{f.root, f.child, f.other} {
			if got, err := f.db.GetAccount(t.Context(), acc.ID); err != nil || got.Version != acc.Version {
				t.Errorf("account %s changed (%v)", acc.Name, err)
			}
		}
		// Lists hold only what the caller reaches.
		bobSees := admFieldIDs(f.admAll(t, bob, "/users", 100), "id")
		if !slices.Equal(bobSees, []int64{f.bob.ID, mia.ID}) {
			t.Errorf("bob lists users %v, want [bob mia]", bobSees)
		}
		carolSees := admFieldIDs(f.admAll(t, carol, "/users", 100), "id")
		if !slices.Equal(carolSees, []int64{f.carol.ID}) {
			t.Errorf("carol lists users %v, want [carol]", carolSees)
		}
		rootChildren := admFieldIDs(f.admAll(t, alice, account(f.root)+"/children", 100), "id")
		if !slices.Equal(rootChildren, []int64{f.child.ID}) {
			t.Errorf("children of root = %v, want [child]", rootChildren)
		}
	})
}

func TestAdminAccounts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		alice, bob := f.admUser("alice"), f.admUser("bob")
		ctx := t.Context()

		res := f.admDo(t, alice, http.MethodPost, "/accounts", admBody(map[string]any{"parent_id": f.child.ID, "name": "  grandchild "}))
		if res.status != http.StatusCreated {
			t.Fatalf("create: status %d body %s", res.status, res.body)
		}
		grand := res.json(t)
		grandID := admID(t, grand)
		if grand["parent_id"] != float64(f.child.ID) || grand["name"] != "grandchild" || grand["status"] != "active" {
			t.Errorf("created account = %v", grand)
		}
		if res.header.Get("ETag") == "" || res.header.Get("Location") != "/api/v1/accounts/"+strconv.FormatInt(grandID, 10) {
			t.Errorf("ETag %q Location %q", res.header.Get("ETag"), res.header.Get("Location"))
		}
		// By default under the caller's own account.
		bobs := f.admWant(t, bob, http.MethodPost, "/accounts", `{"name":"bob's team"}`, http.StatusCreated)
		if bobs["parent_id"] != float64(f.child.ID) {
			t.Errorf("bob's account parent = %v, want the child", bobs["parent_id"])
		}
		top := f.admWant(t, alice, http.MethodPost, "/accounts", `{"name":"second"}`, http.StatusCreated)
		if top["parent_id"] != float64(f.root.ID) {
			t.Errorf("alice's account parent = %v, want the root", top["parent_id"])
		}
		admProblem(t, f.admDo(t, alice, http.MethodPost, "/accounts", `{"name":"   "}`), 422, "name")
		admProblem(t, f.admDo(t, alice, http.MethodPost, "/accounts", admBody(map[string]any{"name": strings.Repeat("n", 101)})), 422, "name")
		admProblem(t, f.admDo(t, alice, http.MethodPost, "/accounts", `{"name":"a\u0000b"}`), 422, "name")
		admProblem(t, f.admDo(t, alice, http.MethodPost, "/accounts", `{}`), 422, "name")
		admProblem(t, f.admDo(t, alice, http.MethodPost, "/accounts", `{"name":"x","status":"disabled"}`), 422, "status")
		admProblem(t, f.admDo(t, alice, http.MethodPost, "/accounts", `{"name":"x","owner":"me"}`), 400, "owner")
		events := f.admEvents(t, f.root)
		if !admHasEvent(events, "account.create", grandID) || !admHasEvent(events, "account.create", admID(t, bobs)) {
			t.Errorf("audit lacks account.create events: %+v", events)
		}

		// Get: a root account shows no parent.
		root := f.admWant(t, alice, http.MethodGet, "/accounts/"+strconv.FormatInt(f.root.ID, 10), "", http.StatusOK)
		if _, ok := root["parent_id"]; ok || root["name"] != "root" {
			t.Errorf("root account = %v, want no parent_id", root)
		}

		// Children, page by page.
		childPath := "/accounts/" + strconv.FormatInt(f.child.ID, 10)
		kids := f.admAll(t, alice, childPath+"/children", 1)
		if got := admFieldIDs(kids, "id"); !slices.Equal(got, []int64{grandID, admID(t, bobs)}) {
			t.Errorf("children of child = %v, want [grandchild, bob's team]", got)
		}
		first := f.admWant(t, alice, http.MethodGet, childPath+"/children?limit=1", "", http.StatusOK)
		if _, ok := first["next"]; !ok || len(admItems(t, first)) != 1 {
			t.Errorf("first page = %v, want one item and next", first)
		}

		// Rename with If-Match; a stale ETag changes nothing.
		grandPath := "/accounts/" + strconv.FormatInt(grandID, 10)
		cur := f.admDo(t, bob, http.MethodGet, grandPath, "")
		tag := cur.header.Get("ETag")
		renamed := f.admDo(t, bob, http.MethodPatch, grandPath, `{"name":"renamed"}`, "If-Match", tag)
		if renamed.status != http.StatusOK || renamed.json(t)["name"] != "renamed" || renamed.header.Get("ETag") == tag {
			t.Fatalf("rename: status %d ETag %q body %s", renamed.status, renamed.header.Get("ETag"), renamed.body)
		}
		admProblem(t, f.admDo(t, bob, http.MethodPatch, grandPath, `{"name":"lost update"}`, "If-Match", tag), http.StatusPreconditionFailed)
		if acc, _ := f.db.GetAccount(ctx, grandID); acc.Name != "renamed" {
			t.Errorf("name after a refused update = %q, want renamed", acc.Name)
		}
		admProblem(t, f.admDo(t, bob, http.MethodPatch, grandPath, `{"status":"paused"}`), 422, "status")
		admProblem(t, f.admDo(t, bob, http.MethodPatch, grandPath, admBody(map[string]any{"parent_id": f.root.ID})), 422, "parent_id")
		if !admHasEvent(f.admEvents(t, f.child), "account.update", grandID) {
			t.Error("no account.update audit event")
		}

		// Disabling the child turns off every credential below it.
		childClient := f.client(storage.Client{AccountID: f.child.ID, Name: "child app", GrantTypes: []string{"client_credentials"}})
		grandClient := f.client(storage.Client{AccountID: grandID, Name: "grandchild app", GrantTypes: []string{"client_credentials"}})
		childTok := f.tokenCC(childClient)
		f.tokenCC(grandClient)
		f.admWant(t, alice, http.MethodPatch, childPath, `{"status":"disabled"}`, http.StatusOK)
		for _, c := range []storage.Client{childClient, grandClient} {
			wantError(t, f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basic(c.ID, f.secretOf[c.ID])),
				http.StatusUnauthorized, "invalid_client")
		}
		if f.active(childTok) {
			t.Error("a token of the disabled account is active")
		}
		admProblem(t, f.admDo(t, bob, http.MethodGet, childPath, ""), http.StatusUnauthorized)
		if f.tokenCC(f.cc) == "" {
			t.Error("the root's client stopped working")
		}
		// And back on: the credentials work again, but the tokens of before
		// stay dead (disabling ended them for good).
		f.admWant(t, alice, http.MethodPatch, childPath, `{"status":"active"}`, http.StatusOK)
		// Cut-offs are whole seconds: a new token is good from the next one.
		f.clock.advance(time.Second)
		f.tokenCC(grandClient)
		if f.active(childTok) {
			t.Error("the child's token of before it was disabled is active again after re-enabling the account")
		}
		if !f.active(f.tokenCC(childClient)) {
			t.Error("a new token of the child's client is inactive after re-enabling the account")
		}
	})
}

func TestAdminAudit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		alice, bob, carol := f.admUser("alice"), f.admUser("bob"), f.admCarol()
		secretPassword := "a-password-nobody-may-see"
		f.secrets = append(f.secrets, secretPassword)
		kid := f.admCreateUser(t, alice, f.child, "kid", "member")
		rooty := f.admCreateUser(t, alice, f.root, "rooty", "member")
		f.admWant(t, alice, http.MethodPost, "/users/"+strconv.FormatInt(kid.ID, 10)+"/password",
			admBody(map[string]any{"password": secretPassword}), http.StatusNoContent)
		sub := f.admWant(t, bob, http.MethodPost, "/accounts", `{"name":"team"}`, http.StatusCreated)
		f.admWant(t, alice, http.MethodPatch, "/users/"+strconv.FormatInt(rooty.ID, 10), `{"role":"admin"}`, http.StatusOK)

		all := f.admWant(t, alice, http.MethodGet, "/audit?limit=100", "", http.StatusOK)
		items := admItems(t, all)
		ids := admFieldIDs(items, "id")
		if len(ids) < 7 {
			t.Fatalf("audit = %d events, want at least 7: %v", len(ids), items)
		}
		if !slices.IsSortedFunc(ids, func(a, b int64) int { return int(b - a) }) {
			t.Errorf("audit ids %v are not newest first", ids)
		}
		newest := items[0]
		want := map[string]any{"action": "user.update", "target_type": "user", "target_id": float64(rooty.ID),
			"account_id": float64(f.root.ID), "actor_user_id": float64(f.alice.ID), "outcome": "success"}
		for k, v := range want {
			if newest[k] != v {
				t.Errorf("newest event %s = %v, want %v (%v)", k, newest[k], v, newest)
			}
		}
		for _, k := range []string{"time", "remote_addr", "actor_client_id"} {
			if _, ok := newest[k]; !ok {
				t.Errorf("event has no %s: %v", k, newest)
			}
		}
		var actions []string
		for _, it := range items {
			actions = append(actions, it["action"].(string))
			if d, _ := it["detail"].(string); strings.Contains(d, secretPassword) || strings.Contains(d, testPassword) {
				t.Errorf("audit detail %q carries a password", d)
			}
		}
		for _, a := range []string{"user.create", "key.create_default", "user.reset_password", "account.create", "user.update"} {
			if !slices.Contains(actions, a) {
				t.Errorf("audit actions %v lack %s", actions, a)
			}
		}

		// Pages of two give the same events in the same order.
		paged := admFieldIDs(f.admAll(t, alice, "/audit", 2), "id")
		if !slices.Equal(paged, ids) {
			t.Errorf("paged audit = %v, want %v", paged, ids)
		}
		admProblem(t, f.admDo(t, alice, http.MethodGet, "/audit?limit=0", ""), http.StatusBadRequest, "limit")
		admProblem(t, f.admDo(t, alice, http.MethodGet, "/audit?account_id=abc", ""), http.StatusBadRequest, "account_id")

		// The child's admin sees the child's subtree only; the sibling
		// tree's admin nothing of it.
		bobItems := f.admAll(t, bob, "/audit", 100)
		subID := admID(t, sub)
		for _, it := range bobItems {
			if acc := int64(it["account_id"].(float64)); acc != f.child.ID && acc != subID {
				t.Errorf("bob sees an event of account %d: %v", acc, it)
			}
		}
		if len(bobItems) < 4 { // kid's create + default key + reset, team's create
			t.Errorf("bob sees %d events, want at least 4", len(bobItems))
		}
		filtered := f.admAll(t, alice, "/audit?account_id="+strconv.FormatInt(f.child.ID, 10), 100)
		if !slices.Equal(admFieldIDs(filtered, "id"), admFieldIDs(bobItems, "id")) {
			t.Errorf("alice filtering by the child = %v, want what bob sees %v", admFieldIDs(filtered, "id"), admFieldIDs(bobItems, "id"))
		}
		if carolItems := f.admAll(t, carol, "/audit", 100); len(carolItems) != 0 {
			t.Errorf("carol sees %d events of other trees", len(carolItems))
		}
		f.clock.advance(time.Second) // past the second of the reset
		login := f.admLogin("kid", secretPassword)
		if login.status != http.StatusOK {
			t.Fatalf("kid signs in: status %d body %s", login.status, login.body)
		}
		admProblem(t, f.admDo(t, admCaller(login.json(t)["access_token"].(string)), http.MethodGet, "/audit", ""), http.StatusForbidden)
	})
}

// TestUsernamesIgnoreCase: a username that differs from a taken one only
// by letter case is taken, and signing in ignores case (the brute-force
// counters too: ALICE and alice are one username).
func TestUsernamesIgnoreCase(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		alice := f.admUser("alice")
		for _, name := range []string{"ALICE", "Alice", "BOB"} {
			res := f.admDo(t, alice, http.MethodPost, "/users", admBody(map[string]any{"username": name, "password": testPassword}))
			admProblem(t, res, http.StatusConflict)
		}
		for _, name := range []string{"ALICE", "aLiCe"} {
			res := f.post("/oauth/token", formCT, form("grant_type", "eskimi_dsp", "username", name, "password", testPassword),
				"Authorization", basic(f.dsp.ID, f.secretOf[f.dsp.ID]))
			if res.status != http.StatusOK {
				t.Fatalf("sign-in as %q: %d %s, want 200", name, res.status, res.body)
			}
			in := f.introspect(f.rs, res.json(t)["access_token"].(string)).json(t)
			if in["username"] != "alice" || in["sub"] != strconv.FormatInt(f.alice.ID, 10) {
				t.Errorf("sign-in as %q: introspection %v, want alice's token under her stored name", name, in)
			}
		}
	})
}

// TestNamesRefuseFormatControls: names and descriptions refuse controls
// and invisible format characters (bidirectional overrides and isolates,
// zero-width characters), which make one name read as another.
func TestNamesRefuseFormatControls(t *testing.T) {
	f := newFixture(t, "embedded")
	alice := bearer(f.tokenDSP(f.dsp, "alice"))
	tests := []struct {
		name, path, body, field string
	}{
		{"right-to-left override in a key name", "/keys", `{"name":"key\u202eexe.txt"}`, "name"},
		{"left-to-right isolate in a client name", "/clients", `{"name":"app\u2066x\u2069"}`, "name"},
		{"zero-width space in a description", "/keys", `{"name":"k","description":"pay\u200bpal"}`, "description"},
		{"zero-width joiner in a description", "/clients", `{"name":"k","description":"a\u200db"}`, "description"},
		{"byte-order mark in a name", "/keys", `{"name":"\ufeffkey"}`, "name"},
		{"C1 control in a name", "/keys", `{"name":"ke\u0085y"}`, "name"},
		{"line separator in a name", "/keys", `{"name":"key\u2028two"}`, "name"},
		{"right-to-left mark in an account name", "/accounts", `{"name":"acme\u200f"}`, "name"},
		{"arabic letter mark in an account name", "/accounts", `{"name":"acme\u061c"}`, "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			admProblem(t, f.apiDo("POST", tt.path, alice, tt.body), http.StatusUnprocessableEntity, tt.field)
		})
	}
	// Letters of every script, and marks, stay allowed.
	f.apiJSON("POST", "/accounts", alice, `{"name":"Ünïcødé ✓ مرحبا עברית"}`, http.StatusCreated)
	created := f.apiJSON("POST", "/keys", alice, `{"name":"clé","description":"for the café\nsecond line"}`, http.StatusCreated)
	f.secrets = append(f.secrets, created["key"].(string), created["client_secret"].(string))
}
