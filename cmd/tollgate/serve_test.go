package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e"
	"github.com/tollgate/tollgate/storage/redis/redistest"
	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

// environ is a lookupEnv over a map.
func environ(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// runServe starts `tollgate serve` in-process and returns its public address
// and a stop function that sends the equivalent of SIGTERM and waits.
func runServe(t *testing.T, vars map[string]string, args ...string) (string, string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan [2]string, 1)
	done := make(chan error, 1)
	var logs e2e.LockedBuffer
	go func() {
		done <- run(ctx, append([]string{"serve"}, args...), env{stdout: io.Discard, stderr: &logs, lookupEnv: environ(vars),
			ready: func(public, ops string) { ready <- [2]string{public, ops} }})
	}()
	select {
	case addrs := <-ready:
		stopped := false
		stop := func() error {
			if stopped {
				return nil
			}
			stopped = true
			cancel()
			return <-done
		}
		t.Cleanup(func() { _ = stop() })
		return addrs[0], addrs[1], stop
	case err := <-done:
		cancel()
		t.Fatalf("serve exited: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("serve did not start")
	}
	return "", "", nil
}

func runCommand(t *testing.T, vars map[string]string, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), args, env{stdout: &stdout, stderr: &stderr, lookupEnv: environ(vars)})
	if err != nil {
		return stdout.String(), errors.Join(err, errors.New(stderr.String()))
	}
	return stdout.String(), nil
}

func bootstrapFor(t *testing.T, vars map[string]string) bootstrapResult {
	t.Helper()
	out, err := runCommand(t, vars, "bootstrap")
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	var b bootstrapResult
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		t.Fatalf("bootstrap printed %q: %v", out, err)
	}
	if b.ClientID == 0 || b.ClientSecret == "" || b.Password == "" || b.Username != "admin" || b.AccountID == 0 || b.UserID == 0 {
		t.Fatalf("bootstrap result incomplete: %+v", b)
	}
	return b
}

// walkthrough is the README's curl walkthrough: both grants, introspect,
// revoke.
func walkthrough(t *testing.T, addr string, b bootstrapResult) {
	t.Helper()
	base := "http://" + addr
	post := func(path, ct, body string, auth bool) (int, map[string]any) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		if auth {
			req.SetBasicAuth(strconv.FormatInt(b.ClientID, 10), b.ClientSecret)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		m := map[string]any{}
		_ = json.Unmarshal(raw, &m)
		return res.StatusCode, m
	}
	code, cc := post("/oauth/token", e2e.FormCT, "grant_type=client_credentials", true)
	if code != 200 {
		t.Fatalf("client_credentials: %d %v", code, cc)
	}
	dspBody, _ := json.Marshal(map[string]any{"grant_type": "eskimi_dsp", "username": b.Username, "password": b.Password,
		"client_id": b.ClientID, "client_secret": b.ClientSecret})
	code, dsp := post("/oauth/token", "application/json", string(dspBody), false)
	if code != 200 {
		t.Fatalf("eskimi_dsp: %d %v", code, dsp)
	}
	// The bootstrap admin has a default API key, visible through the
	// management API.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/api/v1/keys", nil)
	req.Header.Set("Authorization", "Bearer "+dsp["access_token"].(string))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var keys struct {
		Items []struct {
			IsDefault bool  `json:"is_default"`
			OwnerID   int64 `json:"owner_id"`
		} `json:"items"`
	}
	err = json.NewDecoder(res.Body).Decode(&keys)
	res.Body.Close()
	if err != nil || len(keys.Items) != 1 || !keys.Items[0].IsDefault || keys.Items[0].OwnerID != b.UserID {
		t.Fatalf("keys of the bootstrap admin = %+v (%v), want one default key", keys, err)
	}
	for _, tok := range []string{cc["access_token"].(string), dsp["access_token"].(string)} {
		if code, in := post("/oauth/introspect", e2e.FormCT, "token="+tok, true); code != 200 || in["active"] != true {
			t.Fatalf("introspect: %d %v", code, in)
		}
		if code, _ := post("/oauth/revoke", e2e.FormCT, "token="+tok, true); code != 200 {
			t.Fatalf("revoke: %d", code)
		}
		if code, in := post("/oauth/introspect", e2e.FormCT, "token="+tok, true); code != 200 || in["active"] != false {
			t.Fatalf("introspect after revoke: %d %v", code, in)
		}
	}
}

func TestServeEmbeddedDefault(t *testing.T) {
	dir := t.TempDir()
	vars := map[string]string{
		"TOLLGATE_DATA_DIR":  dir,
		"TOLLGATE_HTTP_ADDR": "127.0.0.1:0",
		"TOLLGATE_OPS_ADDR":  "127.0.0.1:0",
	}
	addr, ops, stop := runServe(t, vars)
	b := bootstrapFor(t, vars)
	walkthrough(t, addr, b)
	res, err := http.Get("http://" + ops + "/readyz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("/readyz: %v %v", res, err)
	}
	res.Body.Close()

	for _, name := range []string{"token_secret", "pepper", "key_encryption_key"} {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("key file %s: %v", name, err)
		}
		if mode := info.Mode().Perm(); mode != 0o600 {
			t.Errorf("key file %s mode = %o, want 600", name, mode)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}

	// A restart keeps the clients, users and keys.
	addr, _, stop = runServe(t, vars)
	walkthrough(t, addr, b)
	if err := stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	if _, err := runCommand(t, vars, "bootstrap"); err == nil {
		t.Error("a second bootstrap with the same username succeeded")
	}
}

func TestServeProduction(t *testing.T) {
	dsn := sqltest.Postgres(t)
	vars := map[string]string{
		"TOLLGATE_DATA_DIR":           t.TempDir(),
		"TOLLGATE_HTTP_ADDR":          "127.0.0.1:0",
		"TOLLGATE_OPS_ADDR":           "127.0.0.1:0",
		"TOLLGATE_DATABASE_URL":       dsn,
		"TOLLGATE_REDIS_URL":          redisURLForTest(t),
		"TOLLGATE_TOKEN_SECRET":       "production-token-secret-0123456789abcdef",
		"TOLLGATE_PEPPER":             "production-pepper-0123456789abcdef-xyz",
		"TOLLGATE_KEY_ENCRYPTION_KEY": "4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b",
		"TOLLGATE_REDIS_KEY_PREFIX":   redisPrefixForTest(t),
	}
	if _, err := runCommand(t, vars, "bootstrap"); err == nil || !strings.Contains(err.Error(), "pending migrations") {
		t.Fatalf("bootstrap on an unmigrated database: err = %v, want pending migrations refused", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := run(ctx, []string{"serve"}, env{stdout: io.Discard, stderr: io.Discard, lookupEnv: environ(vars)}); err == nil ||
		!strings.Contains(err.Error(), "pending migrations") {
		t.Fatalf("serve on an unmigrated database: err = %v, want refusal", err)
	}
	if out, err := runCommand(t, vars, "migrate"); err != nil {
		t.Fatalf("migrate: %v %s", err, out)
	}
	b := bootstrapFor(t, vars)
	addr, _, stop := runServe(t, vars)
	walkthrough(t, addr, b)
	if err := stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}

	// Production never generates keys.
	delete(vars, "TOLLGATE_PEPPER")
	if _, err := runCommand(t, vars, "migrate"); err == nil {
		t.Error("a production configuration without a pepper was accepted")
	}
}

func TestVersionAndUsage(t *testing.T) {
	out, err := runCommand(t, nil, "version")
	if err != nil || !strings.HasPrefix(out, "tollgate ") {
		t.Errorf("version = %q, %v", out, err)
	}
	if _, err := runCommand(t, nil, "frobnicate"); !errors.Is(err, errUsage) {
		t.Errorf("unknown command: err = %v, want usage", err)
	}
	if _, err := runCommand(t, nil); !errors.Is(err, errUsage) {
		t.Errorf("no command: err = %v, want usage", err)
	}
}

// redisURLForTest is the Redis the tests use.
func redisURLForTest(t *testing.T) string {
	t.Helper()
	return redistest.URL()
}

// redisPrefixForTest returns a key prefix whose keys are removed when the
// test ends (and skips the test when Redis is unreachable outside CI).
func redisPrefixForTest(t *testing.T) string {
	t.Helper()
	_, prefix := redistest.New(t)
	return prefix
}
