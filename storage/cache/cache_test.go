package cache_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/cache"
	"github.com/tollgate/tollgate/storage/conformance"
	sqlstore "github.com/tollgate/tollgate/storage/sql"
	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

// backends are the databases every test runs on. PostgreSQL is skipped when
// unreachable, except in CI.
var backends = []struct {
	name string
	url  func(t *testing.T) string
}{
	{"sqlite", sqltest.SQLite},
	{"postgres", sqltest.Postgres},
}

// openSQL opens and migrates a store on the database at url.
func openSQL(t *testing.T, url string) *sqlstore.Store {
	t.Helper()
	// Off the production query timeout (2 s), which a 2,500-row
	// TouchClients on SQLite under -race spent on a loaded machine: the
	// suites check what the store does, not how fast.
	s, err := sqlstore.Open(t.Context(), sqlstore.Options{URL: url, QueryTimeout: time.Minute})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if _, err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

// The decorated store passes every relational suite: with the defaults, and
// with a table so small that entries are evicted all the time.
func TestConformance(t *testing.T) {
	variants := []struct {
		name string
		opts cache.Options
	}{
		{"defaults", cache.Options{}},
		{"tiny", cache.Options{MaxEntries: 4}},
	}
	for _, b := range backends {
		for _, v := range variants {
			t.Run(b.name+"/"+v.name, func(t *testing.T) {
				s := cache.New(openSQL(t, b.url(t)), v.opts)
				t.Run("Accounts", func(t *testing.T) {
					conformance.RunAccounts(t, func(*testing.T) storage.Accounts { return s })
				})
				t.Run("Users", func(t *testing.T) {
					conformance.RunUsers(t, func(*testing.T) conformance.UsersStore { return s })
				})
				t.Run("Clients", func(t *testing.T) {
					conformance.RunClients(t, func(*testing.T) conformance.ClientsStore { return s })
				})
				t.Run("Audit", func(t *testing.T) {
					conformance.RunAudit(t, func(*testing.T) conformance.AuditStore { return s })
				})
				t.Run("Transactions", func(t *testing.T) {
					conformance.RunTransactions(t, func(*testing.T) conformance.TxStore { return s })
				})
			})
		}
	}
}

// counting passes every call to the real store and counts the cached reads.
type counting struct {
	cache.Backend
	clients, users, active, subtree atomic.Int64
	// failClient makes the next GetClient fail as an outage would.
	failClient atomic.Bool
	// downClient makes every GetClient fail while it is set.
	downClient atomic.Bool
	// beforeGetClient, when set before the test's reads start, runs at the
	// start of every GetClient.
	beforeGetClient func()
	// afterGetClient, likewise, runs after the backend answered.
	afterGetClient func()
}

var errOutage = errors.New("database unreachable")

func (c *counting) GetClient(ctx context.Context, id int64) (storage.Client, error) {
	c.clients.Add(1)
	if c.beforeGetClient != nil {
		c.beforeGetClient()
	}
	if c.failClient.CompareAndSwap(true, false) || c.downClient.Load() {
		return storage.Client{}, errOutage
	}
	got, err := c.Backend.GetClient(ctx, id)
	if c.afterGetClient != nil {
		c.afterGetClient()
	}
	return got, err
}

func (c *counting) GetUser(ctx context.Context, id int64) (storage.User, error) {
	c.users.Add(1)
	return c.Backend.GetUser(ctx, id)
}

func (c *counting) AccountActive(ctx context.Context, id int64) (bool, error) {
	c.active.Add(1)
	return c.Backend.AccountActive(ctx, id)
}

func (c *counting) AccountInSubtree(ctx context.Context, rootID, id int64) (bool, error) {
	c.subtree.Add(1)
	return c.Backend.AccountInSubtree(ctx, rootID, id)
}

// clock is a settable Options.Now.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// fixture is a root account with a child, a user of the child and a client
// of that user, created in the real store behind the cache.
type fixture struct {
	root, child storage.Account
	user        storage.User
	client      storage.Client
}

func newFixture(t *testing.T, s storage.Store) fixture {
	t.Helper()
	ctx := t.Context()
	var (
		f   fixture
		err error
	)
	if f.root, err = s.CreateAccount(ctx, storage.Account{Name: "root", Status: storage.StatusActive}); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	if f.child, err = s.CreateAccount(ctx, storage.Account{ParentID: f.root.ID, Name: "child", Status: storage.StatusActive}); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	if f.user, err = s.CreateUser(ctx, storage.User{AccountID: f.child.ID, Username: "u-" + time.Now().Format("150405.000000000"), PasswordHash: "h", Role: storage.RoleAdmin, Status: storage.StatusActive}); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	f.client = newClient(t, s, f)
	return f
}

func newClient(t *testing.T, s storage.Clients, f fixture) storage.Client {
	t.Helper()
	c, err := s.CreateClient(t.Context(), storage.Client{
		AccountID:  f.child.ID,
		OwnerID:    f.user.ID,
		Kind:       storage.KindKey,
		Name:       "exporter",
		SecretHash: "hash",
		GrantTypes: []string{"client_credentials"},
		Scopes:     []string{"read", "write"},
		Status:     storage.StatusActive,
		Generation: 1,
	})
	if err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
	return c
}

// setup is one test's cache over a counting wrapper of a fresh database.
type setup struct {
	sql   *sqlstore.Store
	inner *counting
	cache *cache.Store
	clock *clock
	f     fixture
}

func newSetup(t *testing.T, url string, opts cache.Options) setup {
	t.Helper()
	sql := openSQL(t, url)
	inner := &counting{Backend: sql}
	clk := newClock()
	if opts.Now == nil {
		opts.Now = clk.now
	}
	return setup{sql: sql, inner: inner, cache: cache.New(inner, opts), clock: clk, f: newFixture(t, sql)}
}

func forBackends(t *testing.T, test func(t *testing.T, url string)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, b.url(t)) })
	}
}

func mustGetClient(t *testing.T, s storage.Clients, id int64) storage.Client {
	t.Helper()
	c, err := s.GetClient(t.Context(), id)
	if err != nil {
		t.Fatalf("GetClient(%d): %v", id, err)
	}
	return c
}

func wantCalls(t *testing.T, what string, n *atomic.Int64, want int64) {
	t.Helper()
	if got := n.Load(); got != want {
		t.Errorf("%s: backend called %d times, want %d", what, got, want)
	}
}

// A second read of each cached method is answered without the backend, and
// answers the same.
func TestSecondReadFromCache(t *testing.T) {
	forBackends(t, func(t *testing.T, url string) {
		s := newSetup(t, url, cache.Options{})
		ctx := t.Context()
		for range 3 {
			if got := mustGetClient(t, s.cache, s.f.client.ID); !reflect.DeepEqual(got, s.f.client) {
				t.Errorf("GetClient = %+v, want %+v", got, s.f.client)
			}
			if got, err := s.cache.GetUser(ctx, s.f.user.ID); err != nil || got != s.f.user {
				t.Errorf("GetUser = %+v, %v; want %+v", got, err, s.f.user)
			}
			if got, err := s.cache.AccountActive(ctx, s.f.child.ID); err != nil || !got {
				t.Errorf("AccountActive = %v, %v; want true", got, err)
			}
			if got, err := s.cache.AccountInSubtree(ctx, s.f.root.ID, s.f.child.ID); err != nil || !got {
				t.Errorf("AccountInSubtree(root, child) = %v, %v; want true", got, err)
			}
			if got, err := s.cache.AccountInSubtree(ctx, s.f.child.ID, s.f.root.ID); err != nil || got {
				t.Errorf("AccountInSubtree(child, root) = %v, %v; want false", got, err)
			}
		}
		wantCalls(t, "GetClient", &s.inner.clients, 1)
		wantCalls(t, "GetUser", &s.inner.users, 1)
		wantCalls(t, "AccountActive", &s.inner.active, 1)
		wantCalls(t, "AccountInSubtree", &s.inner.subtree, 2)
		// Five reads asked the backend; the ten others were answered from
		// the table.
		if got, want := s.cache.Stats(), (cache.Stats{Hits: 10, Misses: 5, Entries: 5}); got != want {
			t.Errorf("Stats() = %+v, want %+v", got, want)
		}
	})
}

// A caller changing the slices of a returned client changes nothing cached.
func TestReturnedClientIsACopy(t *testing.T) {
	s := newSetup(t, sqltest.SQLite(t), cache.Options{})
	got := mustGetClient(t, s.cache, s.f.client.ID)
	got.Scopes[0], got.GrantTypes[0] = "admin", "password"
	if again := mustGetClient(t, s.cache, s.f.client.ID); !reflect.DeepEqual(again, s.f.client) {
		t.Errorf("GetClient after changing a returned client = %+v, want %+v", again, s.f.client)
	}
}

// writeTests are the methods of storage.Store that change a record the
// cache holds, each with a write and a read that must see it.
// TestEveryMethodClassified keeps it complete.
var writeTests = []struct {
	name string
	// write changes the store through c; check reads through c and
	// fails the test when the change is not seen.
	write func(t *testing.T, c storage.Store, f fixture)
	check func(t *testing.T, c *cache.Store, f fixture)
}{
	{
		name: "CreateAccount",
		write: func(t *testing.T, c storage.Store, f fixture) {
			a, err := c.CreateAccount(t.Context(), storage.Account{ParentID: f.child.ID, Name: "grandchild", Status: storage.StatusActive})
			if err != nil {
				t.Fatalf("CreateAccount: %v", err)
			}
			if a.ID != f.child.ID+1 {
				t.Fatalf("CreateAccount: id %d, want %d (the id warm read as unknown)", a.ID, f.child.ID+1)
			}
		},
		check: func(t *testing.T, c *cache.Store, f fixture) {
			if got, err := c.AccountActive(t.Context(), f.child.ID+1); err != nil || !got {
				t.Errorf("AccountActive of a new account read as unknown before = %v, %v; want true", got, err)
			}
		},
	},
	{
		name: "CreateUser",
		write: func(t *testing.T, c storage.Store, f fixture) {
			u, err := c.CreateUser(t.Context(), storage.User{AccountID: f.child.ID, Username: "second-" + strconv.FormatInt(f.user.ID, 10), PasswordHash: "h", Role: storage.RoleAdmin, Status: storage.StatusActive})
			if err != nil {
				t.Fatalf("CreateUser: %v", err)
			}
			if u.ID != f.user.ID+1 {
				t.Fatalf("CreateUser: id %d, want %d (the id warm read as unknown)", u.ID, f.user.ID+1)
			}
		},
		check: func(t *testing.T, c *cache.Store, f fixture) {
			if got, err := c.GetUser(t.Context(), f.user.ID+1); err != nil || got.ID != f.user.ID+1 {
				t.Errorf("GetUser of a new user read as unknown before = %+v, %v; want user %d", got, err, f.user.ID+1)
			}
		},
	},
	{
		name: "CreateClient",
		write: func(t *testing.T, c storage.Store, f fixture) {
			if got := newClient(t, c, f); got.ID != f.client.ID+1 {
				t.Fatalf("CreateClient: id %d, want %d (the id warm read as unknown)", got.ID, f.client.ID+1)
			}
		},
		check: func(t *testing.T, c *cache.Store, f fixture) {
			if got, err := c.GetClient(t.Context(), f.client.ID+1); err != nil || got.ID != f.client.ID+1 {
				t.Errorf("GetClient of a new client read as unknown before = %+v, %v; want client %d", got, err, f.client.ID+1)
			}
		},
	},
	{
		name: "UpdateClient",
		write: func(t *testing.T, c storage.Store, f fixture) {
			if _, err := c.UpdateClient(t.Context(), f.client.ID, func(c *storage.Client) error {
				c.Status = storage.StatusDisabled
				c.Revoke()
				return nil
			}); err != nil {
				t.Fatalf("UpdateClient: %v", err)
			}
		},
		check: func(t *testing.T, c *cache.Store, f fixture) {
			if got := mustGetClient(t, c, f.client.ID); got.Status != storage.StatusDisabled || got.Generation == f.client.Generation {
				t.Errorf("client after disabling: status %s, generation %d; want disabled, not %d", got.Status, got.Generation, f.client.Generation)
			}
		},
	},
	{
		name: "DeleteClient",
		write: func(t *testing.T, c storage.Store, f fixture) {
			if err := c.DeleteClient(t.Context(), f.client.ID); err != nil {
				t.Fatalf("DeleteClient: %v", err)
			}
		},
		check: func(t *testing.T, c *cache.Store, f fixture) {
			if _, err := c.GetClient(t.Context(), f.client.ID); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("GetClient of a deleted client: got error %v, want %v", err, storage.ErrNotFound)
			}
		},
	},
	{
		name: "UpdateUser",
		write: func(t *testing.T, c storage.Store, f fixture) {
			if _, err := c.UpdateUser(t.Context(), f.user.ID, func(u *storage.User) error {
				u.Status = storage.StatusDisabled
				return nil
			}); err != nil {
				t.Fatalf("UpdateUser: %v", err)
			}
		},
		check: func(t *testing.T, c *cache.Store, f fixture) {
			if got, err := c.GetUser(t.Context(), f.user.ID); err != nil || got.Status != storage.StatusDisabled {
				t.Errorf("GetUser after disabling = %+v, %v; want disabled", got, err)
			}
		},
	},
	{
		name: "DeleteUser",
		write: func(t *testing.T, c storage.Store, f fixture) {
			if err := c.DeleteUser(t.Context(), f.user.ID); err != nil {
				t.Fatalf("DeleteUser: %v", err)
			}
		},
		check: func(t *testing.T, c *cache.Store, f fixture) {
			if _, err := c.GetUser(t.Context(), f.user.ID); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("GetUser of a deleted user: got error %v, want %v", err, storage.ErrNotFound)
			}
			if _, err := c.GetClient(t.Context(), f.client.ID); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("GetClient of a deleted user's client: got error %v, want %v", err, storage.ErrNotFound)
			}
		},
	},
	{
		name: "UpdateAccount",
		write: func(t *testing.T, c storage.Store, f fixture) {
			if _, err := c.UpdateAccount(t.Context(), f.root.ID, func(a *storage.Account) error {
				a.Status = storage.StatusDisabled
				return nil
			}); err != nil {
				t.Fatalf("UpdateAccount: %v", err)
			}
		},
		check: func(t *testing.T, c *cache.Store, f fixture) {
			if got, err := c.AccountActive(t.Context(), f.child.ID); err != nil || got {
				t.Errorf("AccountActive(child) after disabling its parent = %v, %v; want false", got, err)
			}
		},
	},
	{
		name: "DisableStale",
		write: func(t *testing.T, c storage.Store, f fixture) {
			now := time.Now().Add(time.Hour)
			disabled, err := c.DisableStale(t.Context(), now, now)
			if err != nil {
				t.Fatalf("DisableStale: %v", err)
			}
			if !slices.ContainsFunc(disabled, func(d storage.Client) bool { return d.ID == f.client.ID }) {
				t.Fatalf("DisableStale = %+v, want client %d among them", disabled, f.client.ID)
			}
		},
		check: func(t *testing.T, c *cache.Store, f fixture) {
			if got := mustGetClient(t, c, f.client.ID); got.Status != storage.StatusDisabled {
				t.Errorf("client after DisableStale: status %s, want disabled", got.Status)
			}
		},
	},
}

// Every write through the cache, or through a transaction of the cache,
// makes the next read through the cache see it.
func TestWritesInvalidate(t *testing.T) {
	ways := []struct {
		name  string
		write func(t *testing.T, c *cache.Store, write func(*testing.T, storage.Store))
	}{
		{"direct", func(t *testing.T, c *cache.Store, write func(*testing.T, storage.Store)) { write(t, c) }},
		{"InTx", func(t *testing.T, c *cache.Store, write func(*testing.T, storage.Store)) {
			if err := c.InTx(t.Context(), func(tx storage.Store) error { write(t, tx); return nil }); err != nil {
				t.Fatalf("InTx: %v", err)
			}
		}},
	}
	forBackends(t, func(t *testing.T, url string) {
		for _, way := range ways {
			for _, tt := range writeTests {
				t.Run(way.name+"/"+tt.name, func(t *testing.T) {
					// A TTL no test outlives: only invalidation can refresh.
					s := newSetup(t, url, cache.Options{TTL: time.Hour})
					warm(t, s.cache, s.f)
					warmUnknown(t, s.cache, s.f)
					way.write(t, s.cache, func(t *testing.T, c storage.Store) { tt.write(t, c, s.f) })
					tt.check(t, s.cache, s.f)
				})
			}
		}
	})
}

// unchangingMethods are the methods of storage.Store that change no record
// the cache holds, so Store passes them through by embedding: the reads
// (cached or not), the audit trail, and the touches, which move LastUsedAt
// without evicting (TestTouchKeepsEntry).
var unchangingMethods = []string{
	"GetAccount", "ListChildren", "AccountInSubtree", "AccountActive", "AccountStanding", "EffectivePolicies", "AccountBudgets",
	"GetUser", "GetUserByUsername", "ListUsers",
	"GetClient", "ListClients", "TouchClient", "TouchClients",
	"AppendAudit", "ListAudit",
	// Federated credentials are not cached: every read goes to the backend.
	"CreateFederatedCredential", "ListFederatedCredentials", "DeleteFederatedCredential",
	// Webhooks and their deliveries are not cached either; the expiring
	// credentials are read straight from the backend.
	"CreateWebhook", "GetWebhook", "ListWebhooks", "UpdateWebhook", "DeleteWebhook", "WebhooksFor",
	"EnqueueDeliveries", "ClaimDeliveries", "FinishAttempt", "ListDeliveries", "PruneDeliveries", "ClientsExpiringBetween",
}

// Every method of storage.Store is either a write TestWritesInvalidate
// checks or one known to change no cached record: a new method, which Store
// would pass through by embedding without evicting anything, fails here
// until it is classified (and, when it writes, overridden in writes).
func TestEveryMethodClassified(t *testing.T) {
	classified := slices.Clone(unchangingMethods)
	for _, tt := range writeTests {
		classified = append(classified, tt.name)
	}
	iface := reflect.TypeFor[storage.Store]()
	for i := range iface.NumMethod() {
		if name := iface.Method(i).Name; !slices.Contains(classified, name) {
			t.Errorf("storage.Store.%s is neither in writeTests nor in unchangingMethods", name)
		}
	}
}

// warmUnknown reads the next ids of f's records through c, so that they
// are cached as unknown.
func warmUnknown(t *testing.T, c *cache.Store, f fixture) {
	t.Helper()
	ctx := t.Context()
	if _, err := c.AccountActive(ctx, f.child.ID+1); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("AccountActive of an unknown account: got error %v, want %v", err, storage.ErrNotFound)
	}
	if _, err := c.GetUser(ctx, f.user.ID+1); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetUser of an unknown user: got error %v, want %v", err, storage.ErrNotFound)
	}
	if _, err := c.GetClient(ctx, f.client.ID+1); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetClient of an unknown client: got error %v, want %v", err, storage.ErrNotFound)
	}
}

// warm reads everything of f through c, so that it is cached.
func warm(t *testing.T, c *cache.Store, f fixture) {
	t.Helper()
	ctx := t.Context()
	mustGetClient(t, c, f.client.ID)
	if _, err := c.GetUser(ctx, f.user.ID); err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	if _, err := c.AccountActive(ctx, f.child.ID); err != nil {
		t.Fatalf("AccountActive: %v", err)
	}
	if _, err := c.AccountInSubtree(ctx, f.root.ID, f.child.ID); err != nil {
		t.Fatalf("AccountInSubtree: %v", err)
	}
}

// TouchClient and TouchClients keep the entry (no query on the next read)
// and move its LastUsedAt forward.
func TestTouchKeepsEntry(t *testing.T) {
	s := newSetup(t, sqltest.SQLite(t), cache.Options{TTL: time.Hour})
	ctx := t.Context()
	mustGetClient(t, s.cache, s.f.client.ID)
	at := time.Date(2030, 5, 6, 7, 8, 9, 123456789, time.UTC)
	if err := s.cache.TouchClient(ctx, s.f.client.ID, at); err != nil {
		t.Fatalf("TouchClient: %v", err)
	}
	if got := mustGetClient(t, s.cache, s.f.client.ID); !got.LastUsedAt.Equal(at.Truncate(time.Microsecond)) {
		t.Errorf("LastUsedAt after TouchClient = %v, want %v", got.LastUsedAt, at.Truncate(time.Microsecond))
	}
	later := at.Add(time.Hour)
	if err := s.cache.TouchClients(ctx, map[int64]time.Time{s.f.client.ID: later, 1 << 60: later}); err != nil {
		t.Fatalf("TouchClients: %v", err)
	}
	if got := mustGetClient(t, s.cache, s.f.client.ID); !got.LastUsedAt.Equal(later.Truncate(time.Microsecond)) {
		t.Errorf("LastUsedAt after TouchClients = %v, want %v", got.LastUsedAt, later.Truncate(time.Microsecond))
	}
	wantCalls(t, "GetClient", &s.inner.clients, 1)
}

// recordingBus records what is published; it hears nothing.
type recordingBus struct {
	mu   sync.Mutex
	msgs []string
}

func (b *recordingBus) Publish(_ context.Context, msg string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.msgs = append(b.msgs, msg)
	return nil
}

func (b *recordingBus) Subscribe(ctx context.Context, _ func(string)) (func(), error) {
	return func() {}, nil
}

func (b *recordingBus) published() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.msgs)
}

// A write inside a rolled back InTx leaves what is read as it was and
// announces nothing; a committed one is seen at once and announced after
// the commit, not before.
func TestInTx(t *testing.T) {
	forBackends(t, func(t *testing.T, url string) {
		bus := &recordingBus{}
		s := newSetup(t, url, cache.Options{TTL: time.Hour, Bus: bus})
		ctx := t.Context()
		before := mustGetClient(t, s.cache, s.f.client.ID)

		errBoom := errors.New("boom")
		err := s.cache.InTx(ctx, func(tx storage.Store) error {
			if _, err := tx.UpdateClient(ctx, s.f.client.ID, func(c *storage.Client) error { c.Name = "rolled back"; return nil }); err != nil {
				return err
			}
			if got := mustGetClient(t, tx, s.f.client.ID); got.Name != "rolled back" {
				t.Errorf("GetClient inside the transaction: name %q, want %q", got.Name, "rolled back")
			}
			return errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("InTx: got error %v, want %v", err, errBoom)
		}
		if got := mustGetClient(t, s.cache, s.f.client.ID); !reflect.DeepEqual(got, before) {
			t.Errorf("client after a rolled back update = %+v, want %+v", got, before)
		}
		if got := bus.published(); len(got) != 0 {
			t.Errorf("published after a rollback: %q, want nothing", got)
		}

		err = s.cache.InTx(ctx, func(tx storage.Store) error {
			if _, err := tx.UpdateClient(ctx, s.f.client.ID, func(c *storage.Client) error { c.Name = "committed"; return nil }); err != nil {
				return err
			}
			if got := bus.published(); len(got) != 0 {
				t.Errorf("published before the commit: %q", got)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("InTx: %v", err)
		}
		if got := mustGetClient(t, s.cache, s.f.client.ID); got.Name != "committed" {
			t.Errorf("client after a committed update: name %q, want %q", got.Name, "committed")
		}
		if got, want := bus.published(), []string{"c:" + strconv.FormatInt(s.f.client.ID, 10)}; !slices.Equal(got, want) {
			t.Errorf("published after the commit: %q, want %q", got, want)
		}
	})
}

// A read racing a transaction cannot leave the old value cached: the value
// read while the transaction is open is evicted again after the commit.
func TestInTxConcurrentRead(t *testing.T) {
	s := newSetup(t, sqltest.Postgres(t), cache.Options{TTL: time.Hour})
	ctx := t.Context()
	mustGetClient(t, s.cache, s.f.client.ID)
	err := s.cache.InTx(ctx, func(tx storage.Store) error {
		if _, err := tx.UpdateClient(ctx, s.f.client.ID, func(c *storage.Client) error { c.Name = "new"; return nil }); err != nil {
			return err
		}
		// Another request reads the committed (old) value meanwhile.
		if got := mustGetClient(t, s.cache, s.f.client.ID); got.Name != s.f.client.Name {
			t.Errorf("GetClient outside the open transaction: name %q, want %q", got.Name, s.f.client.Name)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}
	if got := mustGetClient(t, s.cache, s.f.client.ID); got.Name != "new" {
		t.Errorf("client after the commit: name %q, want %q", got.Name, "new")
	}
}

// An entry is served until TTL has passed since it was read, then read again.
func TestTTL(t *testing.T) {
	const ttl = 5 * time.Second
	s := newSetup(t, sqltest.SQLite(t), cache.Options{TTL: ttl})
	first := mustGetClient(t, s.cache, s.f.client.ID)
	// Changed behind the cache's back: only expiry can reveal it.
	if _, err := s.sql.UpdateClient(t.Context(), s.f.client.ID, func(c *storage.Client) error { c.Name = "changed again"; return nil }); err != nil {
		t.Fatalf("UpdateClient: %v", err)
	}
	s.clock.advance(ttl - time.Nanosecond)
	if got := mustGetClient(t, s.cache, s.f.client.ID); got.Name != first.Name {
		t.Errorf("just before TTL: name %q, want the cached %q", got.Name, first.Name)
	}
	wantCalls(t, "GetClient before TTL", &s.inner.clients, 1)
	s.clock.advance(time.Nanosecond)
	if got := mustGetClient(t, s.cache, s.f.client.ID); got.Name != "changed again" {
		t.Errorf("at TTL: name %q, want %q", got.Name, "changed again")
	}
	wantCalls(t, "GetClient at TTL", &s.inner.clients, 2)
}

// Unknown ids are cached too, for TTL, and a client created under a
// cached-unknown id is found at once.
func TestNegativeCaching(t *testing.T) {
	forBackends(t, func(t *testing.T, url string) {
		const ttl = 5 * time.Second
		s := newSetup(t, url, cache.Options{TTL: ttl})
		ctx := t.Context()
		const unknown = 1<<62 + 7
		for range 3 {
			if _, err := s.cache.GetClient(ctx, unknown); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("GetClient(unknown): got error %v, want %v", err, storage.ErrNotFound)
			}
			if _, err := s.cache.GetUser(ctx, unknown); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("GetUser(unknown): got error %v, want %v", err, storage.ErrNotFound)
			}
			if _, err := s.cache.AccountActive(ctx, unknown); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("AccountActive(unknown): got error %v, want %v", err, storage.ErrNotFound)
			}
		}
		wantCalls(t, "GetClient(unknown)", &s.inner.clients, 1)
		wantCalls(t, "GetUser(unknown)", &s.inner.users, 1)
		wantCalls(t, "AccountActive(unknown)", &s.inner.active, 1)
		s.clock.advance(ttl)
		if _, err := s.cache.GetClient(ctx, unknown); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("GetClient(unknown): got error %v, want %v", err, storage.ErrNotFound)
		}
		wantCalls(t, "GetClient(unknown) after TTL", &s.inner.clients, 2)

		// Ids are handed out in order on a fresh database with no other
		// writer: the next client gets the id after the fixture's.
		next := s.f.client.ID + 1
		if _, err := s.cache.GetClient(ctx, next); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("GetClient(next id): got error %v, want %v", err, storage.ErrNotFound)
		}
		created := newClient(t, s.cache, s.f)
		if created.ID != next {
			t.Fatalf("created client id %d, want %d (ids not sequential?)", created.ID, next)
		}
		if got := mustGetClient(t, s.cache, next); got.ID != next {
			t.Errorf("GetClient(new id) = id %d, want %d", got.ID, next)
		}
	})
}

// A failing backend's error is returned, never cached.
func TestBackendErrorNotCached(t *testing.T) {
	s := newSetup(t, sqltest.SQLite(t), cache.Options{})
	s.inner.failClient.Store(true)
	if _, err := s.cache.GetClient(t.Context(), s.f.client.ID); !errors.Is(err, errOutage) {
		t.Fatalf("GetClient during an outage: got error %v, want %v", err, errOutage)
	}
	if got := mustGetClient(t, s.cache, s.f.client.ID); got.ID != s.f.client.ID {
		t.Errorf("GetClient after the outage = id %d, want %d", got.ID, s.f.client.ID)
	}
	wantCalls(t, "GetClient", &s.inner.clients, 2)
}

// With MaxStale, an expired entry is served while the backend fails, for
// at most MaxStale past its TTL; the backend is asked again at most once a
// second meanwhile; and it answers again once it is back.
func TestStaleWhileBackendFails(t *testing.T) {
	const ttl, maxStale = 5 * time.Second, time.Minute
	s := newSetup(t, sqltest.SQLite(t), cache.Options{TTL: ttl, MaxStale: maxStale})
	ctx := t.Context()
	want := mustGetClient(t, s.cache, s.f.client.ID)
	s.clock.advance(ttl)
	s.inner.downClient.Store(true)
	for i := range 3 {
		if got := mustGetClient(t, s.cache, s.f.client.ID); !reflect.DeepEqual(got, want) {
			t.Fatalf("read %d during the outage = %+v, want the stale %+v", i, got, want)
		}
	}
	wantCalls(t, "GetClient: one read, then one failed renewal", &s.inner.clients, 2)
	// The first read and the failed renewal asked the backend; the three
	// reads during the outage were answered stale.
	if got, want := s.cache.Stats(), (cache.Stats{Misses: 2, Stale: 3, Entries: 1}); got != want {
		t.Errorf("Stats() during the outage = %+v, want %+v", got, want)
	}
	s.clock.advance(time.Second)
	mustGetClient(t, s.cache, s.f.client.ID)
	wantCalls(t, "GetClient a second after the failure", &s.inner.clients, 3)

	s.clock.advance(maxStale - time.Second - time.Nanosecond)
	mustGetClient(t, s.cache, s.f.client.ID)
	s.clock.advance(time.Second)
	if _, err := s.cache.GetClient(ctx, s.f.client.ID); !errors.Is(err, errOutage) {
		t.Fatalf("GetClient past MaxStale: got error %v, want %v", err, errOutage)
	}

	s.inner.downClient.Store(false)
	if _, err := s.sql.UpdateClient(ctx, s.f.client.ID, func(c *storage.Client) error { c.Name = "after"; return nil }); err != nil {
		t.Fatalf("UpdateClient: %v", err)
	}
	if got := mustGetClient(t, s.cache, s.f.client.ID); got.Name != "after" {
		t.Errorf("GetClient after the outage: name %q, want %q", got.Name, "after")
	}
}

// An invalidation drops an entry for good: it is not served stale.
func TestStaleNotAfterInvalidation(t *testing.T) {
	s := newSetup(t, sqltest.SQLite(t), cache.Options{MaxStale: time.Hour})
	ctx := t.Context()
	mustGetClient(t, s.cache, s.f.client.ID)
	if _, err := s.cache.UpdateClient(ctx, s.f.client.ID, func(c *storage.Client) error { c.Status = storage.StatusDisabled; return nil }); err != nil {
		t.Fatalf("UpdateClient: %v", err)
	}
	s.inner.downClient.Store(true)
	if _, err := s.cache.GetClient(ctx, s.f.client.ID); !errors.Is(err, errOutage) {
		t.Fatalf("GetClient of an invalidated entry during an outage: got error %v, want %v", err, errOutage)
	}
}

// Without MaxStale an expired entry is never served.
func TestNoStaleByDefault(t *testing.T) {
	s := newSetup(t, sqltest.SQLite(t), cache.Options{})
	mustGetClient(t, s.cache, s.f.client.ID)
	s.clock.advance(cache.DefaultTTL)
	s.inner.downClient.Store(true)
	if _, err := s.cache.GetClient(t.Context(), s.f.client.ID); !errors.Is(err, errOutage) {
		t.Fatalf("GetClient of an expired entry during an outage: got error %v, want %v", err, errOutage)
	}
}

// The table never holds more than MaxEntries; what was evicted is read
// again.
func TestMaxEntries(t *testing.T) {
	const max = 10
	s := newSetup(t, sqltest.SQLite(t), cache.Options{MaxEntries: max})
	ctx := t.Context()
	const n = 30
	for i := range int64(n) {
		if _, err := s.cache.GetClient(ctx, 1<<60+i); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("GetClient(unknown): got error %v, want %v", err, storage.ErrNotFound)
		}
		if got := s.cache.Len(); got > max {
			t.Fatalf("Len after %d reads = %d, want at most %d", i+1, got, max)
		}
	}
	if got := s.cache.Len(); got != max {
		t.Errorf("Len = %d, want %d", got, max)
	}
	for i := range int64(n) {
		_, _ = s.cache.GetClient(ctx, 1<<60+i)
	}
	if got := s.inner.clients.Load(); got < 2*n-max {
		t.Errorf("backend called %d times for %d ids read twice with %d entries, want at least %d", got, n, max, 2*n-max)
	}
}

// Concurrent reads of a key not yet cached make one query.
func TestSingleflight(t *testing.T) {
	forBackends(t, func(t *testing.T, url string) {
		const readers = 50
		s := newSetup(t, url, cache.Options{})
		release := make(chan struct{})
		s.inner.beforeGetClient = func() { <-release }

		var wg sync.WaitGroup
		errs := make(chan error, readers)
		for range readers {
			wg.Go(func() {
				c, err := s.cache.GetClient(t.Context(), s.f.client.ID)
				if err == nil && c.ID != s.f.client.ID {
					err = errors.New("wrong client")
				}
				errs <- err
			})
		}
		// Without singleflight every reader reaches the backend while the
		// first query is held; with it, none but the first ever does. Wait
		// for either, bounded.
		deadline := time.Now().Add(200 * time.Millisecond)
		for s.inner.clients.Load() < readers && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		close(release)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("GetClient: %v", err)
			}
		}
		wantCalls(t, "GetClient by 50 concurrent readers", &s.inner.clients, 1)
	})
}

// A reader that gives up does not fail the others waiting on the same query.
func TestSingleflightCallerCancel(t *testing.T) {
	s := newSetup(t, sqltest.SQLite(t), cache.Options{})
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	s.inner.beforeGetClient = func() {
		once.Do(func() { close(entered) })
		<-release
	}
	ctx, cancel := context.WithCancel(t.Context())
	first := make(chan error, 1)
	go func() {
		_, err := s.cache.GetClient(ctx, s.f.client.ID)
		first <- err
	}()
	<-entered
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("GetClient with a cancelled context: got error %v, want %v", err, context.Canceled)
	}
	close(release)
	if got := mustGetClient(t, s.cache, s.f.client.ID); got.ID != s.f.client.ID {
		t.Errorf("GetClient = id %d, want %d", got.ID, s.f.client.ID)
	}
}

// A read that fetched the old value before a write was invalidated does not
// cache it: the next read sees the write.
func TestReadRacingWrite(t *testing.T) {
	s := newSetup(t, sqltest.SQLite(t), cache.Options{TTL: time.Hour})
	fetched := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	s.inner.afterGetClient = func() {
		once.Do(func() {
			close(fetched)
			<-release
		})
	}
	ctx := t.Context()
	done := make(chan storage.Client)
	go func() {
		c, _ := s.cache.GetClient(ctx, s.f.client.ID)
		done <- c
	}()
	<-fetched // the old value is read, not yet cached
	if _, err := s.cache.UpdateClient(ctx, s.f.client.ID, func(c *storage.Client) error { c.Name = "new"; return nil }); err != nil {
		t.Fatalf("UpdateClient: %v", err)
	}
	close(release)
	if got := <-done; got.Name != s.f.client.Name {
		t.Errorf("the racing read: name %q, want the old %q", got.Name, s.f.client.Name)
	}
	if got := mustGetClient(t, s.cache, s.f.client.ID); got.Name != "new" {
		t.Errorf("GetClient after the write: name %q, want %q", got.Name, "new")
	}
}

// BenchmarkGetClientHit measures the hot path: a client served from the
// table.
func BenchmarkGetClientHit(b *testing.B) {
	sql, err := sqlstore.Open(b.Context(), sqlstore.Options{URL: b.TempDir() + "/tollgate.db"})
	if err != nil {
		b.Fatalf("Open: %v", err)
	}
	defer sql.Close()
	if _, err := sql.Migrate(b.Context()); err != nil {
		b.Fatalf("Migrate: %v", err)
	}
	account, err := sql.CreateAccount(b.Context(), storage.Account{Name: "bench", Status: storage.StatusActive})
	if err != nil {
		b.Fatalf("CreateAccount: %v", err)
	}
	client, err := sql.CreateClient(b.Context(), storage.Client{AccountID: account.ID, Kind: storage.KindClient, Name: "bench", SecretHash: "h",
		GrantTypes: []string{"client_credentials"}, Scopes: []string{"read", "write"}, Status: storage.StatusActive})
	if err != nil {
		b.Fatalf("CreateClient: %v", err)
	}
	s := cache.New(sql, cache.Options{TTL: time.Hour})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.GetClient(context.Background(), client.ID); err != nil {
				b.Errorf("GetClient: %v", err)
				return
			}
		}
	})
}
