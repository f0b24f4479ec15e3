package sql_test

import (
	"testing"
	"time"

	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/conformance"
	sqlstore "github.com/tollgate/tollgate/storage/sql"
	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

// backends are the databases every suite runs on. PostgreSQL is skipped
// when unreachable, except in CI.
var backends = []struct {
	name string
	url  func(t *testing.T) string
}{
	{"sqlite", sqltest.SQLite},
	{"postgres", sqltest.Postgres},
}

// openStore opens and migrates a store on a fresh database.
func openStore(t *testing.T, url string) *sqlstore.Store {
	t.Helper()
	// The contract suites check what the store does, not how fast: the
	// production query timeout (2 s) was spent by a 2,500-row TouchClients on
	// SQLite under -race on a loaded machine. The timeout itself has tests
	// of its own (open_test.go, tx_test.go).
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

func TestAccounts(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s := openStore(t, b.url(t))
			conformance.RunAccounts(t, func(*testing.T) storage.Accounts { return s })
		})
	}
}

func TestUsers(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s := openStore(t, b.url(t))
			conformance.RunUsers(t, func(*testing.T) conformance.UsersStore { return s })
		})
	}
}

func TestClients(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s := openStore(t, b.url(t))
			conformance.RunClients(t, func(*testing.T) conformance.ClientsStore { return s })
		})
	}
}

func TestAudit(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s := openStore(t, b.url(t))
			conformance.RunAudit(t, func(*testing.T) conformance.AuditStore { return s })
		})
	}
}

func TestTransactions(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s := openStore(t, b.url(t))
			conformance.RunTransactions(t, func(*testing.T) conformance.TxStore { return s })
		})
	}
}

func TestFederatedCredentials(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s := openStore(t, b.url(t))
			conformance.RunFederatedCredentials(t, func(*testing.T) conformance.FederatedStore { return s })
		})
	}
}

func TestSigningKeys(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			conformance.RunSigningKeys(t, func(t *testing.T) storage.SigningKeys { return openStore(t, b.url(t)) })
		})
	}
}
