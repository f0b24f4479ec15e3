package e2e

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// admPolicies reads the own and effective policies of account id as who.
func (f *fixture) admPolicies(t *testing.T, who admCaller, id int64) (own, eff map[string]any) {
	t.Helper()
	m := f.admWant(t, who, http.MethodGet, admPath("/accounts", id), "", http.StatusOK)
	own, _ = m["policies"].(map[string]any)
	eff, _ = m["effective_policies"].(map[string]any)
	if own == nil || eff == nil {
		t.Fatalf("account %d: %v lacks policies or effective_policies", id, m)
	}
	return own, eff
}

// The account policies through the management API: set by admins on their
// subtree, inherited by sub-accounts unless they set their own, shown as
// own and effective values, audited, and enforced on every credential
// operation.
func TestAdminAccountPolicies(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		alice := f.admUser("alice")
		mia := f.admCreateUser(t, alice, f.root, "mia", "member")
		f.admCreateUser(t, alice, f.child, "nina", "member")
		miaTok, ninaTok := f.admUser("mia"), f.admUser("nina")
		rootPath, childPath := admPath("/accounts", f.root.ID), admPath("/accounts", f.child.ID)
		policies := func(v map[string]any) string { return admBody(map[string]any{"policies": v}) }
		wantPolicies := func(step string, id int64, wantOwn, wantEff string) {
			t.Helper()
			own, eff := f.admPolicies(t, alice, id)
			if got := admBody(own); got != wantOwn {
				t.Errorf("%s: account %d policies = %s, want %s", step, id, got, wantOwn)
			}
			if got := admBody(eff); got != wantEff {
				t.Errorf("%s: account %d effective_policies = %s, want %s", step, id, got, wantEff)
			}
		}
		const (
			unset  = `{"keys_managed_by":null,"leaked_key_action":null,"require_password_for_new_keys":null}`
			deflt  = `{"keys_managed_by":"anyone","leaked_key_action":"disable","require_password_for_new_keys":false}`
			strict = `{"keys_managed_by":"admins","leaked_key_action":"disable","require_password_for_new_keys":true}`
		)
		wantPolicies("defaults", f.root.ID, unset, deflt)
		wantPolicies("defaults", f.child.ID, unset, deflt)

		// Today's behaviour by default: a member creates a key, no password.
		f.admWant(t, miaTok, http.MethodPost, "/keys", `{"name":"before"}`, http.StatusCreated)

		// Bad settings are refused precisely, and only admins set them.
		for _, tt := range []struct {
			name, body string
			status     int
			field      string
		}{
			{"unknown manager", policies(map[string]any{"keys_managed_by": "owners"}), http.StatusUnprocessableEntity, "policies.keys_managed_by"},
			{"empty manager", policies(map[string]any{"keys_managed_by": ""}), http.StatusUnprocessableEntity, "policies.keys_managed_by"},
			{"password not a bool", policies(map[string]any{"require_password_for_new_keys": "yes"}), http.StatusBadRequest, ""},
			{"unknown policy", policies(map[string]any{"mfa": true}), http.StatusBadRequest, ""},
			{"policy named twice", `{"policies":{"keys_managed_by":"admins","Keys_Managed_By":"anyone"}}`, http.StatusBadRequest, ""},
			{"policies not an object", `{"policies":["admins"]}`, http.StatusBadRequest, ""},
			{"unknown leaked key action", policies(map[string]any{"leaked_key_action": "ignore"}), http.StatusUnprocessableEntity, "policies.leaked_key_action"},
			{"empty leaked key action", policies(map[string]any{"leaked_key_action": ""}), http.StatusUnprocessableEntity, "policies.leaked_key_action"},
			{"leaked key action not a string", policies(map[string]any{"leaked_key_action": true}), http.StatusBadRequest, ""},
		} {
			t.Run(tt.name, func(t *testing.T) {
				if tt.field == "" {
					admProblem(t, f.admDo(t, alice, http.MethodPatch, rootPath, tt.body), tt.status)
				} else {
					admProblem(t, f.admDo(t, alice, http.MethodPatch, rootPath, tt.body), tt.status, tt.field)
				}
			})
		}
		admProblem(t, f.admDo(t, miaTok, http.MethodPatch, rootPath, policies(map[string]any{"keys_managed_by": "anyone"})), http.StatusForbidden)
		admProblem(t, f.admDo(t, f.admCarol(), http.MethodPatch, rootPath, policies(map[string]any{"keys_managed_by": "anyone"})), http.StatusNotFound)
		wantPolicies("after refusals", f.root.ID, unset, deflt)

		// The root goes strict; the child inherits.
		m := f.admWant(t, alice, http.MethodPatch, rootPath, policies(map[string]any{"require_password_for_new_keys": true, "keys_managed_by": "admins"}), http.StatusOK)
		if got := admBody(m["effective_policies"]); got != strict {
			t.Errorf("PATCH answer effective_policies = %s, want %s", got, strict)
		}
		wantPolicies("root strict", f.root.ID, `{"keys_managed_by":"admins","leaked_key_action":null,"require_password_for_new_keys":true}`, strict)
		wantPolicies("root strict", f.child.ID, unset, strict)
		events := f.admEvents(t, f.root)
		var detail string
		for _, e := range events {
			if e.Action == "account.update" && e.TargetID == f.root.ID {
				detail = e.Detail
			}
		}
		if want := "require_password_for_new_keys inherit → true, keys_managed_by inherit → admins"; detail != want {
			t.Errorf("audit detail = %q, want %q", detail, want)
		}

		// Members manage no credential, not even their own default key,
		// which they still read.
		miaKey := f.admDefaultKey(t, mia)
		keyPath := admPath("/keys", miaKey)
		for _, tt := range []struct{ name, method, path, body string }{
			{"create", http.MethodPost, "/keys", `{"name":"k"}`},
			{"create client", http.MethodPost, "/clients", `{"name":"c"}`},
			{"rename", http.MethodPatch, keyPath, `{"name":"mine"}`},
			{"disable", http.MethodPatch, keyPath, `{"status":"disabled"}`},
			{"rotate", http.MethodPost, keyPath + "/rotate", ""},
			{"delete", http.MethodDelete, keyPath, ""},
		} {
			t.Run("member "+tt.name, func(t *testing.T) {
				res := f.admDo(t, miaTok, tt.method, tt.path, tt.body)
				admProblem(t, res, http.StatusForbidden)
				if !strings.Contains(string(res.body), "keys_managed_by") {
					t.Errorf("refusal %s does not name the policy", res.body)
				}
			})
		}
		if k, err := f.db.GetClient(ctx, miaKey); err != nil || k.Name != "Default key" || k.Status != storage.StatusActive {
			t.Errorf("mia's default key after refusals = %+v, %v; want it untouched", k, err)
		}
		if items := admItems(t, f.admWant(t, miaTok, http.MethodGet, "/keys", "", http.StatusOK)); len(items) != 2 {
			t.Errorf("mia lists %d keys, want her 2 (read-only)", len(items))
		}
		f.admWant(t, miaTok, http.MethodGet, keyPath, "", http.StatusOK)
		if !admHasFailure(f.admEvents(t, f.root), "key.delete", miaKey) {
			t.Error("no failure audit event for the refused delete")
		}

		// The admin confirms with their own password.
		admProblem(t, f.admDo(t, alice, http.MethodPost, "/keys", `{"name":"k"}`), http.StatusUnprocessableEntity, "password")
		admProblem(t, f.admDo(t, alice, http.MethodPost, "/keys", `{"name":"k","password":""}`), http.StatusUnprocessableEntity, "password")
		admProblem(t, f.admDo(t, alice, http.MethodPost, "/keys", admBody(map[string]any{"name": "k", "password": "wrong"})), http.StatusForbidden, "password")
		created := f.admWant(t, alice, http.MethodPost, "/keys", admBody(map[string]any{"name": "k", "password": testPassword}), http.StatusCreated)
		f.secrets = append(f.secrets, created["key"].(string), created["client_secret"].(string))
		f.admWant(t, alice, http.MethodPost, "/clients", admBody(map[string]any{"name": "c", "password": testPassword}), http.StatusCreated)
		// Editing asks for no password, and refuses one.
		admProblem(t, f.admDo(t, alice, http.MethodPatch, admPath("/keys", admID(t, created)), admBody(map[string]any{"name": "k2", "password": testPassword})),
			http.StatusUnprocessableEntity, "password")
		// A management client has no password to give.
		_, manager := f.admManager(f.root)
		res := f.admDo(t, manager, http.MethodPost, "/keys", admBody(map[string]any{"name": "m", "password": testPassword}))
		admProblem(t, res, http.StatusForbidden)
		if !strings.Contains(string(res.body), "password") {
			t.Errorf("management client refusal %s does not say why", res.body)
		}

		// The child overrides both; its member manages keys again.
		f.admWant(t, alice, http.MethodPatch, childPath, policies(map[string]any{"require_password_for_new_keys": false, "keys_managed_by": "anyone"}), http.StatusOK)
		wantPolicies("child override", f.child.ID, `{"keys_managed_by":"anyone","leaked_key_action":null,"require_password_for_new_keys":false}`, deflt)
		wantPolicies("child override", f.root.ID, `{"keys_managed_by":"admins","leaked_key_action":null,"require_password_for_new_keys":true}`, strict)
		ninaKey := f.admWant(t, ninaTok, http.MethodPost, "/keys", `{"name":"nina's"}`, http.StatusCreated)
		f.secrets = append(f.secrets, ninaKey["key"].(string), ninaKey["client_secret"].(string))
		f.admWant(t, ninaTok, http.MethodPatch, admPath("/keys", admID(t, ninaKey)), `{"name":"renamed"}`, http.StatusOK)
		// An admin of the root creating in the child follows the child's
		// policy: no password.
		f.admWant(t, alice, http.MethodPost, "/keys", admBody(map[string]any{"name": "for child", "account_id": f.child.ID}), http.StatusCreated)

		// null clears one setting: the child inherits it again, at once.
		f.admWant(t, alice, http.MethodPatch, childPath, policies(map[string]any{"keys_managed_by": nil}), http.StatusOK)
		wantPolicies("child cleared", f.child.ID, `{"keys_managed_by":null,"leaked_key_action":null,"require_password_for_new_keys":false}`,
			`{"keys_managed_by":"admins","leaked_key_action":"disable","require_password_for_new_keys":false}`)
		admProblem(t, f.admDo(t, ninaTok, http.MethodPost, "/keys", `{"name":"again"}`), http.StatusForbidden)
		admProblem(t, f.admDo(t, ninaTok, http.MethodDelete, admPath("/keys", admID(t, ninaKey)), ""), http.StatusForbidden)

		// Relaxing the root gives members their keys back.
		f.admWant(t, alice, http.MethodPatch, rootPath, policies(map[string]any{"require_password_for_new_keys": nil, "keys_managed_by": nil}), http.StatusOK)
		wantPolicies("root relaxed", f.root.ID, unset, deflt)
		f.admWant(t, miaTok, http.MethodPatch, keyPath, `{"name":"mine"}`, http.StatusOK)
		f.admWant(t, ninaTok, http.MethodDelete, admPath("/keys", admID(t, ninaKey)), "", http.StatusNoContent)

		// The leaked-key policy: set on the child, inherited below it,
		// audited; members may not set it.
		admProblem(t, f.admDo(t, miaTok, http.MethodPatch, rootPath, policies(map[string]any{"leaked_key_action": "notify"})), http.StatusForbidden)
		f.admWant(t, alice, http.MethodPatch, childPath, policies(map[string]any{"leaked_key_action": "notify"}), http.StatusOK)
		wantPolicies("child notify", f.child.ID, `{"keys_managed_by":null,"leaked_key_action":"notify","require_password_for_new_keys":false}`,
			`{"keys_managed_by":"anyone","leaked_key_action":"notify","require_password_for_new_keys":false}`)
		wantPolicies("child notify", f.root.ID, unset, deflt)
		var leakedDetail string
		for _, e := range f.admEvents(t, f.root) {
			if e.Action == "account.update" && e.TargetID == f.child.ID && strings.Contains(e.Detail, "leaked_key_action") {
				leakedDetail = e.Detail
			}
		}
		if want := "leaked_key_action inherit → notify"; leakedDetail != want {
			t.Errorf("audit detail = %q, want %q", leakedDetail, want)
		}
		f.admWant(t, alice, http.MethodPatch, childPath, policies(map[string]any{"leaked_key_action": nil}), http.StatusOK)
		wantPolicies("child inherits the leaked-key policy", f.child.ID, `{"keys_managed_by":null,"leaked_key_action":null,"require_password_for_new_keys":false}`, deflt)
	})
}

// admHasFailure reports whether events hold a refused action on target.
func admHasFailure(events []storage.AuditEvent, action string, targetID int64) bool {
	for _, e := range events {
		if e.Action == action && e.TargetID == targetID && e.Outcome == "failure" {
			return true
		}
	}
	return false
}

// The password asked when a key is created goes through the brute-force
// protection, counted with the other passwords a user types.
func TestBruteForceNewKeyPassword(t *testing.T) {
	f := newFixture(t, "embedded", behindProxy)
	alice := f.admUser("alice")
	f.admWant(t, alice, http.MethodPatch, admPath("/accounts", f.root.ID), `{"policies":{"require_password_for_new_keys":true}}`, http.StatusOK)
	for i := range bfThreshold {
		admProblem(t, f.admDo(t, alice, http.MethodPost, "/keys", admBody(map[string]any{"name": "k", "password": "wrong-" + strconv.Itoa(i)})),
			http.StatusForbidden, "password")
	}
	// Blocked: the right password is refused before it is compared.
	res := f.admDo(t, alice, http.MethodPost, "/keys", admBody(map[string]any{"name": "k", "password": testPassword}))
	admProblem(t, res, http.StatusTooManyRequests)
	if res.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	wantBlocked(t, f.tokenWithPassword("alice", testPassword), 1)
	f.clock.advance(time.Second)
	created := f.admWant(t, alice, http.MethodPost, "/keys", admBody(map[string]any{"name": "k", "password": testPassword}), http.StatusCreated)
	f.secrets = append(f.secrets, created["key"].(string), created["client_secret"].(string))
}
