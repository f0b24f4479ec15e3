package conformance

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// UsersStore is what RunUsers needs: users belong to accounts.
type UsersStore interface {
	storage.Accounts
	storage.Users
}

// RunUsers tests a storage.Users.
func RunUsers(t *testing.T, newStore func(t *testing.T) UsersStore) {
	t.Run("CreateGet", func(t *testing.T) { testCreateGetUser(t, newStore(t)) })
	t.Run("GetUnknown", func(t *testing.T) { testGetUnknownUser(t, newStore(t)) })
	t.Run("DuplicateUsername", func(t *testing.T) { testDuplicateUsername(t, newStore(t)) })
	t.Run("CreateUnknownAccount", func(t *testing.T) { testCreateUserUnknownAccount(t, newStore(t)) })
	t.Run("Update", func(t *testing.T) { testUpdateUser(t, newStore(t)) })
	t.Run("Delete", func(t *testing.T) { testDeleteUser(t, newStore(t)) })
	t.Run("List", func(t *testing.T) { testListUsers(t, newStore(t)) })
	t.Run("ListByName", func(t *testing.T) { testListUsersByName(t, newStore(t)) })
}

// createUser creates an active member of accountID with a unique username.
func createUser(t *testing.T, s storage.Users, accountID int64) storage.User {
	t.Helper()
	u, err := s.CreateUser(t.Context(), storage.User{
		AccountID:    accountID,
		Username:     uniqueName("user"),
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g",
		Role:         storage.RoleMember,
		Status:       storage.StatusActive,
	})
	if err != nil {
		t.Fatalf("CreateUser(account %d): %v", accountID, err)
	}
	return u
}

func testCreateGetUser(t *testing.T, s UsersStore) {
	account := createAccount(t, s, 0)
	tests := []struct {
		name string
		in   storage.User
	}{
		{"admin", storage.User{
			AccountID:    account.ID,
			Username:     uniqueName("alice"),
			PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g",
			Role:         storage.RoleAdmin,
			Status:       storage.StatusActive,
		}},
		{"disabled member with bcrypt, version ignored", storage.User{
			Version:      42,
			AccountID:    account.ID,
			Username:     uniqueName("bob"),
			PasswordHash: "$2a$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
			Role:         storage.RoleMember,
			Status:       storage.StatusDisabled,
		}},
		{"with revoked tokens", storage.User{
			AccountID:        account.ID,
			Username:         uniqueName("carol"),
			PasswordHash:     "x",
			Role:             storage.RoleMember,
			Status:           storage.StatusActive,
			TokensValidAfter: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC),
		}},
		{"email and unicode username", storage.User{
			AccountID:    account.ID,
			Username:     uniqueName("zoë+ops@example.com"),
			PasswordHash: "x",
			Role:         storage.RoleMember,
			Status:       storage.StatusActive,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now()
			created, err := s.CreateUser(t.Context(), tt.in)
			after := time.Now()
			if err != nil {
				t.Fatalf("CreateUser(%q): %v", tt.in.Username, err)
			}
			if created.ID == 0 {
				t.Errorf("CreateUser: got ID 0, want an assigned id")
			}
			checkStamp(t, "CreatedAt", created.CreatedAt, before, after)
			checkStamp(t, "UpdatedAt", created.UpdatedAt, before, after)

			want := tt.in
			want.ID, want.CreatedAt, want.UpdatedAt = created.ID, created.CreatedAt, created.UpdatedAt
			want.Version = 1
			checkDiff(t, "created user", created, want)

			got, err := s.GetUser(t.Context(), created.ID)
			if err != nil {
				t.Fatalf("GetUser(%d): %v", created.ID, err)
			}
			checkDiff(t, "GetUser", got, want)

			got, err = s.GetUserByUsername(t.Context(), tt.in.Username)
			if err != nil {
				t.Fatalf("GetUserByUsername(%q): %v", tt.in.Username, err)
			}
			checkDiff(t, "GetUserByUsername", got, want)
		})
	}
}

func testGetUnknownUser(t *testing.T, s UsersStore) {
	for _, id := range []int64{0, -1, unknownID} {
		_, err := s.GetUser(t.Context(), id)
		if !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetUser(%d): got error %v, want %v", id, err, storage.ErrNotFound)
		}
	}
	for _, username := range []string{"", uniqueName("nobody")} {
		_, err := s.GetUserByUsername(t.Context(), username)
		if !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetUserByUsername(%q): got error %v, want %v", username, err, storage.ErrNotFound)
		}
	}
}

func testDuplicateUsername(t *testing.T, s UsersStore) {
	first := createUser(t, s, createAccount(t, s, 0).ID)

	// Usernames are unique across the installation, not per account.
	dup, err := s.CreateUser(t.Context(), storage.User{
		AccountID:    createAccount(t, s, 0).ID,
		Username:     first.Username,
		PasswordHash: "other",
		Role:         storage.RoleAdmin,
		Status:       storage.StatusActive,
	})
	if !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("CreateUser(taken username %q): got %+v, error %v, want %v", first.Username, dup, err, storage.ErrAlreadyExists)
	}

	got, err := s.GetUserByUsername(t.Context(), first.Username)
	if err != nil {
		t.Fatalf("GetUserByUsername(%q): %v", first.Username, err)
	}
	checkDiff(t, "user after a duplicate create", got, first)

	// Letter case does not make another name: not on create, not on a
	// rename, and signing in finds the one user whatever the case.
	upper := strings.ToUpper(first.Username)
	for _, name := range []string{upper, strings.ToUpper(first.Username[:1]) + first.Username[1:]} {
		if dup, err := s.CreateUser(t.Context(), storage.User{AccountID: first.AccountID, Username: name, PasswordHash: "other",
			Role: storage.RoleAdmin, Status: storage.StatusActive}); !errors.Is(err, storage.ErrAlreadyExists) {
			t.Errorf("CreateUser(%q beside %q): got %+v, error %v, want %v", name, first.Username, dup, err, storage.ErrAlreadyExists)
		}
		got, err := s.GetUserByUsername(t.Context(), name)
		if err != nil || got.ID != first.ID {
			t.Errorf("GetUserByUsername(%q) = user %d, %v; want user %d (%q)", name, got.ID, err, first.ID, first.Username)
		}
	}
	other := createUser(t, s, first.AccountID)
	if _, err := s.UpdateUser(t.Context(), other.ID, func(u *storage.User) error { u.Username = upper; return nil }); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("UpdateUser renaming to %q beside %q: error %v, want %v", upper, first.Username, err, storage.ErrAlreadyExists)
	}
	// A user may change the case of their own name.
	if got, err := s.UpdateUser(t.Context(), first.ID, func(u *storage.User) error { u.Username = upper; return nil }); err != nil || got.Username != upper {
		t.Errorf("UpdateUser changing the case of the user's own name: %q, %v; want %q", got.Username, err, upper)
	}
}

func testCreateUserUnknownAccount(t *testing.T, s UsersStore) {
	u, err := s.CreateUser(t.Context(), storage.User{
		AccountID:    unknownID,
		Username:     uniqueName("orphan"),
		PasswordHash: "x",
		Role:         storage.RoleMember,
		Status:       storage.StatusActive,
	})
	if err == nil {
		t.Errorf("CreateUser(account %d): got %+v, want an error", unknownID, u)
	}
}

func testUpdateUser(t *testing.T, s UsersStore) {
	ctx := t.Context()
	account := createAccount(t, s, 0)
	other := createAccount(t, s, 0)
	u := createUser(t, s, account.ID)
	taken := createUser(t, s, account.ID)

	renamed := uniqueName("renamed")
	cutoff := time.Now().UTC().Truncate(time.Second)
	got, err := s.UpdateUser(ctx, u.ID, func(x *storage.User) error {
		x.Username = renamed
		x.Role = storage.RoleAdmin
		x.Status = storage.StatusDisabled
		x.PasswordHash = "$argon2id$v=19$m=65536,t=3,p=4$bmV3c2FsdA$bmV3aGFzaA"
		x.TokensValidAfter = cutoff
		x.AccountID = other.ID              // immutable
		x.CreatedAt = time.Unix(1, 0).UTC() // immutable
		x.Version = 99                      // set by the store
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	stored, err := s.GetUser(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored != got {
		t.Errorf("GetUser after UpdateUser = %+v, want %+v", stored, got)
	}
	if got.Username != renamed || got.Role != storage.RoleAdmin || got.Status != storage.StatusDisabled ||
		got.PasswordHash != "$argon2id$v=19$m=65536,t=3,p=4$bmV3c2FsdA$bmV3aGFzaA" ||
		!got.TokensValidAfter.Equal(cutoff) || got.TokensValidAfter.Location() != time.UTC {
		t.Errorf("UpdateUser changes not kept: %+v", got)
	}
	if got.AccountID != account.ID || !got.CreatedAt.Equal(u.CreatedAt) {
		t.Errorf("UpdateUser changed immutable fields: got account %d created %v, want %d %v", got.AccountID, got.CreatedAt, account.ID, u.CreatedAt)
	}
	if !got.UpdatedAt.After(u.UpdatedAt) {
		t.Errorf("UpdatedAt = %v, want after %v", got.UpdatedAt, u.UpdatedAt)
	}
	if got.Version != u.Version+1 {
		t.Errorf("Version after one update = %d, want %d", got.Version, u.Version+1)
	}

	wantErr := errors.New("abort")
	if _, err := s.UpdateUser(ctx, u.ID, func(x *storage.User) error { x.Username = "ignored"; return wantErr }); !errors.Is(err, wantErr) {
		t.Errorf("UpdateUser with failing update: err = %v, want %v", err, wantErr)
	}
	if again, _ := s.GetUser(ctx, u.ID); again != got {
		t.Errorf("aborted update was written: got %+v, want %+v", again, got)
	}
	if _, err := s.UpdateUser(ctx, u.ID, func(x *storage.User) error { x.Username = taken.Username; return nil }); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("UpdateUser to a taken username: err = %v, want ErrAlreadyExists", err)
	}
	if again, _ := s.GetUser(ctx, u.ID); again != got {
		t.Errorf("update to a taken username was written: got %+v, want %+v", again, got)
	}
	if _, err := s.UpdateUser(ctx, 1<<50, func(*storage.User) error { return nil }); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("UpdateUser(unknown): err = %v, want ErrNotFound", err)
	}

	// An update that leaves TokensValidAfter alone keeps it; clearing it
	// is written too.
	kept, err := s.UpdateUser(ctx, u.ID, func(x *storage.User) error { x.Status = storage.StatusActive; return nil })
	if err != nil {
		t.Fatalf("UpdateUser(status): %v", err)
	}
	if !kept.TokensValidAfter.Equal(cutoff) {
		t.Errorf("TokensValidAfter after an unrelated update = %v, want %v", kept.TokensValidAfter, cutoff)
	}
	cleared, err := s.UpdateUser(ctx, u.ID, func(x *storage.User) error { x.TokensValidAfter = time.Time{}; return nil })
	if err != nil {
		t.Fatalf("UpdateUser(clear TokensValidAfter): %v", err)
	}
	if stored, err := s.GetUser(ctx, u.ID); err != nil || !stored.TokensValidAfter.IsZero() || stored != cleared {
		t.Errorf("GetUser after clearing TokensValidAfter = %+v, %v; want %+v", stored, err, cleared)
	}
}

// testDeleteUser deletes a user who owns nothing; RunClients checks that
// their credentials go with them.
func testDeleteUser(t *testing.T, s UsersStore) {
	ctx := t.Context()
	account := createAccount(t, s, 0)
	u := createUser(t, s, account.ID)
	kept := createUser(t, s, account.ID)

	if err := s.DeleteUser(ctx, u.ID); err != nil {
		t.Fatalf("DeleteUser(%d): %v", u.ID, err)
	}
	if _, err := s.GetUser(ctx, u.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetUser(%d) after delete: got error %v, want %v", u.ID, err, storage.ErrNotFound)
	}
	if _, err := s.GetUserByUsername(ctx, u.Username); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetUserByUsername(%q) after delete: got error %v, want %v", u.Username, err, storage.ErrNotFound)
	}
	for _, id := range []int64{u.ID, unknownID} {
		if err := s.DeleteUser(ctx, id); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("DeleteUser(%d): got error %v, want %v", id, err, storage.ErrNotFound)
		}
	}
	if got, err := s.GetUser(ctx, kept.ID); err != nil || got != kept {
		t.Errorf("GetUser(%d) of another user = %+v, %v; want %+v", kept.ID, got, err, kept)
	}
	// The username is free again.
	again, err := s.CreateUser(ctx, storage.User{AccountID: account.ID, Username: u.Username, PasswordHash: "x", Role: storage.RoleMember, Status: storage.StatusActive})
	if err != nil {
		t.Fatalf("CreateUser(%q) after its user was deleted: %v", u.Username, err)
	}
	if again.ID == u.ID {
		t.Errorf("CreateUser reused the id %d of a deleted user", u.ID)
	}
}

func userID(u storage.User) int64 { return u.ID }

func testListUsers(t *testing.T, s UsersStore) {
	ctx := t.Context()
	// root ─ a ─ b ─ c
	//    └─ sibling
	root := createAccount(t, s, 0)
	a := createAccount(t, s, root.ID)
	b := createAccount(t, s, a.ID)
	c := createAccount(t, s, b.ID)
	sibling := createAccount(t, s, root.ID)
	empty := createAccount(t, s, a.ID)

	users := map[int64][]int64{} // account id: user ids
	// Interleaved, so that a subtree's users are not one run of ids.
	for range 2 {
		for _, acc := range []storage.Account{c, a, sibling, b, root} {
			users[acc.ID] = append(users[acc.ID], createUser(t, s, acc.ID).ID)
		}
	}
	ids := func(accounts ...storage.Account) []int64 {
		var out []int64
		for _, acc := range accounts {
			out = append(out, users[acc.ID]...)
		}
		slices.Sort(out)
		return out
	}

	tests := []struct {
		name string
		f    storage.UserFilter
		want []int64
	}{
		{"account", storage.UserFilter{AccountID: a.ID}, ids(a)},
		{"subtree", storage.UserFilter{AccountID: a.ID, Subtree: true}, ids(a, b, c)},
		{"inner subtree", storage.UserFilter{AccountID: b.ID, Subtree: true}, ids(b, c)},
		{"leaf subtree", storage.UserFilter{AccountID: c.ID, Subtree: true}, ids(c)},
		{"sibling subtree", storage.UserFilter{AccountID: sibling.ID, Subtree: true}, ids(sibling)},
		{"root alone", storage.UserFilter{AccountID: root.ID}, ids(root)},
		{"root subtree", storage.UserFilter{AccountID: root.ID, Subtree: true}, ids(root, a, b, c, sibling)},
		{"no users", storage.UserFilter{AccountID: empty.ID, Subtree: true}, nil},
		{"unknown account", storage.UserFilter{AccountID: unknownID, Subtree: true}, nil},
	}
	for _, tt := range tests {
		checkPages(t, tt.name, tt.want, userID, func(p storage.Page) ([]storage.User, error) {
			return s.ListUsers(ctx, tt.f, p)
		})
	}

	all, err := s.ListUsers(ctx, storage.UserFilter{AccountID: a.ID, Subtree: true}, storage.Page{})
	if err != nil {
		t.Fatalf("ListUsers(zero page): %v", err)
	}
	if len(all) != len(ids(a, b, c)) {
		t.Errorf("ListUsers(zero page) returned %d users, want all %d", len(all), len(ids(a, b, c)))
	}
	for _, u := range all {
		got, err := s.GetUser(ctx, u.ID)
		if err != nil {
			t.Fatalf("GetUser(%d): %v", u.ID, err)
		}
		checkDiff(t, "listed user", u, got)
	}
}

// testListUsersByName checks UserFilter.Name: a part of the username, in
// any case, with LIKE's wildcards matching only themselves.
func testListUsersByName(t *testing.T, s UsersStore) {
	ctx := t.Context()
	acc := createAccount(t, s, 0)
	tag := uniqueName("x") // usernames are unique across the installation
	ids := map[string]int64{}
	for _, n := range []string{"Anna." + tag, "anna_b." + tag, "bob%." + tag} {
		u, err := s.CreateUser(ctx, storage.User{AccountID: acc.ID, Username: n, PasswordHash: "h", Role: storage.RoleMember, Status: storage.StatusActive})
		if err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
		ids[n] = u.ID
	}
	tests := []struct {
		name string
		want []int64
	}{
		{"ANNA", []int64{ids["Anna."+tag], ids["anna_b."+tag]}},
		{"a_b", []int64{ids["anna_b."+tag]}},
		{"n_a", nil}, // a wildcard would match "Anna"
		{"%", []int64{ids["bob%."+tag]}},
		{"", []int64{ids["Anna."+tag], ids["anna_b."+tag], ids["bob%."+tag]}},
	}
	for _, tt := range tests {
		checkPages(t, "username "+tt.name, tt.want, userID, func(p storage.Page) ([]storage.User, error) {
			return s.ListUsers(ctx, storage.UserFilter{AccountID: acc.ID, Name: tt.name}, p)
		})
	}
}
