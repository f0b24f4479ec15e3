package conformance

import (
	"errors"
	"testing"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// RunAccounts tests a storage.Accounts.
func RunAccounts(t *testing.T, newStore func(t *testing.T) storage.Accounts) {
	t.Run("CreateGet", func(t *testing.T) { testCreateGetAccount(t, newStore(t)) })
	t.Run("GetUnknown", func(t *testing.T) { testGetUnknownAccount(t, newStore(t)) })
	t.Run("CreateUnknownParent", func(t *testing.T) { testCreateAccountUnknownParent(t, newStore(t)) })
	t.Run("InSubtree", func(t *testing.T) { testAccountInSubtree(t, newStore(t)) })
}

// createAccount creates an active account under parentID (0 for a root).
func createAccount(t *testing.T, s storage.Accounts, parentID int64) storage.Account {
	t.Helper()
	a, err := s.CreateAccount(t.Context(), storage.Account{
		ParentID: parentID,
		Name:     uniqueName("account"),
		Status:   storage.StatusActive,
	})
	if err != nil {
		t.Fatalf("CreateAccount(parent %d): %v", parentID, err)
	}
	return a
}

func testCreateGetAccount(t *testing.T, s storage.Accounts) {
	parent := createAccount(t, s, 0)
	tests := []struct {
		name string
		in   storage.Account
	}{
		{"root", storage.Account{Name: "Acme", Status: storage.StatusActive}},
		{"disabled root", storage.Account{Name: "Gone", Status: storage.StatusDisabled}},
		{"child", storage.Account{ParentID: parent.ID, Name: "Acme EU", Status: storage.StatusActive}},
		{"unicode name", storage.Account{Name: "Ünïcødé ✓ 'quoted' \"too\"", Status: storage.StatusActive}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now()
			created, err := s.CreateAccount(t.Context(), tt.in)
			after := time.Now()
			if err != nil {
				t.Fatalf("CreateAccount(%+v): %v", tt.in, err)
			}
			if created.ID == 0 {
				t.Errorf("CreateAccount: got ID 0, want an assigned id")
			}
			checkStamp(t, "CreatedAt", created.CreatedAt, before, after)
			checkStamp(t, "UpdatedAt", created.UpdatedAt, before, after)

			want := tt.in
			want.ID, want.CreatedAt, want.UpdatedAt = created.ID, created.CreatedAt, created.UpdatedAt
			checkDiff(t, "created account", created, want)

			got, err := s.GetAccount(t.Context(), created.ID)
			if err != nil {
				t.Fatalf("GetAccount(%d): %v", created.ID, err)
			}
			checkDiff(t, "GetAccount", got, want)
		})
	}
}

func testGetUnknownAccount(t *testing.T, s storage.Accounts) {
	for _, id := range []int64{0, -1, unknownID} {
		_, err := s.GetAccount(t.Context(), id)
		if !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetAccount(%d): got error %v, want %v", id, err, storage.ErrNotFound)
		}
	}
}

func testCreateAccountUnknownParent(t *testing.T, s storage.Accounts) {
	a, err := s.CreateAccount(t.Context(), storage.Account{
		ParentID: unknownID,
		Name:     "orphan",
		Status:   storage.StatusActive,
	})
	if err == nil {
		t.Errorf("CreateAccount(parent %d): got %+v, want an error", unknownID, a)
	}
}

func testAccountInSubtree(t *testing.T, s storage.Accounts) {
	// a1 ─ a2 ─ a3 ─ a4 ─ a5
	//  └─ sibling
	// other (another root)
	a1 := createAccount(t, s, 0)
	a2 := createAccount(t, s, a1.ID)
	a3 := createAccount(t, s, a2.ID)
	a4 := createAccount(t, s, a3.ID)
	a5 := createAccount(t, s, a4.ID)
	sibling := createAccount(t, s, a1.ID)
	other := createAccount(t, s, 0)

	tests := []struct {
		name     string
		root, id int64
		want     bool
	}{
		{"self", a2.ID, a2.ID, true},
		{"root self", a1.ID, a1.ID, true},
		{"child", a2.ID, a3.ID, true},
		{"grandchild", a2.ID, a4.ID, true},
		{"five deep", a1.ID, a5.ID, true},
		{"root over sibling", a1.ID, sibling.ID, true},
		{"parent", a3.ID, a2.ID, false},
		{"root of chain from leaf", a5.ID, a1.ID, false},
		{"sibling", a2.ID, sibling.ID, false},
		{"sibling's view", sibling.ID, a3.ID, false},
		{"other tree", other.ID, a2.ID, false},
		{"into other tree", a1.ID, other.ID, false},
		{"unknown id", a1.ID, unknownID, false},
		{"unknown root", unknownID, a1.ID, false},
		{"unknown both", unknownID, unknownID, false},
		{"zero id", a1.ID, 0, false},
	}
	for _, tt := range tests {
		got, err := s.AccountInSubtree(t.Context(), tt.root, tt.id)
		if err != nil {
			t.Errorf("%s: AccountInSubtree(%d, %d): %v", tt.name, tt.root, tt.id, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%s: AccountInSubtree(%d, %d) = %t, want %t", tt.name, tt.root, tt.id, got, tt.want)
		}
	}
}
