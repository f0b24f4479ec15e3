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
	t.Run("UpdateIfMatch", func(t *testing.T) { testUpdateClientIfMatch(t, newStore(t)) })
	t.Run("DefaultKey", func(t *testing.T) { testDefaultKey(t, newStore(t)) })
	t.Run("DeleteUser", func(t *testing.T) { testDeleteUserClients(t, newStore(t)) })
	t.Run("List", func(t *testing.T) { testListClients(t, newStore(t)) })
	t.Run("ListByName", func(t *testing.T) { testListClientsByName(t, newStore(t)) })
	t.Run("TouchMany", func(t *testing.T) { testTouchClients(t, newStore(t)) })
	t.Run("DisabledReason", func(t *testing.T) { testDisabledReason(t, newStore(t)) })
	// Last: DisableStale disables the stale clients of every test.
	t.Run("DisableStale", func(t *testing.T) { testDisableStale(t, newStore(t)) })
	t.Run("DisableStaleConcurrent", func(t *testing.T) { testDisableStaleConcurrent(t, newStore(t)) })
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
		AccountID:               f.account.ID,
		OwnerID:                 f.owner.ID,
		Kind:                    storage.KindKey,
		Name:                    "billing exporter",
		Description:             "nightly export to the ledger; owner: ops",
		SecretHash:              "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$c2VjcmV0aGFzaA",
		SecretHint:              "…x7Qz",
		AccessRights:            "ledger-export",
		RateLimits:              map[string]storage.RateLimit{"default": {Rate: 10, Burst: 20}, "reports": {Rate: 2, Burst: 2}},
		GrantTypes:              []string{"client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"},
		Scopes:                  []string{"write", "read", "ledger:export", "a"},
		MayIntrospect:           true,
		TokenLifetime:           90 * time.Second,
		ReuseTokens:             true,
		AccessTokenStrategy:     storage.StrategyJWT,
		TokenEndpointAuthMethod: storage.AuthPrivateKeyJWT,
		JWKS:                    `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`,
		DPoPBoundAccessTokens:   true,
		Quota:                   &storage.Quota{Limit: 50_000, Period: storage.QuotaDay},
		AllowedCIDRs:            []string{"203.0.113.0/24", "2001:db8::/32", "198.51.100.7/32"},
		Status:                  storage.StatusActive,
		Generation:              7,
		PreviousSecretHash:      "$argon2id$v=19$m=65536,t=3,p=4$b2xkc2FsdA$b2xkaGFzaA",
		PreviousGeneration:      6,
		PreviousRetireAt:        time.Date(2030, 4, 5, 6, 7, 8, 987654321, cet),
		ExpiresAt:               time.Date(2031, 2, 3, 4, 5, 6, 123456789, cet),
		LastUsedAt:              time.Date(2024, 12, 31, 23, 59, 59, 999999999, cet),
		CreatedBy:               f.creator.ID,
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
		{"zero optionals, empty kind", func() storage.Client {
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
		{"client kind, version ignored", func() storage.Client {
			c := f.fullClient()
			c.Kind = storage.KindClient
			c.Version = 42
			return c
		}},
		{"default key", func() storage.Client {
			c := f.fullClient()
			c.OwnerID = f.creator.ID
			c.IsDefault = true
			c.AccessRights = ""
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
			want.ExpiresAt, want.LastUsedAt, want.PreviousRetireAt = micro(in.ExpiresAt), micro(in.LastUsedAt), micro(in.PreviousRetireAt)
			want.Version = 1
			if want.Kind == "" {
				want.Kind = storage.KindClient
			}
			if want.AccessTokenStrategy == "" {
				want.AccessTokenStrategy = storage.StrategyOpaque
			}
			if want.TokenEndpointAuthMethod == "" {
				want.TokenEndpointAuthMethod = storage.AuthSecretBasic
			}
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
			c.Kind = storage.KindClient
			c.IsDefault = true
			c.Name = "renamed"
			c.Description = "new description"
			c.PreviousSecretHash = c.SecretHash
			c.PreviousGeneration = c.Generation
			c.SecretHash = "rotated-hash"
			c.SecretHint = "…abcd"
			c.AccessRights = "read-only"
			c.PreviousRetireAt = time.Date(2031, 1, 1, 0, 0, 0, 1000, time.UTC)
			c.GrantTypes = []string{"refresh_token", "client_credentials"}
			c.Scopes = []string{"read"}
			c.MayIntrospect = false
			c.TokenLifetime = time.Hour
			c.AccessTokenStrategy = storage.StrategyOpaque
			c.TokenEndpointAuthMethod = storage.AuthPrivateKeyJWT
			c.JWKS = ""
			c.JWKSURI = "https://keys.example.com/jwks.json"
			c.DPoPBoundAccessTokens = false
			c.Status = storage.StatusDisabled
			c.DisabledReason = storage.DisabledManually
			c.Generation++
			c.ExpiresAt = time.Date(2032, 7, 8, 9, 10, 11, 987654321, time.FixedZone("PDT", -7*3600))
			c.LastUsedAt = time.Date(2025, 1, 2, 3, 4, 5, 600000000, time.UTC)
			c.CreatedBy = other.ID
		}},
		{"clear optionals and lists", func(c *storage.Client) {
			c.OwnerID = 0
			c.IsDefault = false
			c.SecretHint = ""
			c.AccessRights = ""
			c.PreviousSecretHash = ""
			c.PreviousGeneration = 0
			c.PreviousRetireAt = time.Time{}
			c.CreatedBy = 0
			c.ExpiresAt = time.Time{}
			c.LastUsedAt = time.Time{}
			c.TokenLifetime = 0
			c.GrantTypes = nil
			c.Scopes = []string{}
			c.Description = ""
		}},
		{"reactivate", func(c *storage.Client) {
			c.Enable(time.Date(2026, 3, 4, 5, 6, 7, 800000000, time.UTC))
			c.Kind = storage.KindKey
			c.GrantTypes = []string{"client_credentials"}
		}},
		{"version is the store's", func(c *storage.Client) { c.Version = 1000 }},
		{"no change", func(*storage.Client) {}},
	}
	prev := created
	for _, tt := range tests {
		want := prev
		tt.update(&want)
		want.ExpiresAt, want.LastUsedAt, want.PreviousRetireAt = micro(want.ExpiresAt), micro(want.LastUsedAt), micro(want.PreviousRetireAt)
		want.EnabledAt = micro(want.EnabledAt)
		want.Version = prev.Version + 1

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
		c.Version = 0
		c.Name = "changed"
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateClient(%d): %v", created.ID, err)
	}
	want := created
	want.Name = "changed"
	want.UpdatedAt = got.UpdatedAt
	want.Version = created.Version + 1
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
	if got, want := getClient(t, s, created.ID).Version, created.Version+workers; got != want {
		t.Errorf("Version after %d concurrent updates = %d, want %d", workers, got, want)
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

// testUpdateClientIfMatch is how the management API implements If-Match:
// the update compares the version it was given and refuses a stale one.
func testUpdateClientIfMatch(t *testing.T, s ClientsStore) {
	f := newClientFixture(t, s)
	created := createClient(t, s, f)
	ifMatch := func(version int64, name string) func(*storage.Client) error {
		return func(c *storage.Client) error {
			if c.Version != version {
				return storage.ErrConflict
			}
			c.Name = name
			return nil
		}
	}

	first, err := s.UpdateClient(t.Context(), created.ID, ifMatch(created.Version, "first"))
	if err != nil {
		t.Fatalf("UpdateClient with the current version: %v", err)
	}
	if first.Version != created.Version+1 || first.Name != "first" {
		t.Errorf("UpdateClient = version %d, name %q; want %d, %q", first.Version, first.Name, created.Version+1, "first")
	}
	_, err = s.UpdateClient(t.Context(), created.ID, ifMatch(created.Version, "stale"))
	if !errors.Is(err, storage.ErrConflict) || err.Error() != storage.ErrConflict.Error() {
		t.Errorf("UpdateClient with a stale version: got error %v, want %v unchanged", err, storage.ErrConflict)
	}
	checkDiff(t, "GetClient after a stale update", getClient(t, s, created.ID), first)
}

// newKey returns a key of f's account owned by ownerID.
func (f clientFixture) newKey(ownerID int64, isDefault bool) storage.Client {
	c := f.fullClient()
	c.OwnerID, c.Kind, c.IsDefault = ownerID, storage.KindKey, isDefault
	return c
}

func testDefaultKey(t *testing.T, s ClientsStore) {
	ctx := t.Context()
	f := newClientFixture(t, s)

	def, err := s.CreateClient(ctx, f.newKey(f.owner.ID, true))
	if err != nil {
		t.Fatalf("CreateClient(first default key): %v", err)
	}
	if got, err := s.CreateClient(ctx, f.newKey(f.owner.ID, true)); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("CreateClient(second default key of one owner) = %+v, error %v; want %v", got, err, storage.ErrAlreadyExists)
	}
	var others []storage.Client
	for range 3 {
		c, err := s.CreateClient(ctx, f.newKey(f.owner.ID, false))
		if err != nil {
			t.Fatalf("CreateClient(non-default key next to a default one): %v", err)
		}
		others = append(others, c)
	}
	if _, err := s.CreateClient(ctx, f.newKey(f.creator.ID, true)); err != nil {
		t.Errorf("CreateClient(default key of another owner): %v", err)
	}

	_, err = s.UpdateClient(ctx, others[0].ID, func(c *storage.Client) error { c.IsDefault = true; return nil })
	if !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("UpdateClient(make a second default key): got error %v, want %v", err, storage.ErrAlreadyExists)
	}
	checkDiff(t, "key after a refused update", getClient(t, s, others[0].ID), others[0])

	// Handing the default over: drop the old one, then promote another.
	if err := s.DeleteClient(ctx, def.ID); err != nil {
		t.Fatalf("DeleteClient(%d): %v", def.ID, err)
	}
	promoted, err := s.UpdateClient(ctx, others[0].ID, func(c *storage.Client) error { c.IsDefault = true; return nil })
	if err != nil {
		t.Fatalf("UpdateClient(promote to default after the old one is gone): %v", err)
	}
	if !promoted.IsDefault {
		t.Errorf("promoted key IsDefault = false, want true")
	}
}

// testDeleteUserClients checks that DeleteUser takes the user's credentials
// with them, and no others.
func testDeleteUserClients(t *testing.T, s ClientsStore) {
	ctx := t.Context()
	f := newClientFixture(t, s)
	doomed := createUser(t, s, f.account.ID)

	owned := []storage.Client{}
	for _, isDefault := range []bool{true, false, false} {
		c, err := s.CreateClient(ctx, f.newKey(doomed.ID, isDefault))
		if err != nil {
			t.Fatalf("CreateClient: %v", err)
		}
		owned = append(owned, c)
	}
	// Created by the doomed user for someone else: it stays, without its
	// creator.
	forOther := f.fullClient()
	forOther.CreatedBy = doomed.ID
	forOther, err := s.CreateClient(ctx, forOther)
	if err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
	others := []storage.Client{createClient(t, s, f), createClient(t, s, f)}
	unowned := f.fullClient()
	unowned.OwnerID = 0
	unowned, err = s.CreateClient(ctx, unowned)
	if err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
	others = append(others, unowned)

	if err := s.DeleteUser(ctx, doomed.ID); err != nil {
		t.Fatalf("DeleteUser(%d): %v", doomed.ID, err)
	}
	for _, c := range owned {
		if _, err := s.GetClient(ctx, c.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetClient(%d) owned by a deleted user: got error %v, want %v", c.ID, err, storage.ErrNotFound)
		}
	}
	for _, c := range others {
		checkDiff(t, "client of another owner", getClient(t, s, c.ID), c)
	}
	got := getClient(t, s, forOther.ID)
	want := forOther
	want.CreatedBy, want.Version, want.UpdatedAt = 0, forOther.Version+1, got.UpdatedAt
	checkDiff(t, "client the deleted user created for another", got, want)
	if err := s.DeleteUser(ctx, doomed.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteUser(%d) twice: got error %v, want %v", doomed.ID, err, storage.ErrNotFound)
	}
	if _, err := s.GetUser(ctx, f.owner.ID); err != nil {
		t.Errorf("GetUser(%d) of another user: %v", f.owner.ID, err)
	}
}

func clientID(c storage.Client) int64 { return c.ID }

func testListClients(t *testing.T, s ClientsStore) {
	ctx := t.Context()
	// root ─ a ─ b
	//    └─ sibling
	root := createAccount(t, s, 0)
	a := createAccount(t, s, root.ID)
	b := createAccount(t, s, a.ID)
	sibling := createAccount(t, s, root.ID)
	ua1, ua2, ub := createUser(t, s, a.ID), createUser(t, s, a.ID), createUser(t, s, b.ID)

	create := func(account storage.Account, owner storage.User, kind storage.Kind, status storage.Status) int64 {
		t.Helper()
		c, err := s.CreateClient(ctx, storage.Client{
			AccountID:  account.ID,
			OwnerID:    owner.ID,
			Kind:       kind,
			Name:       uniqueName("client"),
			SecretHash: "h",
			Status:     status,
		})
		if err != nil {
			t.Fatalf("CreateClient: %v", err)
		}
		return c.ID
	}
	none := storage.User{}
	active, disabled := storage.StatusActive, storage.StatusDisabled
	key, client := storage.KindKey, storage.KindClient
	// Interleaved, so that an account's clients are not one run of ids.
	a1 := create(a, ua1, key, active)
	b1 := create(b, ub, key, active)
	a2 := create(a, ua1, client, disabled)
	s1 := create(sibling, none, key, active)
	a3 := create(a, ua2, key, disabled)
	b2 := create(b, ub, client, disabled)
	a4 := create(a, none, client, active)
	r1 := create(root, none, key, active)
	a5 := create(a, ua2, key, active)
	a6 := create(a, ua1, key, active)

	tests := []struct {
		name string
		f    storage.ClientFilter
		want []int64
	}{
		{"account", storage.ClientFilter{AccountID: a.ID}, []int64{a1, a2, a3, a4, a5, a6}},
		{"subtree", storage.ClientFilter{AccountID: a.ID, Subtree: true}, []int64{a1, b1, a2, a3, b2, a4, a5, a6}},
		{"leaf subtree", storage.ClientFilter{AccountID: b.ID, Subtree: true}, []int64{b1, b2}},
		{"sibling subtree", storage.ClientFilter{AccountID: sibling.ID, Subtree: true}, []int64{s1}},
		{"root alone", storage.ClientFilter{AccountID: root.ID}, []int64{r1}},
		{"root subtree", storage.ClientFilter{AccountID: root.ID, Subtree: true}, []int64{a1, b1, a2, s1, a3, b2, a4, r1, a5, a6}},
		{"owner", storage.ClientFilter{AccountID: a.ID, OwnerID: ua1.ID}, []int64{a1, a2, a6}},
		{"owner in another account", storage.ClientFilter{AccountID: a.ID, OwnerID: ub.ID}, nil},
		{"owner in the subtree", storage.ClientFilter{AccountID: a.ID, Subtree: true, OwnerID: ub.ID}, []int64{b1, b2}},
		{"owner alone", storage.ClientFilter{OwnerID: ua2.ID}, []int64{a3, a5}},
		{"keys of a subtree", storage.ClientFilter{AccountID: a.ID, Subtree: true, Kind: key}, []int64{a1, b1, a3, a5, a6}},
		{"clients of a subtree", storage.ClientFilter{AccountID: a.ID, Subtree: true, Kind: client}, []int64{a2, b2, a4}},
		{"active in a subtree", storage.ClientFilter{AccountID: a.ID, Subtree: true, Status: active}, []int64{a1, b1, a4, a5, a6}},
		{"disabled keys", storage.ClientFilter{AccountID: a.ID, Status: disabled, Kind: key}, []int64{a3}},
		{"every filter", storage.ClientFilter{AccountID: root.ID, Subtree: true, OwnerID: ua1.ID, Status: active, Kind: key}, []int64{a1, a6}},
		{"unknown account", storage.ClientFilter{AccountID: unknownID, Subtree: true}, nil},
		{"unknown owner", storage.ClientFilter{OwnerID: unknownID}, nil},
	}
	for _, tt := range tests {
		checkPages(t, tt.name, tt.want, clientID, func(p storage.Page) ([]storage.Client, error) {
			return s.ListClients(ctx, tt.f, p)
		})
	}

	all, err := s.ListClients(ctx, storage.ClientFilter{AccountID: root.ID, Subtree: true}, storage.Page{})
	if err != nil {
		t.Fatalf("ListClients(zero page): %v", err)
	}
	if len(all) != 10 {
		t.Errorf("ListClients(zero page) returned %d clients, want all 10", len(all))
	}
	for _, c := range all {
		checkDiff(t, "listed client", c, getClient(t, s, c.ID))
	}
}

func testTouchClients(t *testing.T, s ClientsStore) {
	ctx := t.Context()
	f := newClientFixture(t, s)
	t0 := time.Date(2030, 5, 6, 7, 8, 9, 123456789, time.FixedZone("EET", 2*3600))
	withLastUse := func(last time.Time) storage.Client {
		t.Helper()
		c := f.fullClient()
		c.LastUsedAt = last
		created, err := s.CreateClient(ctx, c)
		if err != nil {
			t.Fatalf("CreateClient: %v", err)
		}
		return created
	}
	never := withLastUse(time.Time{})
	later := withLastUse(t0.Add(time.Hour))
	earlier := withLastUse(t0.Add(-time.Second))
	same := withLastUse(t0)
	untouched := withLastUse(t0.Add(-time.Hour))

	uses := map[int64]time.Time{
		never.ID:   t0,
		later.ID:   t0,
		earlier.ID: t0,
		same.ID:    t0,
		unknownID:  t0,
	}
	// Many unknown ids: a backend that writes in batches crosses a few.
	for i := range int64(2500) {
		uses[unknownID+1+i] = t0
	}
	if err := s.TouchClients(ctx, uses); err != nil {
		t.Fatalf("TouchClients: %v", err)
	}
	for _, tt := range []struct {
		name   string
		before storage.Client
		want   time.Time
	}{
		{"never used", never, micro(t0)},
		{"used later than the touch", later, micro(t0.Add(time.Hour))},
		{"used earlier than the touch", earlier, micro(t0)},
		{"used at the touch", same, micro(t0)},
		{"not in the touch", untouched, micro(t0.Add(-time.Hour))},
	} {
		got := getClient(t, s, tt.before.ID)
		want := tt.before
		want.LastUsedAt, want.UpdatedAt = tt.want, got.UpdatedAt
		checkDiff(t, tt.name+": client after TouchClients", got, want)
	}

	for _, uses := range []map[int64]time.Time{nil, {}} {
		if err := s.TouchClients(ctx, uses); err != nil {
			t.Errorf("TouchClients(%v): %v", uses, err)
		}
	}
}

// staleCriteria reports whether DisableStale(unusedSince, now) may disable c
// as it was before.
func staleCriteria(c storage.Client, unusedSince, now time.Time) bool {
	lastUse := c.LastUsedAt
	if lastUse.IsZero() {
		lastUse = c.CreatedAt
	}
	return lastUse.Before(unusedSince) || (!c.ExpiresAt.IsZero() && !c.ExpiresAt.After(now))
}

// staleReason is why DisableStale(…, now) disables c: its expiry first.
func staleReason(c storage.Client, now time.Time) storage.DisabledReason {
	if !c.ExpiresAt.IsZero() && !c.ExpiresAt.After(now) {
		return storage.DisabledExpired
	}
	return storage.DisabledUnused
}

// disableStale calls DisableStale, checks what every returned client must
// satisfy, and returns them by id.
func disableStale(t *testing.T, s ClientsStore, unusedSince, now time.Time) map[int64]storage.Client {
	t.Helper()
	got, err := s.DisableStale(t.Context(), unusedSince, now)
	if err != nil {
		t.Fatalf("DisableStale(%v, %v): %v", unusedSince, now, err)
	}
	byID := map[int64]storage.Client{}
	for _, c := range got {
		if _, dup := byID[c.ID]; dup {
			t.Errorf("DisableStale returned client %d twice", c.ID)
		}
		byID[c.ID] = c
		if c.Status != storage.StatusDisabled {
			t.Errorf("DisableStale returned client %d with status %q, want %q", c.ID, c.Status, storage.StatusDisabled)
		}
		if !staleCriteria(c, unusedSince, now) {
			t.Errorf("DisableStale(%v, %v) returned client %d, last used %v, created %v, expires %v: not stale", unusedSince, now, c.ID, c.LastUsedAt, c.CreatedAt, c.ExpiresAt)
		}
		if want := staleReason(c, now); c.DisabledReason != want {
			t.Errorf("DisableStale returned client %d, expires %v, with reason %q, want %q", c.ID, c.ExpiresAt, c.DisabledReason, want)
		}
	}
	return byID
}

func testDisableStale(t *testing.T, s ClientsStore) {
	ctx := t.Context()
	f := newClientFixture(t, s)
	now := time.Now()
	unusedSince := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	recently := unusedSince.Add(24 * time.Hour)

	create := func(modify func(*storage.Client)) storage.Client {
		t.Helper()
		c := f.fullClient()
		c.LastUsedAt, c.ExpiresAt = recently, time.Time{}
		modify(&c)
		created, err := s.CreateClient(ctx, c)
		if err != nil {
			t.Fatalf("CreateClient: %v", err)
		}
		return created
	}
	unused := create(func(c *storage.Client) {
		c.LastUsedAt = unusedSince.Add(-time.Microsecond)
		// A rotation left a previous secret of a later generation.
		c.Generation, c.PreviousGeneration = 7, 9
	})
	expired := create(func(c *storage.Client) { c.ExpiresAt = now.Add(-time.Hour) })
	expiresNow := create(func(c *storage.Client) { c.ExpiresAt = micro(now) })
	tests := []struct {
		name    string
		c       storage.Client
		disable bool
	}{
		{"unused", unused, true},
		{"expired", expired, true},
		{"expires at now", expiresNow, true},
		{"used recently", create(func(*storage.Client) {}), false},
		{"used at unusedSince", create(func(c *storage.Client) { c.LastUsedAt = unusedSince }), false},
		{"expires later", create(func(c *storage.Client) { c.ExpiresAt = now.Add(time.Hour) }), false},
		{"never used, created now", create(func(c *storage.Client) { c.LastUsedAt = time.Time{} }), false},
		{"already disabled", create(func(c *storage.Client) {
			c.Status = storage.StatusDisabled
			c.DisabledReason = storage.DisabledManually
			c.LastUsedAt = unusedSince.Add(-time.Hour)
			c.ExpiresAt = now.Add(-time.Hour)
		}), false},
		// Enabling again starts a fresh grace period, so the sweep does not
		// take back at once a credential someone switched on.
		{"used long ago, enabled again since", create(func(c *storage.Client) {
			c.LastUsedAt = unusedSince.Add(-time.Hour)
			c.EnabledAt = recently
		}), false},
		{"used long ago, enabled again long ago too", create(func(c *storage.Client) {
			c.LastUsedAt = unusedSince.Add(-2 * time.Hour)
			c.EnabledAt = unusedSince.Add(-time.Hour)
		}), true},
		{"enabled again long ago, used since", create(func(c *storage.Client) {
			c.EnabledAt = unusedSince.Add(-time.Hour)
		}), false},
		{"unused and expired", create(func(c *storage.Client) {
			c.LastUsedAt = unusedSince.Add(-time.Hour)
			c.ExpiresAt = now.Add(-time.Hour)
		}), true},
	}

	got := disableStale(t, s, unusedSince, now)
	for _, tt := range tests {
		returned, ok := got[tt.c.ID]
		stored := getClient(t, s, tt.c.ID)
		if !tt.disable {
			if ok {
				t.Errorf("%s: DisableStale returned client %d, want it kept", tt.name, tt.c.ID)
			}
			checkDiff(t, tt.name+": kept client", stored, tt.c)
			continue
		}
		if !ok {
			t.Errorf("%s: DisableStale did not return client %d", tt.name, tt.c.ID)
			continue
		}
		want := tt.c
		want.Revoke()
		want.Status = storage.StatusDisabled
		want.DisabledReason = staleReason(tt.c, now)
		want.Version = tt.c.Version + 1
		want.UpdatedAt = stored.UpdatedAt
		if stored.UpdatedAt.Before(tt.c.UpdatedAt) {
			t.Errorf("%s: UpdatedAt moved back from %v to %v", tt.name, tt.c.UpdatedAt, stored.UpdatedAt)
		}
		checkDiff(t, tt.name+": disabled client as returned", returned, want)
		checkDiff(t, tt.name+": disabled client as stored", stored, want)
	}
	if g := getClient(t, s, unused.ID).Generation; g != 10 {
		t.Errorf("generation after disabling a client of generation 7 with a previous one of 9 = %d, want 10", g)
	}

	// Nothing is disabled twice.
	for id := range disableStale(t, s, unusedSince, now) {
		for _, tt := range tests {
			if id == tt.c.ID {
				t.Errorf("second DisableStale returned client %d (%s) again", id, tt.name)
			}
		}
	}

	// A client never used counts from its creation. This cut-off disables
	// the stale clients of every test on a shared store.
	neverUsed := tests[6].c
	later := disableStale(t, s, neverUsed.CreatedAt.Add(time.Microsecond), now)
	if c, ok := later[neverUsed.ID]; !ok || c.Status != storage.StatusDisabled {
		t.Errorf("DisableStale(just after its creation) did not disable a client never used: got %+v", c)
	}
}

// testDisabledReason: why a client is disabled is stored with its status;
// an active client has no reason, whatever the caller left in the field,
// and an unknown reason is refused.
func testDisabledReason(t *testing.T, s ClientsStore) {
	ctx := t.Context()
	f := newClientFixture(t, s)
	for _, reason := range []storage.DisabledReason{storage.DisabledManually, storage.DisabledUnused, storage.DisabledExpired, storage.DisabledUser, storage.DisabledLeaked, storage.DisabledByHolder} {
		c := f.fullClient()
		c.Status, c.DisabledReason = storage.StatusDisabled, reason
		created, err := s.CreateClient(ctx, c)
		if err != nil {
			t.Fatalf("CreateClient(disabled, %q): %v", reason, err)
		}
		if created.DisabledReason != reason || getClient(t, s, created.ID).DisabledReason != reason {
			t.Errorf("created disabled for %q: got %q, stored %q", reason, created.DisabledReason, getClient(t, s, created.ID).DisabledReason)
		}
	}

	c := f.fullClient()
	c.DisabledReason = storage.DisabledUnused
	created, err := s.CreateClient(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if created.DisabledReason != "" || getClient(t, s, created.ID).DisabledReason != "" {
		t.Errorf("an active client was stored with reason %q", getClient(t, s, created.ID).DisabledReason)
	}

	got, err := s.UpdateClient(ctx, created.ID, func(c *storage.Client) error { c.Disable(storage.DisabledUser); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != storage.StatusDisabled || got.DisabledReason != storage.DisabledUser || getClient(t, s, created.ID).DisabledReason != storage.DisabledUser {
		t.Errorf("disabled for its owner: got %q %q, stored %q", got.Status, got.DisabledReason, getClient(t, s, created.ID).DisabledReason)
	}
	// Switched on without clearing the field: no reason comes back.
	got, err = s.UpdateClient(ctx, created.ID, func(c *storage.Client) error { c.Status = storage.StatusActive; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if got.DisabledReason != "" || getClient(t, s, created.ID).DisabledReason != "" {
		t.Errorf("enabled: got reason %q, stored %q; want none", got.DisabledReason, getClient(t, s, created.ID).DisabledReason)
	}

	before := getClient(t, s, created.ID)
	if _, err := s.UpdateClient(ctx, created.ID, func(c *storage.Client) error {
		c.Status, c.DisabledReason = storage.StatusDisabled, "bored"
		return nil
	}); err == nil {
		t.Error("UpdateClient stored an unknown disabled reason")
	}
	checkDiff(t, "client after a refused reason", getClient(t, s, created.ID), before)
	c.Status, c.DisabledReason = storage.StatusDisabled, "bored"
	if got, err := s.CreateClient(ctx, c); err == nil {
		t.Errorf("CreateClient stored an unknown disabled reason: %+v", got)
	}
}

// testDisableStaleConcurrent runs DisableStale from several goroutines at
// once: every stale client is reported by exactly one of them.
func testDisableStaleConcurrent(t *testing.T, s ClientsStore) {
	const (
		workers = 4
		stale   = 30
	)
	f := newClientFixture(t, s)
	unusedSince := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	want := map[int64]bool{}
	for range stale {
		c := f.fullClient()
		c.LastUsedAt = unusedSince.Add(-time.Hour)
		created, err := s.CreateClient(t.Context(), c)
		if err != nil {
			t.Fatalf("CreateClient: %v", err)
		}
		want[created.ID] = true
	}

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		reported = map[int64]int{}
	)
	now := time.Now()
	for range workers {
		wg.Go(func() {
			got, err := s.DisableStale(t.Context(), unusedSince, now)
			if err != nil {
				t.Errorf("concurrent DisableStale: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, c := range got {
				reported[c.ID]++
			}
		})
	}
	wg.Wait()

	for id, n := range reported {
		if n > 1 {
			t.Errorf("client %d reported by %d concurrent DisableStale calls, want 1", id, n)
		}
	}
	for id := range want {
		if reported[id] != 1 {
			t.Errorf("stale client %d reported %d times, want once", id, reported[id])
		}
		if c := getClient(t, s, id); c.Status != storage.StatusDisabled || c.Version != 2 {
			t.Errorf("client %d after concurrent DisableStale: status %q, version %d; want disabled, 2", id, c.Status, c.Version)
		}
	}
}

// testListClientsByName checks ClientFilter.Name: a part of the name, in
// any case, with LIKE's wildcards matching only themselves.
func testListClientsByName(t *testing.T, s ClientsStore) {
	ctx := t.Context()
	acc := createAccount(t, s, 0)
	other := createAccount(t, s, 0)
	ids := map[string]int64{}
	for _, n := range []string{"Billing Sync", "billing-export", "Reports 100%", "under_score", "Other"} {
		for _, a := range []storage.Account{acc, other} {
			c, err := s.CreateClient(ctx, storage.Client{AccountID: a.ID, Kind: storage.KindKey, Name: n, SecretHash: "h", Status: storage.StatusActive})
			if err != nil {
				t.Fatalf("CreateClient: %v", err)
			}
			if a.ID == acc.ID {
				ids[n] = c.ID
			}
		}
	}
	tests := []struct {
		name string
		want []int64
	}{
		{"billing", []int64{ids["Billing Sync"], ids["billing-export"]}},
		{"SYNC", []int64{ids["Billing Sync"]}},
		{"100%", []int64{ids["Reports 100%"]}},
		{"%", []int64{ids["Reports 100%"]}},
		{"_", []int64{ids["under_score"]}},
		{"s_n", nil}, // a wildcard would match "Sync"
		{`\`, nil},
		{"nothing like it", nil},
		{"", []int64{ids["Billing Sync"], ids["billing-export"], ids["Reports 100%"], ids["under_score"], ids["Other"]}},
	}
	for _, tt := range tests {
		checkPages(t, "name "+tt.name, tt.want, clientID, func(p storage.Page) ([]storage.Client, error) {
			return s.ListClients(ctx, storage.ClientFilter{AccountID: acc.ID, Name: tt.name}, p)
		})
	}
}
