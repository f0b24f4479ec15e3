package sql

import (
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

// outageBound is how long a call may take against a database that does not
// answer: far above the timeouts under test, far below a hang.
const outageBound = 5 * time.Second

// stallingProxy forwards TCP connections to upstream until stall is called;
// from then on it swallows what either side sends, like a database host
// that vanished without closing its sockets.
type stallingProxy struct {
	ln       net.Listener
	upstream string
	stalled  atomic.Bool
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
}

// newStallingProxy listens on a free local port and stops when t ends. An
// empty upstream stalls from the start: it accepts and never answers.
func newStallingProxy(t *testing.T, upstream string) *stallingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	p := &stallingProxy{ln: ln, upstream: upstream}
	p.stalled.Store(upstream == "")
	p.wg.Go(p.serve)
	t.Cleanup(p.close)
	return p
}

func (p *stallingProxy) addr() string { return p.ln.Addr().String() }

func (p *stallingProxy) stall() { p.stalled.Store(true) }

func (p *stallingProxy) track(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns = append(p.conns, c)
}

func (p *stallingProxy) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.track(client)
		if p.upstream == "" {
			p.wg.Go(func() { p.pipe(io.Discard, client) })
			continue
		}
		server, err := net.Dial("tcp", p.upstream)
		if err != nil {
			client.Close()
			continue
		}
		p.track(server)
		p.wg.Go(func() { p.pipe(server, client) })
		p.wg.Go(func() { p.pipe(client, server) })
	}
}

// pipe copies src to dst until either closes, dropping the data once the
// proxy has stalled.
func (p *stallingProxy) pipe(dst io.Writer, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.stalled.Load() {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *stallingProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func TestOpenUnreachablePostgres(t *testing.T) {
	blackHole := newStallingProxy(t, "")
	tests := []struct {
		name string
		url  string
		opts Options
	}{
		{"closed port", "postgres://postgres@127.0.0.1:1/tollgate?sslmode=disable", Options{}},
		{"server never answers, default timeouts", "postgres://postgres@" + blackHole.addr() + "/tollgate?sslmode=disable", Options{}},
		{"server never answers, short query timeout", "postgres://postgres@" + blackHole.addr() + "/tollgate?sslmode=disable", Options{QueryTimeout: 200 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.URL = tt.url
			start := time.Now()
			s, err := Open(t.Context(), tt.opts)
			elapsed := time.Since(start)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s): got no error, want one", tt.url)
			}
			if elapsed > outageBound {
				t.Errorf("Open(%s) failed after %v, want within %v", tt.url, elapsed, outageBound)
			}
		})
	}
}

// TestPostgresOutageAfterOpen cuts an open store off its database: every
// call must fail within the query timeout instead of hanging.
func TestPostgresOutageAfterOpen(t *testing.T) {
	dbURL, err := url.Parse(sqltest.Postgres(t))
	if err != nil {
		t.Fatalf("parse test database url: %v", err)
	}
	proxy := newStallingProxy(t, dbURL.Host)
	dbURL.Host = proxy.addr()
	q := dbURL.Query()
	q.Set("sslmode", "disable")
	dbURL.RawQuery = q.Encode()

	const queryTimeout = 300 * time.Millisecond
	s, err := Open(t.Context(), Options{URL: dbURL.String(), QueryTimeout: queryTimeout})
	if err != nil {
		t.Fatalf("Open through the proxy: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	account, err := s.CreateAccount(t.Context(), storage.Account{Name: "a", Status: storage.StatusActive})
	if err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}

	proxy.stall()
	calls := []struct {
		name string
		call func() error
	}{
		{"Ping", func() error { return s.Ping(t.Context()) }},
		{"GetAccount", func() error { _, err := s.GetAccount(t.Context(), account.ID); return err }},
		{"UpdateClient", func() error {
			_, err := s.UpdateClient(t.Context(), 1, func(*storage.Client) error { return nil })
			return err
		}},
		{"PendingMigrations", func() error { _, err := s.PendingMigrations(t.Context()); return err }},
	}
	for _, c := range calls {
		start := time.Now()
		err := c.call()
		elapsed := time.Since(start)
		t.Logf("%s during an outage: %v after %v", c.name, err, elapsed)
		if err == nil {
			t.Errorf("%s during an outage: got no error", c.name)
		}
		if isSentinel(err) {
			t.Errorf("%s during an outage: got %v, want an outage, not a storage sentinel", c.name, err)
		}
		if elapsed > outageBound {
			t.Errorf("%s during an outage failed after %v, want within %v", c.name, elapsed, outageBound)
		}
	}
}

func TestOpenRejects(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		// notIn must not appear in the error message.
		notIn string
	}{
		{"empty url", Options{}, ""},
		{"unknown scheme", Options{URL: "mysql://root:hunter2@db/tollgate"}, "hunter2"},
		{"invalid postgres url", Options{URL: "postgres://u:hunter2@127.0.0.1:notaport/db"}, "hunter2"},
		{"sqlite path with a query", Options{URL: filepath.Join(t.TempDir(), "x.db?mode=ro")}, ""},
		{"negative query timeout", Options{URL: filepath.Join(t.TempDir(), "x.db"), QueryTimeout: -time.Second}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(t.Context(), tt.opts)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%+v): got no error, want one", tt.opts)
			}
			if tt.notIn != "" && strings.Contains(err.Error(), tt.notIn) {
				t.Errorf("Open: error %q contains %q", err, tt.notIn)
			}
		})
	}
}

func TestOpenSQLite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "tollgate")
	s := openUnmigrated(t, filepath.Join(dir, "tollgate.db"))

	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatalf("stat database directory: %v", err)
	}
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("database directory mode = %v, want %v", got, os.FileMode(0o700))
	}

	pragmas := []struct {
		name string
		want string
	}{
		{"journal_mode", "wal"},
		{"foreign_keys", "1"},
		{"busy_timeout", "5000"},
	}
	for _, p := range pragmas {
		var got string
		if err := s.sqlDB.QueryRowContext(t.Context(), "PRAGMA "+p.name).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", p.name, err)
		}
		if got != p.want {
			t.Errorf("PRAGMA %s = %q, want %q", p.name, got, p.want)
		}
	}
}

// TestSQLiteConcurrentWriters writes from many goroutines at once through
// one store, as a busy server does: no write may fail with "database is
// locked" and no update may be lost.
func TestSQLiteConcurrentWriters(t *testing.T) {
	const (
		workers = 16
		rounds  = 10
	)
	// The workers queue for the one connection, in no particular order; on
	// a loaded machine (-race, -count) one of them can wait longer than the
	// default query timeout. This test is about lost and failed writes, not
	// latency, so it allows for that wait.
	s := openWith(t, Options{URL: sqltest.SQLite(t), QueryTimeout: time.Minute})
	if _, err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	account, err := s.CreateAccount(t.Context(), storage.Account{Name: "a", Status: storage.StatusActive})
	if err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	client, err := s.CreateClient(t.Context(), storage.Client{AccountID: account.ID, Name: "c", SecretHash: "h", Status: storage.StatusActive})
	if err != nil {
		t.Fatalf("CreateClient: %v", err)
	}

	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				if _, err := s.CreateAccount(t.Context(), storage.Account{ParentID: account.ID, Name: "child", Status: storage.StatusActive}); err != nil {
					t.Errorf("worker %d round %d: CreateAccount: %v", w, r, err)
				}
				_, err := s.UpdateClient(t.Context(), client.ID, func(c *storage.Client) error {
					c.Generation++
					return nil
				})
				if err != nil {
					t.Errorf("worker %d round %d: UpdateClient: %v", w, r, err)
				}
				if err := s.TouchClient(t.Context(), client.ID, time.Now().Add(time.Duration(r)*time.Hour)); err != nil {
					t.Errorf("worker %d round %d: TouchClient: %v", w, r, err)
				}
				if _, err := s.GetClient(t.Context(), client.ID); err != nil {
					t.Errorf("worker %d round %d: GetClient: %v", w, r, err)
				}
			}
		})
	}
	wg.Wait()

	got, err := s.GetClient(t.Context(), client.ID)
	if err != nil {
		t.Fatalf("GetClient: %v", err)
	}
	if want := int64(workers * rounds); got.Generation != want {
		t.Errorf("Generation = %d, want %d", got.Generation, want)
	}
	var children int64
	if err := s.db.WithContext(t.Context()).Model(&accountRow{}).Where("parent_id = ?", account.ID).Count(&children).Error; err != nil {
		t.Fatalf("count accounts: %v", err)
	}
	if want := int64(workers * rounds); children != want {
		t.Errorf("child accounts = %d, want %d", children, want)
	}
}

// TestSQLiteWriterWaitsForOtherProcess holds the write lock from one store
// while a second store on the same file (another process, such as a
// tollgate admin command next to the server) writes: the second must wait
// for the lock, not fail with "database is locked".
func TestSQLiteWriterWaitsForOtherProcess(t *testing.T) {
	path := sqltest.SQLite(t)
	server, admin := openUnmigrated(t, path), openUnmigrated(t, path)
	if _, err := server.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	account, err := server.CreateAccount(t.Context(), storage.Account{Name: "a", Status: storage.StatusActive})
	if err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	client, err := server.CreateClient(t.Context(), storage.Client{AccountID: account.ID, Name: "c", SecretHash: "h", Status: storage.StatusActive})
	if err != nil {
		t.Fatalf("CreateClient: %v", err)
	}

	locked, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		_, err := server.UpdateClient(t.Context(), client.ID, func(c *storage.Client) error {
			close(locked)
			<-release
			c.Generation++
			return nil
		})
		if err != nil {
			t.Errorf("UpdateClient holding the lock: %v", err)
		}
	})
	<-locked

	adminDone := make(chan error, 1)
	wg.Go(func() {
		_, err := admin.CreateAccount(t.Context(), storage.Account{Name: "b", Status: storage.StatusActive})
		adminDone <- err
	})
	// Release the lock only once the admin write waits for it: one of the
	// goroutines is in SQLite's busy handler (sqliteBusyTimeout, 5 s, is
	// how long it may stay there). A write that did not wait, or failed at
	// once with "database is locked", ends before that.
	for deadline := time.Now().Add(sqliteBusyTimeout); !inBusyHandler(); {
		select {
		case err := <-adminDone:
			close(release)
			wg.Wait()
			t.Fatalf("CreateAccount from a second store ended while the first held the write lock, want it waiting: %v", err)
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			close(release)
			wg.Wait()
			t.Fatalf("CreateAccount from a second store did not wait for the write lock within %v", sqliteBusyTimeout)
		}
	}
	close(release)
	wg.Wait()
	if err := <-adminDone; err != nil {
		t.Errorf("CreateAccount from a second store while the first holds the write lock: %v", err)
	}

	got, err := admin.GetClient(t.Context(), client.ID)
	if err != nil {
		t.Fatalf("GetClient: %v", err)
	}
	if got.Generation != 1 {
		t.Errorf("Generation = %d, want 1", got.Generation)
	}
}

// TestSQLiteTimesCompareInOrder checks the assumption TouchClient's
// condition rests on in SQLite: times stored as text compare in time order,
// whatever the length of their fraction.
func TestSQLiteTimesCompareInOrder(t *testing.T) {
	s := openUnmigrated(t, sqltest.SQLite(t))
	base := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	times := []time.Time{
		base,
		base.Add(1 * time.Microsecond),
		base.Add(10 * time.Microsecond),
		base.Add(100 * time.Millisecond),
		base.Add(120 * time.Millisecond),
		base.Add(500 * time.Millisecond),
		base.Add(510 * time.Millisecond),
		base.Add(999999 * time.Microsecond),
		base.Add(time.Second),
		base.Add(time.Second + time.Microsecond),
		base.Add(10 * time.Second),
	}
	ctx := t.Context()
	if _, err := s.sqlDB.ExecContext(ctx, `CREATE TEMP TABLE times (v DATETIME NOT NULL)`); err != nil {
		t.Fatalf("create table: %v", err)
	}
	for _, v := range times {
		if _, err := s.sqlDB.ExecContext(ctx, `INSERT INTO times (v) VALUES (?)`, dbTime(v)); err != nil {
			t.Fatalf("insert %v: %v", v, err)
		}
	}
	for i, v := range times {
		var earlier int
		if err := s.sqlDB.QueryRowContext(ctx, `SELECT COUNT(*) FROM times WHERE v < ?`, dbTime(v)).Scan(&earlier); err != nil {
			t.Fatalf("count: %v", err)
		}
		if earlier != i {
			t.Errorf("rows with v < %v: got %d, want %d", v, earlier, i)
		}
	}
}

// inBusyHandler reports whether a goroutine of this process is in SQLite's
// busy handler, waiting for a lock another connection holds.
func inBusyHandler() bool {
	buf := make([]byte, 1<<20)
	return strings.Contains(string(buf[:runtime.Stack(buf, true)]), "sqliteDefaultBusyCallback")
}
