package e2e

import (
	"net/http"
	"testing"
)

// TestTokenExchangeNarrowsManagement: a token exchanged for the child
// account (RFC 8693 audience) manages the child's subtree at the
// management API and nothing above or beside it — for a management client's
// token and for a user's alike — and has no say over the user themself, who
// belongs to the root.
func TestTokenExchangeNarrowsManagement(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		_, sibling := f.treeBelowChild()
		mgr, whole := f.admManager(f.root)
		tok, _ := exchanged(t, f.exchange(mgr, string(whole), "audience", audienceOf(f.child)))
		alice := f.admUser("alice")
		aliceTok, _ := exchanged(t, f.exchange(f.dsp, string(alice), "audience", audienceOf(f.child)))
		f.secrets = append(f.secrets, tok, aliceTok)
		f.admWant(t, whole, http.MethodGet, admPath("/accounts", f.root.ID), "", http.StatusOK)
		f.admWant(t, alice, http.MethodGet, admPath("/users", f.alice.ID), "", http.StatusOK)
		for name, narrow := range map[string]admCaller{"client": admCaller(tok), "user": admCaller(aliceTok)} {
			t.Run(name, func(t *testing.T) {
				f.admWant(t, narrow, http.MethodGet, admPath("/accounts", f.child.ID), "", http.StatusOK)
				f.admWant(t, narrow, http.MethodGet, admPath("/users", f.bob.ID), "", http.StatusOK)
				for _, acc := range []int64{f.root.ID, sibling.ID} {
					f.admWant(t, narrow, http.MethodGet, admPath("/accounts", acc), "", http.StatusNotFound)
					f.admWant(t, narrow, http.MethodPatch, admPath("/accounts", acc), `{"name":"taken over"}`, http.StatusNotFound)
					admProblem(t, f.admDo(t, narrow, http.MethodPost, "/keys", admBody(map[string]any{"name": "above", "account_id": acc})), http.StatusUnprocessableEntity, "account_id")
				}
				f.admWant(t, narrow, http.MethodGet, admPath("/users", f.alice.ID), "", http.StatusNotFound)
				f.admWant(t, narrow, http.MethodGet, admPath("/clients", f.cc.ID), "", http.StatusNotFound)
				key := f.admWant(t, narrow, http.MethodPost, "/keys", admBody(map[string]any{"name": "below " + name, "account_id": f.child.ID}), http.StatusCreated)
				f.secrets = append(f.secrets, key["key"].(string), key["client_secret"].(string))
			})
		}

		// A member sees the credentials they own; narrowed to the child,
		// not those of the root.
		member := f.admCreateUser(t, alice, f.root, "mona", "member")
		monaTok := f.admUser(member.Username)
		own := f.admDefaultKey(t, member)
		f.admWant(t, monaTok, http.MethodGet, admPath("/keys", own), "", http.StatusOK)
		monaNarrow, _ := exchanged(t, f.exchange(f.dsp, string(monaTok), "audience", audienceOf(f.child)))
		f.secrets = append(f.secrets, monaNarrow)
		f.admWant(t, admCaller(monaNarrow), http.MethodGet, admPath("/keys", own), "", http.StatusNotFound)
	})
}
