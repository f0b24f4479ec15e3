package main

import (
	"testing"

	"github.com/tollgate/tollgate/e2e"
	"github.com/tollgate/tollgate/pkg/bruteforce"
)

// fixture is the end-to-end fixture of package e2e: the wired server and
// its tenant tree, which the management CLI's tests talk to.
type fixture struct {
	*e2e.Fixture
	t *testing.T
}

// newFixture wires a server on the named backend.
func newFixture(t *testing.T, backend string) *fixture {
	t.Helper()
	return &fixture{Fixture: e2e.NewFixture(t, backend), t: t}
}

// bfThreshold is the brute-force threshold serve runs with by default.
const bfThreshold = bruteforce.DefaultThreshold
