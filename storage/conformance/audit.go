package conformance

import (
	"slices"
	"testing"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// AuditStore is what RunAudit needs: events belong to accounts, and outlive
// the users they describe.
type AuditStore interface {
	storage.Accounts
	storage.Users
	storage.Audit
}

// RunAudit tests a storage.Audit.
func RunAudit(t *testing.T, newStore func(t *testing.T) AuditStore) {
	t.Run("AppendList", func(t *testing.T) { testAppendAudit(t, newStore(t)) })
	t.Run("Pages", func(t *testing.T) { testAuditPages(t, newStore(t)) })
	t.Run("Filter", func(t *testing.T) { testAuditFilter(t, newStore(t)) })
	t.Run("Invalid", func(t *testing.T) { testAuditInvalid(t, newStore(t)) })
	t.Run("OutlivesTarget", func(t *testing.T) { testAuditOutlivesTarget(t, newStore(t)) })
}

// auditEvent returns an event of account accountID with every field set
// but ID and Time.
func auditEvent(accountID int64, action string) storage.AuditEvent {
	return storage.AuditEvent{
		AccountID:     accountID,
		ActorUserID:   41,
		ActorClientID: 42,
		Action:        action,
		TargetType:    "key",
		TargetID:      43,
		RemoteAddr:    "2001:db8::1",
		Outcome:       "success",
		Detail:        "scopes: read write; ünïcødé",
	}
}

func appendAudit(t *testing.T, s storage.Audit, e storage.AuditEvent) storage.AuditEvent {
	t.Helper()
	got, err := s.AppendAudit(t.Context(), e)
	if err != nil {
		t.Fatalf("AppendAudit(%+v): %v", e, err)
	}
	return got
}

func eventID(e storage.AuditEvent) int64 { return e.ID }

// listAudit lists every event f selects, newest first.
func listAudit(t *testing.T, s storage.Audit, f storage.AuditFilter) []storage.AuditEvent {
	t.Helper()
	got, err := s.ListAudit(t.Context(), f, storage.Page{})
	if err != nil {
		t.Fatalf("ListAudit(%+v): %v", f, err)
	}
	return got
}

func testAppendAudit(t *testing.T, s AuditStore) {
	account := createAccount(t, s, 0)

	stamped := auditEvent(account.ID, "client.create")
	stamped.ID = 999 // assigned by the store
	before := time.Now()
	first := appendAudit(t, s, stamped)
	after := time.Now()
	if first.ID == 0 || first.ID == 999 {
		t.Errorf("AppendAudit: got ID %d, want one assigned by the store", first.ID)
	}
	checkStamp(t, "Time", first.Time, before, after)
	want := stamped
	want.ID, want.Time = first.ID, first.Time
	checkDiff(t, "appended event", first, want)

	timed := auditEvent(account.ID, "key.auto_disable")
	timed.Time = time.Date(2029, 3, 4, 5, 6, 7, 891234567, time.FixedZone("CET", 3600))
	timed.ActorUserID, timed.ActorClientID, timed.TargetID = 0, 0, 0
	timed.Outcome, timed.RemoteAddr, timed.Detail = "failure", "", ""
	second := appendAudit(t, s, timed)
	want2 := timed
	want2.ID, want2.Time = second.ID, micro(timed.Time)
	checkDiff(t, "appended event with a time", second, want2)

	got := listAudit(t, s, storage.AuditFilter{AccountID: account.ID})
	if len(got) != 2 {
		t.Fatalf("ListAudit returned %d events, want 2", len(got))
	}
	// Newest first: in the order appended, whatever their Time.
	checkDiff(t, "newest event", got[0], want2)
	checkDiff(t, "oldest event", got[1], want)
}

func testAuditPages(t *testing.T, s AuditStore) {
	account := createAccount(t, s, 0)
	var want []int64
	for range 6 {
		want = append(want, appendAudit(t, s, auditEvent(account.ID, "user.update")).ID)
	}
	slices.Reverse(want)
	checkPages(t, "ListAudit", want, eventID, func(p storage.Page) ([]storage.AuditEvent, error) {
		return s.ListAudit(t.Context(), storage.AuditFilter{AccountID: account.ID}, p)
	})
	// After continues below an id, whether or not it is one of the list.
	got, err := s.ListAudit(t.Context(), storage.AuditFilter{AccountID: account.ID}, storage.Page{After: want[0] + 1000, Limit: 1})
	if err != nil {
		t.Fatalf("ListAudit: %v", err)
	}
	if len(got) != 1 || got[0].ID != want[0] {
		t.Errorf("ListAudit(after an id above all) = %+v, want the newest event %d", got, want[0])
	}
}

func testAuditFilter(t *testing.T, s AuditStore) {
	// root ─ a ─ b
	//    └─ sibling
	root := createAccount(t, s, 0)
	a := createAccount(t, s, root.ID)
	b := createAccount(t, s, a.ID)
	sibling := createAccount(t, s, root.ID)

	events := map[int64][]int64{} // account id: event ids
	for range 2 {
		for _, acc := range []storage.Account{b, sibling, a, root} {
			events[acc.ID] = append(events[acc.ID], appendAudit(t, s, auditEvent(acc.ID, "account.update")).ID)
		}
	}
	ids := func(accounts ...storage.Account) []int64 {
		var out []int64
		for _, acc := range accounts {
			out = append(out, events[acc.ID]...)
		}
		slices.Sort(out)
		slices.Reverse(out)
		return out
	}
	tests := []struct {
		name string
		f    storage.AuditFilter
		want []int64
	}{
		{"account", storage.AuditFilter{AccountID: a.ID}, ids(a)},
		{"subtree", storage.AuditFilter{AccountID: a.ID, Subtree: true}, ids(a, b)},
		{"leaf subtree", storage.AuditFilter{AccountID: b.ID, Subtree: true}, ids(b)},
		{"sibling subtree", storage.AuditFilter{AccountID: sibling.ID, Subtree: true}, ids(sibling)},
		{"root alone", storage.AuditFilter{AccountID: root.ID}, ids(root)},
		{"root subtree", storage.AuditFilter{AccountID: root.ID, Subtree: true}, ids(root, a, b, sibling)},
		{"unknown account", storage.AuditFilter{AccountID: unknownID, Subtree: true}, nil},
	}
	for _, tt := range tests {
		checkPages(t, tt.name, tt.want, eventID, func(p storage.Page) ([]storage.AuditEvent, error) {
			return s.ListAudit(t.Context(), tt.f, p)
		})
	}
}

func testAuditInvalid(t *testing.T, s AuditStore) {
	account := createAccount(t, s, 0)
	for _, outcome := range []string{"", "ok", "SUCCESS"} {
		e := auditEvent(account.ID, "client.create")
		e.Outcome = outcome
		if got, err := s.AppendAudit(t.Context(), e); err == nil {
			t.Errorf("AppendAudit(outcome %q) = %+v, want an error", outcome, got)
		}
	}
	if got := listAudit(t, s, storage.AuditFilter{AccountID: account.ID}); len(got) != 0 {
		t.Errorf("ListAudit after refused appends = %+v, want none", got)
	}
}

// testAuditOutlivesTarget deletes the user an event is about: the trail
// keeps it.
func testAuditOutlivesTarget(t *testing.T, s AuditStore) {
	account := createAccount(t, s, 0)
	u := createUser(t, s, account.ID)
	e := auditEvent(account.ID, "user.delete")
	e.ActorUserID, e.TargetType, e.TargetID = u.ID, "user", u.ID
	appended := appendAudit(t, s, e)
	if err := s.DeleteUser(t.Context(), u.ID); err != nil {
		t.Fatalf("DeleteUser(%d): %v", u.ID, err)
	}
	got := listAudit(t, s, storage.AuditFilter{AccountID: account.ID})
	if len(got) != 1 {
		t.Fatalf("ListAudit after the target was deleted = %+v, want the event", got)
	}
	checkDiff(t, "event about a deleted user", got[0], appended)
}
