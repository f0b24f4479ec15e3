package main

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/e2e"
	"github.com/tollgate/tollgate/storage"
)

// The CLI sets and shows account policies, and follows them: it asks for
// the password only when the server does (from a file, the environment or
// the terminal, never a flag value), and a member refused by the policy
// gets the API's answer.
func TestCLIAccountPolicies(t *testing.T) {
	f := newFixture(t, "embedded")
	alice := f.AdmUser("alice")
	f.AdmCreateUser(t, alice, f.Root(), "mia", "member")
	mia := f.AdmUser("mia")
	root, child := strconv.FormatInt(f.Root().ID, 10), strconv.FormatInt(f.Child().ID, 10)
	withPassword := map[string]string{config.CLIPasswordEnv: e2e.TestPassword}

	res := f.cli(alice, nil, "accounts", "policies", root, "--require-password-for-new-keys", "true", "--keys-managed-by", "admins").ok(t)
	if got, want := res.field(t, "effective_policies"), "keys_managed_by=admins leaked_key_action=disable require_password_for_new_keys=true"; got != want {
		t.Errorf("effective_policies = %s, want %s", got, want)
	}
	res = f.cli(alice, nil, "accounts", "policies", child, "--leaked-key-action", "notify").ok(t)
	if got := res.field(t, "effective_policies"); !strings.Contains(got, "leaked_key_action=notify") {
		t.Errorf("child effective_policies = %s, want leaked_key_action=notify", got)
	}
	if res := f.cli(alice, nil, "accounts", "policies", child, "--leaked-key-action", "ignore"); exitStatus(res.err) != 2 {
		t.Errorf("bad --leaked-key-action: err %v, want a usage error", res.err)
	}
	f.cli(alice, nil, "accounts", "policies", child, "--leaked-key-action", "inherit").ok(t)
	res = f.cli(alice, nil, "accounts", "policies", child).ok(t)
	if got, want := res.field(t, "policies"), "keys_managed_by=- leaked_key_action=- require_password_for_new_keys=-"; got != want {
		t.Errorf("child policies = %s, want %s", got, want)
	}
	if got := res.field(t, "effective_policies"); !strings.Contains(got, "keys_managed_by=admins") {
		t.Errorf("child effective_policies = %s, want inherited admins", got)
	}
	if res := f.cli(alice, nil, "accounts", "policies", root, "--keys-managed-by", "owners"); exitStatus(res.err) != 2 {
		t.Errorf("bad --keys-managed-by: err %v, want a usage error", res.err)
	}

	// No password at hand (no file, no variable, no terminal): refused,
	// saying why, and nothing is made.
	before := f.CountClients(t, storage.KindKey)
	res = f.cli(alice, nil, "keys", "create", "--name", "k")
	if res.err == nil || !strings.Contains(res.stderr, "asks for your own password") || !strings.Contains(res.stderr, "--password-file") {
		t.Errorf("create without a password: err %v, stderr %q; want it to ask for one", res.err, res.stderr)
	}
	dir := t.TempDir()
	wrong := filepath.Join(dir, "wrong")
	if err := os.WriteFile(wrong, []byte("not it\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res = f.cli(alice, nil, "keys", "create", "--name", "k", "--password-file", wrong)
	if !errors.Is(res.err, errFailed) || !strings.HasPrefix(res.stderr, "error: 403 ") || !strings.Contains(res.stderr, "password") {
		t.Errorf("wrong password: err %v, stderr %q; want 403 naming the password", res.err, res.stderr)
	}
	if got := f.CountClients(t, storage.KindKey); got != before {
		t.Errorf("%d keys after refusals, want %d", got, before)
	}
	res = f.cli(alice, withPassword, "keys", "create", "--name", "k").ok(t)
	if !strings.Contains(res.stdout, "tgk_") {
		t.Errorf("created key not shown:\n%s", res.stdout)
	}
	f.HandOut(res.field(t, "key"), res.field(t, "client_secret"))

	// A member is refused by the API, whatever password they give.
	res = f.cli(mia, withPassword, "keys", "create", "--name", "mine")
	if !errors.Is(res.err, errFailed) || !strings.HasPrefix(res.stderr, "error: 403 ") || !strings.Contains(res.stderr, "keys_managed_by") {
		t.Errorf("member create: err %v, stderr %q; want the API's 403", res.err, res.stderr)
	}
	key := f.AdmDefaultKey(t, mustUser(t, f, "mia"))
	res = f.cli(mia, nil, "keys", "delete", strconv.FormatInt(key, 10))
	if !errors.Is(res.err, errFailed) || !strings.HasPrefix(res.stderr, "error: 403 ") {
		t.Errorf("member delete: err %v, stderr %q; want the API's 403", res.err, res.stderr)
	}

	// inherit clears the setting.
	res = f.cli(alice, nil, "accounts", "policies", root, "--keys-managed-by", "inherit", "--require-password-for-new-keys", "inherit").ok(t)
	if got, want := res.field(t, "effective_policies"), "keys_managed_by=anyone leaked_key_action=disable require_password_for_new_keys=false"; got != want {
		t.Errorf("effective_policies after inherit = %s, want %s", got, want)
	}
	res = f.cli(mia, nil, "keys", "create", "--name", "mine").ok(t)
	f.HandOut(res.field(t, "key"), res.field(t, "client_secret"))
}

func mustUser(t *testing.T, f *fixture, username string) storage.User {
	t.Helper()
	u, err := f.DB().GetUserByUsername(t.Context(), username)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
