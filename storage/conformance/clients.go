package conformance

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// ClientsStore is what RunClients needs: clients belong to accounts and
// reference users as owner and creator.
type ClientsStore interface {
	storage.Accounts
	storage.Users
	storage.Clients
}

// RunClients tests a storage.Clients.
func RunClients(t *testing.T, newStore func(t *testing.T) ClientsStore) {
	t.Run("CreateGet", func(t *testing.T) { testCreateGetClient(t, newStore(t)) })
	t.Run("GetUnknown", func(t *testing.T) { testGetUnknownClient(t, newStore(t)) })
	t.Run("CreateUnknownReference", func(t *testing.T) { testCreateClientUnknownReference(t, newStore(t)) })
	t.Run("Update", func(t *testing.T) { testUpdateClient(t, newStore(t)) })
	t.Run("UpdateImmutable", func(t *testing.T) { testUpdateClientImmutable(t, newStore(t)) })
	t.Run("UpdateError", func(t *testing.T) { testUpdateClientError(t, newStore(t)) })
	t.Run("UpdateUnknown", func(t *testing.T) { testUpdateUnknownClient(t, newStore(t)) })
	t.Run("UpdateConcurrent", func(t *testing.T) { testUpdateClientConcurrent(t, newStore(t)) })
	t.Run("Delete", func(t *testing.T) { testDeleteClient(t, newStore(t)) })
	t.Run("Touch", func(t *testing.T) { testTouchClient(t, newStore(t)) })
}

// clientFixture is the account and users a client refers to.
type clientFixture struct {
	account storage.Account
	owner   storage.User
	creator storage.User
}

func newClientFixture(t *testing.T, s ClientsStore) clientFixture {
	t.Helper()
	account := createAccount(t, s, 0)
	return clientFixture{
		account: account,
		owner:   createUser(t, s, account.ID),
		creator: createUser(t, s, account.ID),
	}
}

// fullClient sets every field a caller may set.
func (f clientFixture) fullClient() storage.Client {
	cet := time.FixedZone("CET", 3600)
	return storage.Client{
		AccountID:     f.account.ID,
		OwnerID:       f.owner.ID,
		Name:          "billing exporter",
		Description:   "nightly export to the ledger; owner: ops",
		SecretHash:    "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$c2VjcmV0aGFzaA",
		GrantTypes:    []string{"client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"},
		Scopes:        []string{"write", "read", "ledger:export", "a"},
		MayIntrospect: true,
		TokenLifetime: 90 * time.Second,
		Status:        storage.StatusActive,
		Generation:    7,
		ExpiresAt:     time.Date(2031, 2, 3, 4, 5, 6, 123456789, cet),
		LastUsedAt:    time.Date(2024, 12, 31, 23, 59, 59, 999999999, cet),
		CreatedBy:     f.creator.ID,
	}
}

// createClient creates f.fullClient.
func createClient(t *testing.T, s storage.Clients, f clientFixture) storage.Client {
	t.Helper()
	c, err := s.CreateClient(t.Context(), f.fullClient())
	if err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
	return c
}

func getClient(t *testing.T, s storage.Clients, id int64) storage.Client {
	t.Helper()
	c, err := s.GetClient(t.Context(), id)
	if err != nil {
		t.Fatalf("GetClient(%d): %v", id, err)
	}
	return c
}

func testCreateGetClient(t *testing.T, s ClientsStore) {
	f := newClientFixture(t, s)
	tests := []struct {
		name string
		in   func() storage.Client
	}{
		{"every field set", f.fullClient},
		{"zero optionals", func() storage.Client {
			return storage.Client{
				AccountID:  f.account.ID,
				Name:       "bare",
				SecretHash: "h",
				Status:     storage.StatusDisabled,
			}
		}},
		{"empty lists", func() storage.Client {
			c := f.fullClient()
			c.GrantTypes, c.Scopes = []string{}, []string{}
			return c
		}},
		{"one grant type, many scopes in order", func() storage.Client {
			c := f.fullClient()
			c.GrantTypes = []string{"password"}
			c.Scopes = []string{"z", "m", "a", "openid", "profile:read", "x-y_z.w"}
			return c
		}},
		{"times already in UTC, whole seconds", func() storage.Client {
			c := f.fullClient()
			c.ExpiresAt = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
			c.LastUsedAt = time.Date(2029, 6, 30, 12, 0, 0, 0, time.UTC)
			return c
		}},
		{"long lifetime", func() storage.Client {
			c := f.fullClient()
			c.TokenLifetime = 30 * 24 * time.Hour
			c.MayIntrospect = false
			return c
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in()
			before := time.Now()
			created, err := s.CreateClient(t.Context(), in)
			after := time.Now()
			if err != nil {
				t.Fatalf("CreateClient(%+v): %v", in, err)
			}
			if created.ID == 0 {
				t.Errorf("CreateClient: got ID 0, want an assigned id")
			}
			checkStamp(t, "CreatedAt", created.CreatedAt, before, after)
			checkStamp(t, "UpdatedAt", created.UpdatedAt, before, after)

			want := in
			want.ID, want.CreatedAt, want.UpdatedAt = created.ID, created.CreatedAt, created.UpdatedAt
			want.ExpiresAt, want.LastUsedAt = micro(in.ExpiresAt), micro(in.LastUsedAt)
			checkDiff(t, "created client", created, want)

			got := getClient(t, s, created.ID)
			checkDiff(t, "GetClient", got, want)
		})
	}
}

func testGetUnknownClient(t *testing.T, s ClientsStore) {
	for _, id := range []int64{0, -1, unknownID} {
		_, err := s.GetClient(t.Context(), id)
		if !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetClient(%d): got error %v, want %v", id, err, storage.ErrNotFound)
		}
	}
}

func testCreateClientUnknownReference(t *testing.T, s ClientsStore) {
	f := newClientFixture(t, s)
	tests := []struct {
		name   string
		modify func(*storage.Client)
	}{
		{"account", func(c *storage.Client) { c.AccountID = unknownID }},
		{"owner", func(c *storage.Client) { c.OwnerID = unknownID }},
		{"creator", func(c *storage.Client) { c.CreatedBy = unknownID }},
	}
	for _, tt := range tests {
		c := f.fullClient()
		tt.modify(&c)
		if got, err := s.CreateClient(t.Context(), c); err == nil {
			t.Errorf("CreateClient(unknown %s): got %+v, want an error", tt.name, got)
		}
	}
}

func testUpdateClient(t *testing.T, s ClientsStore) {
	f := newClientFixture(t, s)
	other := createUser(t, s, f.account.ID)
	created := createClient(t, s, f)

	tests := []struct {
		name   string
		update func(*storage.Client)
	}{
		{"every mutable field", func(c *storage.Client) {
			c.OwnerID = other.ID
			c.Name = "renamed"
			c.Description = "new description"
			c.SecretHash = "rotated-hash"
			c.GrantTypes = []string{"refresh_token", "client_credentials"}
			c.Scopes = []string{"read"}
			c.MayIntrospect = false
			c.TokenLifetime = time.Hour
			c.Status = storage.StatusDisabled
			c.Generation++
			c.ExpiresAt = time.Date(2032, 7, 8, 9, 10, 11, 987654321, time.FixedZone("PDT", -7*3600))
			c.LastUsedAt = time.Date(2025, 1, 2, 3, 4, 5, 600000000, time.UTC)
			c.CreatedBy = other.ID
		}},
		{"clear optionals and lists", func(c *storage.Client) {
			c.OwnerID = 0
			c.CreatedBy = 0
			c.ExpiresAt = time.Time{}
			c.LastUsedAt = time.Time{}
			c.TokenLifetime = 0
			c.GrantTypes = nil
			c.Scopes = []string{}
			c.Description = ""
		}},
		{"reactivate", func(c *storage.Client) {
			c.Status = storage.StatusActive
			c.GrantTypes = []string{"client_credentials"}
		}},
		{"no change", func(*storage.Client) {}},
	}
	prev := created
	for _, tt := range tests {
		want := prev
		tt.update(&want)
		want.ExpiresAt, want.LastUsedAt = micro(want.ExpiresAt), micro(want.LastUsedAt)

		got, err := s.UpdateClient(t.Context(), created.ID, func(c *storage.Client) error {
			checkDiff(t, tt.name+": client passed to update", *c, prev)
			tt.update(c)
			return nil
		})
		if err != nil {
			t.Fatalf("%s: UpdateClient(%d): %v", tt.name, created.ID, err)
		}
		if !got.UpdatedAt.After(prev.UpdatedAt) {
			t.Errorf("%s: UpdatedAt = %v, want after %v", tt.name, got.UpdatedAt, prev.UpdatedAt)
		}
		want.UpdatedAt = got.UpdatedAt
		checkDiff(t, tt.name+": UpdateClient result", got, want)
		checkDiff(t, tt.name+": GetClient after UpdateClient", getClient(t, s, created.ID), want)
		prev = got
	}
}

func testUpdateClientImmutable(t *testing.T, s ClientsStore) {
	f := newClientFixture(t, s)
	otherAccount := createAccount(t, s, 0)
	created := createClient(t, s, f)

	got, err := s.UpdateClient(t.Context(), created.ID, func(c *storage.Client) error {
		c.ID += 1000
		c.AccountID = otherAccount.ID
		c.CreatedAt = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
		c.Name = "changed"
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateClient(%d): %v", created.ID, err)
	}
	want := created
	want.Name = "changed"
	want.UpdatedAt = got.UpdatedAt
	checkDiff(t, "UpdateClient result", got, want)
	checkDiff(t, "GetClient after UpdateClient", getClient(t, s, created.ID), want)
}

func testUpdateClientError(t *testing.T, s ClientsStore) {
	f := newClientFixture(t, s)
	created := createClient(t, s, f)
	errRefused := errors.New("refused by the caller")

	_, err := s.UpdateClient(t.Context(), created.ID, func(c *storage.Client) error {
		c.Name = "must not be stored"
		c.Generation++
		c.Scopes = nil
		return errRefused
	})
	if !errors.Is(err, errRefused) || err.Error() != errRefused.Error() {
		t.Errorf("UpdateClient with a failing update: got error %v, want %v unchanged", err, errRefused)
	}
	checkDiff(t, "GetClient after a failed update", getClient(t, s, created.ID), created)
}

func testUpdateUnknownClient(t *testing.T, s ClientsStore) {
	called := false
	_, err := s.UpdateClient(t.Context(), unknownID, func(*storage.Client) error {
		called = true
		return nil
	})
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("UpdateClient(%d): got error %v, want %v", unknownID, err, storage.ErrNotFound)
	}
	if called {
		t.Errorf("UpdateClient(%d) called update for an unknown client", unknownID)
	}
}

// testUpdateClientConcurrent bumps the generation from many goroutines at
// once: every update must see the one before it.
func testUpdateClientConcurrent(t *testing.T, s ClientsStore) {
	const workers = 20
	f := newClientFixture(t, s)
	created := createClient(t, s, f)

	var (
		wg          sync.WaitGroup
		mu          sync.Mutex
		generations []int64
	)
	for range workers {
		wg.Go(func() {
			got, err := s.UpdateClient(t.Context(), created.ID, func(c *storage.Client) error {
				c.Generation++
				return nil
			})
			if err != nil {
				t.Errorf("concurrent UpdateClient(%d): %v", created.ID, err)
				return
			}
			mu.Lock()
			generations = append(generations, got.Generation)
			mu.Unlock()
		})
	}
	wg.Wait()

	if got, want := getClient(t, s, created.ID).Generation, created.Generation+workers; got != want {
		t.Errorf("Generation after %d concurrent increments = %d, want %d", workers, got, want)
	}
	// Each update returned a different generation: none saw a stale row.
	slices.Sort(generations)
	if len(slices.Compact(slices.Clone(generations))) != len(generations) {
		t.Errorf("concurrent UpdateClient results share generations: %v", generations)
	}
}

func testDeleteClient(t *testing.T, s ClientsStore) {
	f := newClientFixture(t, s)
	c := createClient(t, s, f)
	kept := createClient(t, s, f)

	if err := s.DeleteClient(t.Context(), c.ID); err != nil {
		t.Fatalf("DeleteClient(%d): %v", c.ID, err)
	}
	if _, err := s.GetClient(t.Context(), c.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetClient(%d) after delete: got error %v, want %v", c.ID, err, storage.ErrNotFound)
	}
	if err := s.DeleteClient(t.Context(), c.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteClient(%d) twice: got error %v, want %v", c.ID, err, storage.ErrNotFound)
	}
	_, err := s.UpdateClient(t.Context(), c.ID, func(*storage.Client) error { return nil })
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("UpdateClient(%d) after delete: got error %v, want %v", c.ID, err, storage.ErrNotFound)
	}
	if err := s.DeleteClient(t.Context(), unknownID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteClient(%d): got error %v, want %v", unknownID, err, storage.ErrNotFound)
	}
	checkDiff(t, "client not deleted", getClient(t, s, kept.ID), kept)
}

// testTouchClient touches a client at times a minute or more apart from the
// stored value, where the write is due, and at times less than a minute
// apart, where the backend may skip it. LastUsedAt never moves backwards.
func testTouchClient(t *testing.T, s ClientsStore) {
	f := newClientFixture(t, s)
	in := f.fullClient()
	in.LastUsedAt = time.Time{}
	created, err := s.CreateClient(t.Context(), in)
	if err != nil {
		t.Fatalf("CreateClient: %v", err)
	}

	t0 := time.Date(2030, 5, 6, 7, 8, 9, 0, time.FixedZone("EET", 2*3600))
	tests := []struct {
		name string
		at   time.Time
		// want lists the acceptable LastUsedAt after the touch: the first
		// is "skipped", the second "written" when skipping is allowed.
		want []time.Time
	}{
		{"first use", t0, []time.Time{t0}},
		{"a minute and a half later, fraction", t0.Add(90*time.Second + 500*time.Millisecond), []time.Time{t0.Add(90*time.Second + 500*time.Millisecond)}},
		{"earlier than stored", t0.Add(30 * time.Second), []time.Time{t0.Add(90*time.Second + 500*time.Millisecond)}},
		{"long before", t0.Add(-24 * time.Hour), []time.Time{t0.Add(90*time.Second + 500*time.Millisecond)}},
		{"half a minute later", t0.Add(120*time.Second + 250*time.Millisecond), []time.Time{t0.Add(90*time.Second + 500*time.Millisecond), t0.Add(120*time.Second + 250*time.Millisecond)}},
		{"exactly one minute after either", t0.Add(180*time.Second + 250*time.Millisecond), []time.Time{t0.Add(180*time.Second + 250*time.Millisecond)}},
		{"nanoseconds", t0.Add(10*time.Minute + 123456789), []time.Time{t0.Add(10*time.Minute + 123456000)}},
		{"a day later", t0.Add(24 * time.Hour), []time.Time{t0.Add(24 * time.Hour)}},
	}
	prev := created
	for _, tt := range tests {
		if err := s.TouchClient(t.Context(), created.ID, tt.at); err != nil {
			t.Fatalf("%s: TouchClient(%d, %v): %v", tt.name, created.ID, tt.at, err)
		}
		got := getClient(t, s, created.ID)
		if !slices.ContainsFunc(tt.want, got.LastUsedAt.Equal) {
			t.Errorf("%s: after TouchClient(%v) LastUsedAt = %v, want one of %v", tt.name, tt.at, got.LastUsedAt, tt.want)
		}
		if got.LastUsedAt.Before(prev.LastUsedAt) {
			t.Errorf("%s: LastUsedAt moved backwards from %v to %v", tt.name, prev.LastUsedAt, got.LastUsedAt)
		}
		// Nothing but LastUsedAt (and perhaps UpdatedAt) changes.
		want := prev
		want.LastUsedAt, want.UpdatedAt = got.LastUsedAt, got.UpdatedAt
		checkDiff(t, tt.name+": client after TouchClient", got, want)
		prev = got
	}
}
