package sql

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

// testBackends are the databases the internal tests run on.
var testBackends = []struct {
	name string
	url  func(t *testing.T) string
}{
	{"sqlite", sqltest.SQLite},
	{"postgres", sqltest.Postgres},
}

// openUnmigrated opens a store on url and closes it when t ends.
func openUnmigrated(t *testing.T, url string) *Store {
	t.Helper()
	return openWith(t, Options{URL: url})
}

// openWith opens a store with opts and closes it when t ends.
func openWith(t *testing.T, opts Options) *Store {
	t.Helper()
	s, err := Open(t.Context(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func migrationNames(migs []migration) []string {
	var names []string
	for _, m := range migs {
		names = append(names, m.name)
	}
	return names
}

func TestMigrate(t *testing.T) {
	for _, b := range testBackends {
		t.Run(b.name, func(t *testing.T) {
			s := openUnmigrated(t, b.url(t))
			all := migrationNames(s.migrations)

			pending, err := s.PendingMigrations(t.Context())
			if err != nil {
				t.Fatalf("PendingMigrations on a fresh database: %v", err)
			}
			if !slices.Equal(pending, all) {
				t.Errorf("PendingMigrations on a fresh database = %q, want %q", pending, all)
			}

			applied, err := s.Migrate(t.Context())
			if err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			if !slices.Equal(applied, all) {
				t.Errorf("Migrate applied %q, want %q", applied, all)
			}

			applied, err = s.Migrate(t.Context())
			if err != nil {
				t.Fatalf("second Migrate: %v", err)
			}
			if len(applied) != 0 {
				t.Errorf("second Migrate applied %q, want nothing", applied)
			}

			pending, err = s.PendingMigrations(t.Context())
			if err != nil {
				t.Fatalf("PendingMigrations after Migrate: %v", err)
			}
			if len(pending) != 0 {
				t.Errorf("PendingMigrations after Migrate = %q, want none", pending)
			}

			var recorded []string
			err = s.db.WithContext(t.Context()).Raw(`SELECT name FROM schema_migrations ORDER BY version`).Scan(&recorded).Error
			if err != nil {
				t.Fatalf("read schema_migrations: %v", err)
			}
			if !slices.Equal(recorded, all) {
				t.Errorf("schema_migrations holds %q, want %q", recorded, all)
			}
		})
	}
}

func TestMigrateRefusesNewerSchema(t *testing.T) {
	for _, b := range testBackends {
		t.Run(b.name, func(t *testing.T) {
			s := openUnmigrated(t, b.url(t))
			if _, err := s.Migrate(t.Context()); err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			err := s.db.WithContext(t.Context()).
				Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`, 9999, "from_the_future", dbTime(time.Now())).Error
			if err != nil {
				t.Fatalf("insert future migration: %v", err)
			}

			if pending, err := s.PendingMigrations(t.Context()); !errors.Is(err, ErrSchemaTooNew) {
				t.Errorf("PendingMigrations: got %q, error %v, want %v", pending, err, ErrSchemaTooNew)
			}
			if applied, err := s.Migrate(t.Context()); !errors.Is(err, ErrSchemaTooNew) {
				t.Errorf("Migrate: got %q, error %v, want %v", applied, err, ErrSchemaTooNew)
			}
		})
	}
}

// TestMigrateConcurrent starts several stores on one database at once, as
// instances of a deployment do: each migration must be applied exactly
// once and none of them fail.
func TestMigrateConcurrent(t *testing.T) {
	const instances = 5
	for _, b := range testBackends {
		t.Run(b.name, func(t *testing.T) {
			url := b.url(t)
			stores := make([]*Store, instances)
			for i := range stores {
				stores[i] = openUnmigrated(t, url)
			}

			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				applied []string
			)
			for _, s := range stores {
				wg.Go(func() {
					got, err := s.Migrate(t.Context())
					if err != nil {
						t.Errorf("concurrent Migrate: %v", err)
					}
					mu.Lock()
					applied = append(applied, got...)
					mu.Unlock()
				})
			}
			wg.Wait()

			slices.Sort(applied)
			if want := migrationNames(stores[0].migrations); !slices.Equal(applied, want) {
				t.Errorf("concurrent Migrate applied %q in total, want each of %q once", applied, want)
			}
			for i, s := range stores {
				if pending, err := s.PendingMigrations(t.Context()); err != nil || len(pending) != 0 {
					t.Errorf("store %d: PendingMigrations = %q, %v; want none", i, pending, err)
				}
			}
		})
	}
}

// TestMigrateFailureRollsBack checks that a failing migration leaves no
// trace and keeps the ones before it.
func TestMigrateFailureRollsBack(t *testing.T) {
	for _, b := range testBackends {
		t.Run(b.name, func(t *testing.T) {
			s := openUnmigrated(t, b.url(t))
			s.migrations = []migration{
				{version: 1, name: "0001_good", sql: `CREATE TABLE good (id INTEGER PRIMARY KEY)`},
				{version: 2, name: "0002_bad", sql: `CREATE TABLE half (id INTEGER PRIMARY KEY); SELECT * FROM no_such_table`},
			}

			applied, err := s.Migrate(t.Context())
			if err == nil || !strings.Contains(err.Error(), "0002_bad") {
				t.Errorf("Migrate: got error %v, want one naming 0002_bad", err)
			}
			if !slices.Equal(applied, []string{"0001_good"}) {
				t.Errorf("Migrate applied %q, want [0001_good]", applied)
			}
			pending, err := s.PendingMigrations(t.Context())
			if err != nil {
				t.Fatalf("PendingMigrations: %v", err)
			}
			if !slices.Equal(pending, []string{"0002_bad"}) {
				t.Errorf("PendingMigrations = %q, want [0002_bad]", pending)
			}
			for table, want := range map[string]bool{"good": true, "half": false} {
				if got := s.db.WithContext(t.Context()).Migrator().HasTable(table); got != want {
					t.Errorf("table %s exists = %t, want %t", table, got, want)
				}
			}
		})
	}
}

func TestEmbeddedMigrations(t *testing.T) {
	pg, err := loadMigrations(dialectPostgres)
	if err != nil {
		t.Fatalf("load postgres migrations: %v", err)
	}
	lite, err := loadMigrations(dialectSQLite)
	if err != nil {
		t.Fatalf("load sqlite migrations: %v", err)
	}
	// Both dialects must describe the same schema history.
	if got, want := migrationNames(lite), migrationNames(pg); !slices.Equal(got, want) {
		t.Errorf("sqlite migrations %q, postgres migrations %q: want the same", got, want)
	}
}

func TestParseMigrations(t *testing.T) {
	file := func(body string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(body)} }
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		want    []string
		wantErr string
	}{
		{
			name: "in version order",
			fsys: fstest.MapFS{
				"m/0002_users.sql": file("B"),
				"m/0001_init.sql":  file("A"),
				"m/0003_more.sql":  file("C"),
			},
			want: []string{"0001_init", "0002_users", "0003_more"},
		},
		{
			name: "gap",
			fsys: fstest.MapFS{"m/0001_init.sql": file("A"), "m/0003_more.sql": file("C")},
			want: []string{"0001_init", "0003_more"},
		},
		{
			name:    "duplicate version",
			fsys:    fstest.MapFS{"m/0001_init.sql": file("A"), "m/0001_again.sql": file("B")},
			wantErr: "repeats version 1",
		},
		{
			name:    "not starting at 1",
			fsys:    fstest.MapFS{"m/0002_init.sql": file("A")},
			wantErr: "want 1",
		},
		{
			name:    "stray file",
			fsys:    fstest.MapFS{"m/0001_init.sql": file("A"), "m/README.md": file("")},
			wantErr: "unexpected file",
		},
		{
			name:    "empty",
			fsys:    fstest.MapFS{"m": &fstest.MapFile{Mode: fs.ModeDir | 0o755}},
			wantErr: "none in m",
		},
		{
			name:    "no directory",
			fsys:    fstest.MapFS{},
			wantErr: "read migrations",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			migs, err := parseMigrations(tt.fsys, "m")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("parseMigrations: got %q, error %v, want error containing %q", migrationNames(migs), err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseMigrations: %v", err)
			}
			if got := migrationNames(migs); !slices.Equal(got, tt.want) {
				t.Errorf("parseMigrations = %q, want %q", got, tt.want)
			}
			for _, m := range migs {
				if v := m.name[:4]; fmt.Sprintf("%04d", m.version) != v {
					t.Errorf("migration %s: version %d, want %s", m.name, m.version, v)
				}
			}
		})
	}
}
