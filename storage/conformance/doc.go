// Package conformance holds one test suite per storage contract. Every
// backend runs them from a test file of a few lines:
//
//	func TestClients(t *testing.T) {
//		conformance.RunClients(t, func(t *testing.T) conformance.ClientsStore {
//			return openStore(t)
//		})
//	}
//
// The suites call newStore once per subtest. It may return a fresh store or
// the same one every time: the suites only read rows they created and give
// every username a random suffix, so they pass on a shared, non-empty store.
// The one exception is DisableStale, which acts on every client: RunClients
// runs it last, and it disables the stale clients other tests left behind.
//
// The suites pin down what storage.go leaves to the backends:
//
//   - Create assigns the ID and Version 1, and sets CreatedAt and UpdatedAt;
//     an empty Kind is stored as storage.KindClient.
//   - Every Update* sets Version to the stored one plus one, whatever the
//     update function did to it, and moves UpdatedAt forward. TouchClient
//     and TouchClients are not updates: they leave Version alone.
//   - Times come back in UTC, equal to what was stored to the microsecond.
//   - Optional references (ParentID, OwnerID, CreatedBy) and optional times
//     (ExpiresAt, LastUsedAt, PreviousRetireAt) round-trip their zero value.
//   - Lists of strings come back in the order stored; an empty or nil list
//     comes back with length 0.
//   - A reference to a row that does not exist fails the create.
//   - A Page with Limit 0 lists everything (up to a backend's maximum); an
//     unknown account, parent or owner lists nothing. ClientFilter with
//     AccountID 0 does not narrow by account; ListChildren(0) lists roots.
//   - A second default key of one owner is storage.ErrAlreadyExists.
//   - DeleteUser keeps the clients the user created for others, with
//     CreatedBy cleared.
//   - DisableStale treats "unused since" strictly (used exactly at
//     unusedSince is not stale) and "expired" as ExpiresAt at or before now,
//     as Client.Usable does; it says DisabledExpired for a client past its
//     expiry (unused or not) and DisabledUnused for the others.
//   - DisabledReason round-trips with a disabled status; an active client
//     comes back without one, and an unknown reason fails the write.
//   - ListAudit lists in the order appended, newest first; AppendAudit
//     refuses an Outcome other than "success" or "failure".
//   - Inside Transactor.InTx, a call that fails (a taken username, an update
//     function's error) can be handled by fn, and the rest still commits.
package conformance

import (
	"crypto/rand"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// unknownID is an id no test creates.
const unknownID int64 = 1<<62 + 12345

// micro is how a time comes back from storage.
func micro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// uniqueName returns prefix with a random suffix, so that suites can share a
// store.
func uniqueName(prefix string) string {
	return prefix + "-" + strings.ToLower(rand.Text()[:12])
}

// diff compares two storage records field by field and describes every
// difference. Times compare with Equal and must come back in UTC; a nil and
// an empty slice are equal.
func diff[T any](got, want T) []string {
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	var out []string
	for i := range gv.NumField() {
		name := gv.Type().Field(i).Name
		g, w := gv.Field(i).Interface(), wv.Field(i).Interface()
		switch g := g.(type) {
		case time.Time:
			w := w.(time.Time)
			if !g.Equal(w) {
				out = append(out, fmt.Sprintf("%s: got %v, want %v", name, g, w))
			} else if g.Location() != time.UTC {
				out = append(out, fmt.Sprintf("%s: got location %v, want UTC", name, g.Location()))
			}
		case []string:
			w := w.([]string)
			if len(g) != len(w) || (len(g) > 0 && !reflect.DeepEqual(g, w)) {
				out = append(out, fmt.Sprintf("%s: got %q, want %q", name, g, w))
			}
		default:
			if !reflect.DeepEqual(g, w) {
				out = append(out, fmt.Sprintf("%s: got %#v, want %#v", name, g, w))
			}
		}
	}
	return out
}

// checkDiff reports the differences between got and want, if any.
func checkDiff[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if d := diff(got, want); len(d) > 0 {
		t.Errorf("%s differs:\n\t%s", what, strings.Join(d, "\n\t"))
	}
}

// checkStamp checks a time the store set between before and after.
func checkStamp(t *testing.T, what string, got, before, after time.Time) {
	t.Helper()
	if got.Before(micro(before)) || got.After(after) {
		t.Errorf("%s = %v, want between %v and %v", what, got, micro(before), after)
	}
	if got.Location() != time.UTC {
		t.Errorf("%s location = %v, want UTC", what, got.Location())
	}
	if !got.Equal(got.Truncate(time.Microsecond)) {
		t.Errorf("%s = %v, want microsecond precision", what, got)
	}
}

// TxStore is what RunTransactions needs: every relational contract, and
// transactions over them.
type TxStore interface {
	storage.Store
	storage.Transactor
}

// RunTransactions tests a storage.Transactor over the storage.Store it
// hands to fn.
func RunTransactions(t *testing.T, newStore func(t *testing.T) TxStore) {
	t.Run("Commit", func(t *testing.T) { testTxCommit(t, newStore(t)) })
	t.Run("Rollback", func(t *testing.T) { testTxRollback(t, newStore(t)) })
	t.Run("CarryOnAfterError", func(t *testing.T) { testTxCarryOn(t, newStore(t)) })
}

// testTxCommit writes through every contract in one transaction, reading its
// own writes, even from inside an update function.
func testTxCommit(t *testing.T, s TxStore) {
	ctx := t.Context()
	var (
		account storage.Account
		user    storage.User
		client  storage.Client
		event   storage.AuditEvent
	)
	err := s.InTx(ctx, func(tx storage.Store) error {
		var err error
		if account, err = tx.CreateAccount(ctx, storage.Account{Name: uniqueName("tx"), Status: storage.StatusActive}); err != nil {
			return err
		}
		if got, err := tx.GetAccount(ctx, account.ID); err != nil || got != account {
			t.Errorf("GetAccount inside the transaction = %+v, %v; want %+v", got, err, account)
		}
		f := clientFixture{account: account}
		if f.owner, err = tx.CreateUser(ctx, storage.User{AccountID: account.ID, Username: uniqueName("tx"), PasswordHash: "h", Role: storage.RoleAdmin, Status: storage.StatusActive}); err != nil {
			return err
		}
		user, f.creator = f.owner, f.owner
		if client, err = tx.CreateClient(ctx, f.newKey(user.ID, true)); err != nil {
			return err
		}
		client, err = tx.UpdateClient(ctx, client.ID, func(c *storage.Client) error {
			// The update may read through tx: it runs in the transaction.
			owner, err := tx.GetUser(ctx, c.OwnerID)
			if err != nil {
				return err
			}
			c.Name = "key of " + owner.Username
			return nil
		})
		if err != nil {
			return err
		}
		event, err = tx.AppendAudit(ctx, storage.AuditEvent{AccountID: account.ID, Action: "key.create", TargetType: "key", TargetID: client.ID, Outcome: "success"})
		return err
	})
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}

	if got, err := s.GetAccount(ctx, account.ID); err != nil || got != account {
		t.Errorf("GetAccount after commit = %+v, %v; want %+v", got, err, account)
	}
	if got, err := s.GetUser(ctx, user.ID); err != nil || got != user {
		t.Errorf("GetUser after commit = %+v, %v; want %+v", got, err, user)
	}
	got := getClient(t, s, client.ID)
	checkDiff(t, "client after commit", got, client)
	if got.Name != "key of "+user.Username || got.Version != 2 {
		t.Errorf("client after commit: name %q, version %d; want %q, 2", got.Name, got.Version, "key of "+user.Username)
	}
	events, err := s.ListAudit(ctx, storage.AuditFilter{AccountID: account.ID}, storage.Page{})
	if err != nil {
		t.Fatalf("ListAudit: %v", err)
	}
	if len(events) != 1 || events[0] != event {
		t.Errorf("ListAudit after commit = %+v, want [%+v]", events, event)
	}
}

// testTxRollback fails fn after several writes: none of them lands, the
// update of an existing client included, and fn's error comes back as is.
func testTxRollback(t *testing.T, s TxStore) {
	ctx := t.Context()
	f := newClientFixture(t, s)
	existing := createClient(t, s, f)
	errBoom := errors.New("boom")
	var (
		account  storage.Account
		username = uniqueName("rolled-back")
	)
	err := s.InTx(ctx, func(tx storage.Store) error {
		var err error
		if account, err = tx.CreateAccount(ctx, storage.Account{Name: "rolled back", Status: storage.StatusActive}); err != nil {
			return err
		}
		if _, err := tx.CreateUser(ctx, storage.User{AccountID: account.ID, Username: username, PasswordHash: "h", Role: storage.RoleMember, Status: storage.StatusActive}); err != nil {
			return err
		}
		if _, err := tx.UpdateClient(ctx, existing.ID, func(c *storage.Client) error { c.Name = "rolled back"; c.Generation++; return nil }); err != nil {
			return err
		}
		if _, err := tx.UpdateAccount(ctx, f.account.ID, func(a *storage.Account) error { a.Status = storage.StatusDisabled; return nil }); err != nil {
			return err
		}
		if err := tx.TouchClients(ctx, map[int64]time.Time{existing.ID: time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
			return err
		}
		if _, err := tx.AppendAudit(ctx, storage.AuditEvent{AccountID: f.account.ID, Action: "client.update", Outcome: "success"}); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) || err.Error() != errBoom.Error() {
		t.Fatalf("InTx with a failing fn: got error %v, want %v unchanged", err, errBoom)
	}

	if account.ID == 0 {
		t.Fatal("fn did not run")
	}
	if _, err := s.GetAccount(ctx, account.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetAccount(%d) created in a rolled back transaction: got error %v, want %v", account.ID, err, storage.ErrNotFound)
	}
	if _, err := s.GetUserByUsername(ctx, username); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetUserByUsername(%q) created in a rolled back transaction: got error %v, want %v", username, err, storage.ErrNotFound)
	}
	checkDiff(t, "client updated in a rolled back transaction", getClient(t, s, existing.ID), existing)
	if got, err := s.GetAccount(ctx, f.account.ID); err != nil || got != f.account {
		t.Errorf("account updated in a rolled back transaction = %+v, %v; want %+v", got, err, f.account)
	}
	if events, err := s.ListAudit(ctx, storage.AuditFilter{AccountID: f.account.ID}, storage.Page{}); err != nil || len(events) != 0 {
		t.Errorf("ListAudit after rollback = %+v, %v; want none", events, err)
	}
}

// testTxCarryOn handles errors of calls inside fn and commits the rest: a
// failed call does not spoil the transaction.
func testTxCarryOn(t *testing.T, s TxStore) {
	ctx := t.Context()
	f := newClientFixture(t, s)
	existing := createClient(t, s, f)
	errRefused := errors.New("refused")
	newName := uniqueName("carried-on")

	err := s.InTx(ctx, func(tx storage.Store) error {
		_, err := tx.CreateUser(ctx, storage.User{AccountID: f.account.ID, Username: f.owner.Username, PasswordHash: "h", Role: storage.RoleMember, Status: storage.StatusActive})
		if !errors.Is(err, storage.ErrAlreadyExists) {
			t.Errorf("CreateUser(taken username) inside InTx: got error %v, want %v", err, storage.ErrAlreadyExists)
		}
		_, err = tx.UpdateClient(ctx, existing.ID, func(c *storage.Client) error { c.Name = "refused"; return errRefused })
		if !errors.Is(err, errRefused) {
			t.Errorf("UpdateClient with a failing update inside InTx: got error %v, want %v", err, errRefused)
		}
		if _, err := tx.GetClient(ctx, unknownID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetClient(unknown) inside InTx: got error %v, want %v", err, storage.ErrNotFound)
		}
		if _, err := tx.UpdateClient(ctx, existing.ID, func(c *storage.Client) error { c.Name = "carried on"; return nil }); err != nil {
			return err
		}
		_, err = tx.CreateUser(ctx, storage.User{AccountID: f.account.ID, Username: newName, PasswordHash: "h", Role: storage.RoleMember, Status: storage.StatusActive})
		return err
	})
	if err != nil {
		t.Fatalf("InTx after handled errors: %v", err)
	}
	if got := getClient(t, s, existing.ID); got.Name != "carried on" || got.Version != existing.Version+1 {
		t.Errorf("client after commit: name %q, version %d; want %q, %d", got.Name, got.Version, "carried on", existing.Version+1)
	}
	if _, err := s.GetUserByUsername(ctx, newName); err != nil {
		t.Errorf("GetUserByUsername(%q) after commit: %v", newName, err)
	}
}
