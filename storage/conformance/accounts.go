package conformance

import (
	"errors"
	"slices"
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
	t.Run("Update", func(t *testing.T) { testUpdateAccount(t, newStore(t)) })
	t.Run("ListChildren", func(t *testing.T) { testListChildren(t, newStore(t)) })
	t.Run("Active", func(t *testing.T) { testAccountActive(t, newStore(t)) })
	t.Run("Standing", func(t *testing.T) { testAccountStanding(t, newStore(t)) })
	t.Run("Policies", func(t *testing.T) { testAccountPolicies(t, newStore(t)) })
	t.Run("Budgets", func(t *testing.T) { testAccountBudgets(t, newStore(t)) })
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
		{"version ignored", storage.Account{Name: "v", Status: storage.StatusActive, Version: 42}},
		{"policies", storage.Account{Name: "strict", Status: storage.StatusActive,
			Policies: storage.AccountPolicies{RequirePasswordForNewKeys: ptr(false), KeysManagedBy: storage.KeysManagedByAdmins,
				LeakedKeyAction: storage.LeakedKeyNotify}}},
		{"budget", storage.Account{Name: "budgeted", Status: storage.StatusActive, Budget: &storage.Budget{
			RateLimits: map[string]storage.RateLimit{"default": {Rate: 100, Burst: 200}},
			Quota:      &storage.Quota{Limit: 1_000_000, Period: storage.QuotaMonth}}}},
		{"budget quota only", storage.Account{Name: "quota only", Status: storage.StatusActive, Budget: &storage.Budget{
			Quota: &storage.Quota{Limit: storage.MaxQuotaLimit, Period: storage.QuotaDay}}}},
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
			want.Version = 1
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

func testUpdateAccount(t *testing.T, s storage.Accounts) {
	ctx := t.Context()
	parent := createAccount(t, s, 0)
	otherParent := createAccount(t, s, 0)
	a := createAccount(t, s, parent.ID)

	got, err := s.UpdateAccount(ctx, a.ID, func(x *storage.Account) error {
		checkDiff(t, "account passed to update", *x, a)
		x.Name = "renamed"
		x.Status = storage.StatusDisabled
		x.ID += 1000                                              // immutable
		x.ParentID = otherParent.ID                               // immutable
		x.CreatedAt = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC) // immutable
		x.Version = 99                                            // set by the store
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateAccount(%d): %v", a.ID, err)
	}
	if !got.UpdatedAt.After(a.UpdatedAt) {
		t.Errorf("UpdatedAt = %v, want after %v", got.UpdatedAt, a.UpdatedAt)
	}
	want := a
	want.Name, want.Status, want.Version, want.UpdatedAt = "renamed", storage.StatusDisabled, a.Version+1, got.UpdatedAt
	checkDiff(t, "UpdateAccount result", got, want)
	stored, err := s.GetAccount(ctx, a.ID)
	if err != nil {
		t.Fatalf("GetAccount(%d): %v", a.ID, err)
	}
	checkDiff(t, "GetAccount after UpdateAccount", stored, want)

	// If-Match: the caller compares the version it read and refuses.
	_, err = s.UpdateAccount(ctx, a.ID, func(x *storage.Account) error {
		if x.Version != a.Version {
			return storage.ErrConflict
		}
		x.Name = "must not be stored"
		return nil
	})
	if !errors.Is(err, storage.ErrConflict) || err.Error() != storage.ErrConflict.Error() {
		t.Errorf("UpdateAccount with a stale version: got error %v, want %v unchanged", err, storage.ErrConflict)
	}
	stored, _ = s.GetAccount(ctx, a.ID)
	checkDiff(t, "GetAccount after a refused update", stored, want)

	called := false
	_, err = s.UpdateAccount(ctx, unknownID, func(*storage.Account) error { called = true; return nil })
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("UpdateAccount(%d): got error %v, want %v", unknownID, err, storage.ErrNotFound)
	}
	if called {
		t.Errorf("UpdateAccount(%d) called update for an unknown account", unknownID)
	}
}

// checkPages reads a list two records at a time, each page continuing after
// the last id of the one before, until an empty page. It checks that every
// page but the last is full and that the pages together hold want, in order.
func checkPages[T any](t *testing.T, what string, want []int64, id func(T) int64, list func(storage.Page) ([]T, error)) {
	t.Helper()
	const limit = 2
	var (
		got   []int64
		after int64
	)
	for pages := 0; ; pages++ {
		if pages > len(want)/limit+1 {
			t.Fatalf("%s: more than %d pages, got %v so far, want %v", what, pages, got, want)
		}
		page, err := list(storage.Page{After: after, Limit: limit})
		if err != nil {
			t.Fatalf("%s: page after %d: %v", what, after, err)
		}
		if len(page) == 0 {
			break
		}
		if wantLen := min(limit, len(want)-len(got)); len(page) != wantLen {
			ids := make([]int64, len(page))
			for i, x := range page {
				ids[i] = id(x)
			}
			t.Errorf("%s: page %d after %d holds %v, want %d records", what, pages+1, after, ids, wantLen)
		}
		for _, x := range page {
			got = append(got, id(x))
		}
		after = id(page[len(page)-1])
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s: pages hold %v, want %v", what, got, want)
	}
}

func accountID(a storage.Account) int64 { return a.ID }

func testListChildren(t *testing.T, s storage.Accounts) {
	ctx := t.Context()
	parent := createAccount(t, s, 0)
	sibling := createAccount(t, s, 0)
	var want []int64
	for range 6 {
		child := createAccount(t, s, parent.ID)
		want = append(want, child.ID)
		createAccount(t, s, child.ID) // a grandchild, not listed
	}
	createAccount(t, s, sibling.ID) // another tree, not listed

	checkPages(t, "ListChildren", want, accountID, func(p storage.Page) ([]storage.Account, error) {
		return s.ListChildren(ctx, parent.ID, p)
	})

	all, err := s.ListChildren(ctx, parent.ID, storage.Page{})
	if err != nil {
		t.Fatalf("ListChildren(%d, zero page): %v", parent.ID, err)
	}
	if len(all) != len(want) {
		t.Errorf("ListChildren(%d, zero page) returned %d accounts, want all %d", parent.ID, len(all), len(want))
	}
	for _, a := range all {
		got, err := s.GetAccount(ctx, a.ID)
		if err != nil {
			t.Fatalf("GetAccount(%d): %v", a.ID, err)
		}
		checkDiff(t, "listed account", a, got)
	}

	// Parent 0 lists the roots.
	roots, err := s.ListChildren(ctx, 0, storage.Page{After: parent.ID - 1, Limit: 1})
	if err != nil {
		t.Fatalf("ListChildren(0): %v", err)
	}
	if len(roots) != 1 || roots[0].ID != parent.ID {
		t.Errorf("ListChildren(0, after %d) = %+v, want root %d", parent.ID-1, roots, parent.ID)
	}

	for _, id := range []int64{want[0], unknownID} {
		got, err := s.ListChildren(ctx, id, storage.Page{Limit: 10})
		if err != nil {
			t.Fatalf("ListChildren(%d): %v", id, err)
		}
		if id == unknownID && len(got) != 0 {
			t.Errorf("ListChildren(unknown) = %+v, want none", got)
		}
		if id != unknownID && len(got) != 1 {
			t.Errorf("ListChildren(leaf parent %d) = %+v, want its one child", id, got)
		}
	}
}

func testAccountActive(t *testing.T, s storage.Accounts) {
	ctx := t.Context()
	// root ─ mid ─ leaf
	//    └─ sibling
	root := createAccount(t, s, 0)
	mid := createAccount(t, s, root.ID)
	leaf := createAccount(t, s, mid.ID)
	sibling := createAccount(t, s, root.ID)

	setStatus := func(a storage.Account, st storage.Status) {
		t.Helper()
		if _, err := s.UpdateAccount(ctx, a.ID, func(x *storage.Account) error { x.Status = st; return nil }); err != nil {
			t.Fatalf("UpdateAccount(%d): %v", a.ID, err)
		}
	}
	check := func(step string, want map[int64]bool) {
		t.Helper()
		for id, w := range want {
			got, err := s.AccountActive(ctx, id)
			if err != nil {
				t.Errorf("%s: AccountActive(%d): %v", step, id, err)
				continue
			}
			if got != w {
				t.Errorf("%s: AccountActive(%d) = %t, want %t", step, id, got, w)
			}
		}
	}

	check("all active", map[int64]bool{root.ID: true, mid.ID: true, leaf.ID: true, sibling.ID: true})
	setStatus(root, storage.StatusDisabled)
	check("root disabled", map[int64]bool{root.ID: false, mid.ID: false, leaf.ID: false, sibling.ID: false})
	setStatus(root, storage.StatusActive)
	setStatus(mid, storage.StatusDisabled)
	check("mid disabled", map[int64]bool{root.ID: true, mid.ID: false, leaf.ID: false, sibling.ID: true})
	setStatus(mid, storage.StatusActive)
	setStatus(leaf, storage.StatusDisabled)
	check("leaf disabled", map[int64]bool{root.ID: true, mid.ID: true, leaf.ID: false, sibling.ID: true})

	for _, id := range []int64{0, unknownID} {
		if got, err := s.AccountActive(ctx, id); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("AccountActive(%d) = %t, error %v, want %v", id, got, err, storage.ErrNotFound)
		}
	}
}

// testAccountStanding: the standing of an account is the status of its
// whole chain to the root and the latest token cut-off on it, and the
// cut-off is stored as set (whole seconds, as SetStatus sets it).
func testAccountStanding(t *testing.T, s storage.Accounts) {
	ctx := t.Context()
	// root ─ mid ─ leaf
	//    └─ sibling
	root := createAccount(t, s, 0)
	mid := createAccount(t, s, root.ID)
	leaf := createAccount(t, s, mid.ID)
	sibling := createAccount(t, s, root.ID)
	t0 := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)

	setStatus := func(a storage.Account, st storage.Status, now time.Time) {
		t.Helper()
		got, err := s.UpdateAccount(ctx, a.ID, func(x *storage.Account) error { x.SetStatus(st, now); return nil })
		if err != nil {
			t.Fatalf("UpdateAccount(%d): %v", a.ID, err)
		}
		if again, err := s.GetAccount(ctx, a.ID); err != nil || !again.TokensValidAfter.Equal(got.TokensValidAfter) {
			t.Errorf("GetAccount(%d).TokensValidAfter = %v (%v), want %v as UpdateAccount returned", a.ID, again.TokensValidAfter, err, got.TokensValidAfter)
		}
	}
	check := func(step string, want map[int64]storage.Standing) {
		t.Helper()
		for id, w := range want {
			got, err := s.AccountStanding(ctx, id)
			if err != nil {
				t.Errorf("%s: AccountStanding(%d): %v", step, id, err)
				continue
			}
			if got.Active != w.Active || !got.TokensValidAfter.Equal(w.TokensValidAfter) {
				t.Errorf("%s: AccountStanding(%d) = %+v, want %+v", step, id, got, w)
			}
		}
	}
	active := storage.Standing{Active: true}
	check("all active", map[int64]storage.Standing{root.ID: active, mid.ID: active, leaf.ID: active, sibling.ID: active})

	setStatus(mid, storage.StatusDisabled, t0)
	off := storage.Standing{TokensValidAfter: t0}
	check("mid disabled", map[int64]storage.Standing{root.ID: active, mid.ID: off, leaf.ID: off, sibling.ID: active})

	setStatus(mid, storage.StatusActive, t0.Add(time.Hour+500*time.Millisecond))
	on := storage.Standing{Active: true, TokensValidAfter: t0.Add(time.Hour)}
	check("mid enabled again: the cut-off moved, whole seconds", map[int64]storage.Standing{root.ID: active, mid.ID: on, leaf.ID: on, sibling.ID: active})

	// The root's later cut-off wins below it; the leaf's own earlier one
	// does not hide it.
	setStatus(leaf, storage.StatusDisabled, t0.Add(2*time.Hour))
	setStatus(leaf, storage.StatusActive, t0.Add(2*time.Hour))
	setStatus(root, storage.StatusDisabled, t0.Add(3*time.Hour))
	rootOff := storage.Standing{TokensValidAfter: t0.Add(3 * time.Hour)}
	check("root disabled", map[int64]storage.Standing{root.ID: rootOff, mid.ID: rootOff, leaf.ID: rootOff, sibling.ID: rootOff})

	for _, id := range []int64{0, unknownID} {
		if got, err := s.AccountStanding(ctx, id); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("AccountStanding(%d) = %+v, error %v, want %v", id, got, err, storage.ErrNotFound)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// testAccountPolicies checks that policies are stored, cleared and
// resolved along the way to the root, the nearest setting winning, and
// that a change of an ancestor shows at once in a descendant's answer (a
// cache must drop it).
func testAccountPolicies(t *testing.T, s storage.Accounts) {
	ctx := t.Context()
	// root ─ mid ─ leaf
	//    └─ sibling
	root := createAccount(t, s, 0)
	mid := createAccount(t, s, root.ID)
	leaf := createAccount(t, s, mid.ID)
	sibling := createAccount(t, s, root.ID)
	set := func(a storage.Account, p storage.AccountPolicies) {
		t.Helper()
		got, err := s.UpdateAccount(ctx, a.ID, func(x *storage.Account) error { x.Policies = p; return nil })
		if err != nil {
			t.Fatalf("UpdateAccount(%d): %v", a.ID, err)
		}
		checkDiff(t, "UpdateAccount policies", got.Policies, p)
		again, err := s.GetAccount(ctx, a.ID)
		if err != nil {
			t.Fatalf("GetAccount(%d): %v", a.ID, err)
		}
		checkDiff(t, "GetAccount policies", again.Policies, p)
	}
	strict := storage.EffectivePolicies{RequirePasswordForNewKeys: true, KeysManagedBy: storage.KeysManagedByAdmins, LeakedKeyAction: storage.LeakedKeyDisable}
	tests := []struct {
		step string
		acc  storage.Account
		set  storage.AccountPolicies
		want map[int64]storage.EffectivePolicies
	}{
		{"nothing set: defaults", root, storage.AccountPolicies{}, map[int64]storage.EffectivePolicies{
			root.ID: storage.DefaultPolicies, mid.ID: storage.DefaultPolicies, leaf.ID: storage.DefaultPolicies}},
		{"root strict: inherited", root, storage.AccountPolicies{RequirePasswordForNewKeys: ptr(true), KeysManagedBy: storage.KeysManagedByAdmins},
			map[int64]storage.EffectivePolicies{root.ID: strict, mid.ID: strict, leaf.ID: strict, sibling.ID: strict}},
		{"mid overrides one field", mid, storage.AccountPolicies{RequirePasswordForNewKeys: ptr(false)},
			map[int64]storage.EffectivePolicies{
				root.ID: strict, sibling.ID: strict,
				mid.ID:  {RequirePasswordForNewKeys: false, KeysManagedBy: storage.KeysManagedByAdmins, LeakedKeyAction: storage.LeakedKeyDisable},
				leaf.ID: {RequirePasswordForNewKeys: false, KeysManagedBy: storage.KeysManagedByAdmins, LeakedKeyAction: storage.LeakedKeyDisable}}},
		{"leaf overrides the other", leaf, storage.AccountPolicies{KeysManagedBy: storage.KeysManagedByAnyone},
			map[int64]storage.EffectivePolicies{
				mid.ID:  {RequirePasswordForNewKeys: false, KeysManagedBy: storage.KeysManagedByAdmins, LeakedKeyAction: storage.LeakedKeyDisable},
				leaf.ID: {RequirePasswordForNewKeys: false, KeysManagedBy: storage.KeysManagedByAnyone, LeakedKeyAction: storage.LeakedKeyDisable}}},
		{"mid cleared: leaf follows root again", mid, storage.AccountPolicies{},
			map[int64]storage.EffectivePolicies{
				mid.ID:  strict,
				leaf.ID: {RequirePasswordForNewKeys: true, KeysManagedBy: storage.KeysManagedByAnyone, LeakedKeyAction: storage.LeakedKeyDisable}}},
		{"leaf only notifies of leaks", leaf, storage.AccountPolicies{KeysManagedBy: storage.KeysManagedByAnyone, LeakedKeyAction: storage.LeakedKeyNotify},
			map[int64]storage.EffectivePolicies{
				mid.ID:  strict,
				leaf.ID: {RequirePasswordForNewKeys: true, KeysManagedBy: storage.KeysManagedByAnyone, LeakedKeyAction: storage.LeakedKeyNotify}}},
		{"root relaxed: descendants follow", root, storage.AccountPolicies{KeysManagedBy: storage.KeysManagedByAnyone},
			map[int64]storage.EffectivePolicies{
				root.ID: storage.DefaultPolicies, mid.ID: storage.DefaultPolicies, sibling.ID: storage.DefaultPolicies,
				leaf.ID: {KeysManagedBy: storage.KeysManagedByAnyone, LeakedKeyAction: storage.LeakedKeyNotify}}},
	}
	for _, tt := range tests {
		set(tt.acc, tt.set)
		for id, want := range tt.want {
			got, err := s.EffectivePolicies(ctx, id)
			if err != nil {
				t.Errorf("%s: EffectivePolicies(%d): %v", tt.step, id, err)
				continue
			}
			if got != want {
				t.Errorf("%s: EffectivePolicies(%d) = %+v, want %+v", tt.step, id, got, want)
			}
		}
	}
	if _, err := s.EffectivePolicies(ctx, unknownID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("EffectivePolicies(unknown) error = %v, want storage.ErrNotFound", err)
	}
}

// testAccountBudgets checks that the budgets of an account's chain are read
// nearest first with the root of the tree, and that a change of an ancestor's
// budget shows at once in a descendant's answer (a cache must drop it).
func testAccountBudgets(t *testing.T, s storage.Accounts) {
	ctx := t.Context()
	// root ─ mid ─ leaf
	//    └─ sibling
	root := createAccount(t, s, 0)
	mid := createAccount(t, s, root.ID)
	leaf := createAccount(t, s, mid.ID)
	sibling := createAccount(t, s, root.ID)
	setBudget := func(a storage.Account, b *storage.Budget) {
		t.Helper()
		if _, err := s.UpdateAccount(ctx, a.ID, func(x *storage.Account) error { x.Budget = b; return nil }); err != nil {
			t.Fatalf("UpdateAccount(%d): %v", a.ID, err)
		}
	}
	check := func(step string, id int64, want storage.BudgetChain) {
		t.Helper()
		got, err := s.AccountBudgets(ctx, id)
		if err != nil {
			t.Fatalf("%s: AccountBudgets(%d): %v", step, id, err)
		}
		checkDiff(t, step+": AccountBudgets", got, want)
	}
	check("no budgets", leaf.ID, storage.BudgetChain{Root: root.ID})
	check("a root's own", root.ID, storage.BudgetChain{Root: root.ID})

	rootBudget := storage.Budget{Quota: &storage.Quota{Limit: 1000, Period: storage.QuotaMonth}}
	midBudget := storage.Budget{RateLimits: map[string]storage.RateLimit{"default": {Rate: 10, Burst: 20}}, Quota: &storage.Quota{Limit: 50, Period: storage.QuotaDay}}
	setBudget(root, &rootBudget)
	check("root budget, read from the leaf", leaf.ID, storage.BudgetChain{Root: root.ID, Budgets: []storage.AccountBudget{{AccountID: root.ID, Budget: rootBudget}}})
	setBudget(mid, &midBudget)
	check("mid budget first", leaf.ID, storage.BudgetChain{Root: root.ID, Budgets: []storage.AccountBudget{
		{AccountID: mid.ID, Budget: midBudget}, {AccountID: root.ID, Budget: rootBudget}}})
	check("the sibling has only the root's", sibling.ID, storage.BudgetChain{Root: root.ID, Budgets: []storage.AccountBudget{{AccountID: root.ID, Budget: rootBudget}}})
	setBudget(root, nil)
	check("root budget removed", leaf.ID, storage.BudgetChain{Root: root.ID, Budgets: []storage.AccountBudget{{AccountID: mid.ID, Budget: midBudget}}})

	if _, err := s.AccountBudgets(ctx, unknownID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("AccountBudgets(unknown) error = %v, want storage.ErrNotFound", err)
	}
}
