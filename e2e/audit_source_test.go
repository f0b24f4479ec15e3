package e2e

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/storage"
)

// TestAuditSourceAddress: the audit trail records the address the
// brute-force protection counts, by the one trusted-proxy rule: behind a
// trusted proxy the client's forwarded address, from an untrusted peer the
// peer itself, whatever X-Forwarded-For it sends. Both surfaces that act
// for people: the management API and the console.
func TestAuditSourceAddress(t *testing.T) {
	tests := []struct {
		name    string
		options []func(*config.Config)
		want    string
	}{
		{"trusted proxy", []func(*config.Config){behindProxy}, ownerAddr},
		{"untrusted peer", nil, "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "embedded", tt.options...)

			t.Run("management API", func(t *testing.T) {
				created := f.admWant(t, f.admUser("alice"), http.MethodPost, "/accounts", `{"name":"via proxy"}`, http.StatusCreated,
					"X-Forwarded-For", ownerAddr)
				id := int64(created["id"].(float64))
				e := auditEventOf(t, f, "account.create", id)
				if e.RemoteAddr != tt.want {
					t.Errorf("account.create remote address = %q, want %q", e.RemoteAddr, tt.want)
				}
			})

			t.Run("console", func(t *testing.T) {
				b := f.browser(t)
				b.header = http.Header{"X-Forwarded-For": {ownerAddr}}
				b.signIn("alice")
				b.post("/console/users/new", "username", "frank", "password", testPassword, "role", "member").want(t, http.StatusSeeOther)
				frank, err := f.db.GetUserByUsername(t.Context(), "frank")
				if err != nil {
					t.Fatalf("GetUserByUsername(frank): %v", err)
				}
				e := auditEventOf(t, f, "user.create", frank.ID)
				if e.RemoteAddr != tt.want {
					t.Errorf("user.create remote address = %q, want %q", e.RemoteAddr, tt.want)
				}
			})
		})
	}
}

// auditEventOf returns the audit event of action on target id, anywhere in
// the fixture's trees.
func auditEventOf(t *testing.T, f *fixture, action string, id int64) storage.AuditEvent {
	t.Helper()
	for _, acc := range []storage.Account{f.root, f.other} {
		for _, e := range f.admEvents(t, acc) {
			if e.Action == action && e.TargetID == id {
				return e
			}
		}
	}
	t.Fatalf("no %s event on %s", action, strconv.FormatInt(id, 10))
	return storage.AuditEvent{}
}
