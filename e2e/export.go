package e2e

import (
	"regexp"
	"testing"
	"time"

	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/cache"
)

// This file is the fixture's face for suites outside this package: the
// management CLI's, which run package main's code against the wired server.

// FormCT is the content type of a form body.
const FormCT = formCT

// TestPassword is every fixture user's password.
const TestPassword = testPassword

// TestBackends lists the storage setups every end-to-end test runs on.
var TestBackends = testBackends

// Form encodes key, value pairs as a form body.
func Form(kv ...string) string { return form(kv...) }

// BasicRaw is a Basic Authorization header of id and secret as given (not
// form-encoded first).
func BasicRaw(id, secret string) string { return basicRaw(id, secret) }

// Basic is the Basic Authorization header of client id and secret, each
// form-encoded first as RFC 6749 section 2.3.1 asks.
func Basic(id int64, secret string) string { return basic(id, secret) }

// ID reads the "id" member of a decoded API answer.
func ID(m map[string]any) string { return id(m) }

// AdmItems reads the "items" of a decoded API list answer.
func AdmItems(t *testing.T, m map[string]any) []map[string]any { return admItems(t, m) }

// LockedBuffer is a bytes.Buffer safe for concurrent writers, such as a
// server's log output read by the test.
type LockedBuffer = lockedBuffer

// Fixture is a wired server over a real backend with a small tenant tree
// (root ── child, and other: a sibling tree) and its clients; see
// NewFixture.
type Fixture struct{ f *fixture }

// NewFixture wires a server on the named backend (one of TestBackends).
// Its logs are checked for credentials when the test ends.
func NewFixture(t *testing.T, backend string) *Fixture {
	t.Helper()
	return &Fixture{f: newFixture(t, backend)}
}

// URL is the base URL of the server's public listener.
func (x *Fixture) URL() string { return x.f.srv.URL }

// Root is the root account, Child its child.
func (x *Fixture) Root() storage.Account { return x.f.root }

// Child is the root account's child.
func (x *Fixture) Child() storage.Account { return x.f.child }

// DSP is a client of the root account allowed the eskimi_dsp grant.
func (x *Fixture) DSP() storage.Client { return x.f.dsp }

// DB is the store the server uses: writes through it are seen at once.
func (x *Fixture) DB() *cache.Store { return x.f.db }

// HandOut records secrets the test was given, so the log check looks for
// them too.
func (x *Fixture) HandOut(secrets ...string) { x.f.secrets = append(x.f.secrets, secrets...) }

// Advance moves the server's clock forward by d.
func (x *Fixture) Advance(d time.Duration) { x.f.clock.advance(d) }

// Now is the server's clock.
func (x *Fixture) Now() time.Time { return x.f.clock.now() }

// TokenDSP returns an eskimi_dsp token of username through client c.
func (x *Fixture) TokenDSP(c storage.Client, username string) string {
	return x.f.tokenDSP(c, username)
}

// Active reports whether introspection says tok is active.
func (x *Fixture) Active(tok string) bool { return x.f.active(tok) }

// PostStatus posts body to path with the header pairs and returns the
// answer's status.
func (x *Fixture) PostStatus(path, contentType, body string, header ...string) int {
	return x.f.post(path, contentType, body, header...).status
}

// APIJSON calls the management API with the Authorization value auth,
// fails the test unless the answer has status, and returns its decoded
// body.
func (x *Fixture) APIJSON(method, path, auth, body string, status int) map[string]any {
	return x.f.apiJSON(method, path, auth, body, status)
}

// APIProblem calls the management API and fails the test unless the answer
// is a problem+json of status naming fields.
func (x *Fixture) APIProblem(t *testing.T, method, path, auth, body string, status int, fields ...string) {
	t.Helper()
	admProblem(t, x.f.apiDo(method, path, auth, body), status, fields...)
}

// AdmUser signs username in through the DSP client and returns its token.
func (x *Fixture) AdmUser(username string) string { return string(x.f.admUser(username)) }

// AdmCreateUser creates a user of acc through the management API as the
// caller holding token who, with TestPassword.
func (x *Fixture) AdmCreateUser(t *testing.T, who string, acc storage.Account, username, role string) storage.User {
	t.Helper()
	return x.f.admCreateUser(t, admCaller(who), acc, username, role)
}

// AdmDefaultKey returns the id of u's default API key.
func (x *Fixture) AdmDefaultKey(t *testing.T, u storage.User) int64 {
	t.Helper()
	return x.f.admDefaultKey(t, u)
}

// CountClients counts the credentials of kind in the root account's tree.
func (x *Fixture) CountClients(t *testing.T, kind storage.Kind) int {
	t.Helper()
	return countClients(t, x.f, kind)
}

// CSRFField finds the console's CSRF token in a page.
var CSRFField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// RollUp flushes the token endpoint's usage counts, moves the clock past
// the roll-up's grace and copies the closed minutes into the database.
func (x *Fixture) RollUp(t *testing.T) { x.f.rollUp(t) }

// TokenCC returns a client_credentials token of the fixture's cc client
// and its id.
func (x *Fixture) TokenCC() (string, int64) { return x.f.tokenCC(x.f.cc), x.f.cc.ID }

// AdmManager returns a client of acc holding the management scope, owned
// by an admin of acc, and its secret.
func (x *Fixture) AdmManager(acc storage.Account) (storage.Client, string) {
	c, _ := x.f.admManager(acc)
	return c, x.f.secretOf[c.ID]
}

// Other is the root of a second tree, beside the root's.
func (x *Fixture) Other() storage.Account { return x.f.other }
