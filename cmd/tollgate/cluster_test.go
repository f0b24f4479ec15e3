package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/storage/redis/redistest"
	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

// serveOn migrates, bootstraps and runs `tollgate serve` with vars, then
// walks through issuing, introspecting and revoking tokens, and checks
// readiness, which pings Redis.
func serveOn(t *testing.T, vars map[string]string) {
	t.Helper()
	if out, err := runCommand(t, vars, "migrate"); err != nil {
		t.Fatalf("migrate: %v %s", err, out)
	}
	b := bootstrapFor(t, vars)
	addr, ops, stop := runServe(t, vars)
	walkthrough(t, addr, b)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+ops+"/readyz", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("GET /readyz: got %d, want 200", res.StatusCode)
	}
	if err := stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
}

// `tollgate serve` on a Redis Cluster of three local masters, named by one
// node: tokens are issued, introspected and revoked through it.
func TestServeRedisCluster(t *testing.T) {
	addrs := redistest.StartCluster(t)
	serveOn(t, map[string]string{
		"TOLLGATE_DATA_DIR":           t.TempDir(),
		"TOLLGATE_HTTP_ADDR":          "127.0.0.1:0",
		"TOLLGATE_OPS_ADDR":           "127.0.0.1:0",
		"TOLLGATE_DATABASE_URL":       sqltest.Postgres(t),
		"TOLLGATE_REDIS_ADDRS":        strings.Join(addrs[:1], ","),
		"TOLLGATE_REDIS_CLUSTER":      "true",
		"TOLLGATE_TOKEN_SECRET":       "production-token-secret-0123456789abcdef",
		"TOLLGATE_PEPPER":             "production-pepper-0123456789abcdef-xyz",
		"TOLLGATE_KEY_ENCRYPTION_KEY": "4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b",
	})
}

// `tollgate serve` on a master behind a Sentinel, both with passwords.
func TestServeRedisSentinel(t *testing.T) {
	s := redistest.StartSentinel(t)
	serveOn(t, map[string]string{
		"TOLLGATE_DATA_DIR":                t.TempDir(),
		"TOLLGATE_HTTP_ADDR":               "127.0.0.1:0",
		"TOLLGATE_OPS_ADDR":                "127.0.0.1:0",
		"TOLLGATE_DATABASE_URL":            sqltest.Postgres(t),
		"TOLLGATE_REDIS_ADDRS":             s.Addr,
		"TOLLGATE_REDIS_MASTER_NAME":       s.MasterName,
		"TOLLGATE_REDIS_PASSWORD":          s.Password,
		"TOLLGATE_REDIS_SENTINEL_PASSWORD": s.Password,
		"TOLLGATE_TOKEN_SECRET":            "production-token-secret-0123456789abcdef",
		"TOLLGATE_PEPPER":                  "production-pepper-0123456789abcdef-xyz",
		"TOLLGATE_KEY_ENCRYPTION_KEY":      "4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b",
	})
}
