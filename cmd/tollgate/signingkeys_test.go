package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// jwksKids returns the key ids a running server publishes.
func jwksKids(t *testing.T, addr string) []string {
	t.Helper()
	res, err := http.Get("http://" + addr + "/.well-known/jwks.json")
	if err != nil {
		t.Fatalf("GET jwks: %v", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatalf("jwks %s: %v", body, err)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.Kid)
	}
	return out
}

// TestSigningKeysRotate: the embedded default generates its key-encryption
// key once; `tollgate signing-keys rotate` makes a key that a running server
// publishes on its next reload, without a restart.
func TestSigningKeysRotate(t *testing.T) {
	dir := t.TempDir()
	vars := map[string]string{
		"TOLLGATE_DATA_DIR":                     dir,
		"TOLLGATE_HTTP_ADDR":                    "127.0.0.1:0",
		"TOLLGATE_OPS_ADDR":                     "127.0.0.1:0",
		"TOLLGATE_SIGNING_KEY_REFRESH_INTERVAL": "1s",
	}
	addr, _, _ := runServe(t, vars)
	first := jwksKids(t, addr)
	if len(first) != 1 {
		t.Fatalf("a new installation publishes %v, want one key", first)
	}
	kek, err := os.ReadFile(filepath.Join(dir, "key_encryption_key"))
	if err != nil || !regexp.MustCompile(`^[0-9a-f]{64}\n$`).Match(kek) {
		t.Fatalf("key_encryption_key file: %v, want 64 hex digits", err)
	}

	out, err := runCommand(t, vars, "signing-keys", "rotate")
	if err != nil {
		t.Fatalf("signing-keys rotate: %v", err)
	}
	m := regexp.MustCompile(`^new signing key (\S+) \(ES256\) published; it signs from \S+\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("signing-keys rotate printed %q", out)
	}
	kid := m[1]
	deadline := time.Now().Add(20 * time.Second)
	for {
		kids := jwksKids(t, addr)
		if len(kids) == 2 && kids[0] == first[0] && kids[1] == kid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the running server publishes %v, want %s then %s", kids, first[0], kid)
		}
		time.Sleep(200 * time.Millisecond)
	}

	out, err = runCommand(t, vars, "signing-keys", "list")
	if err != nil {
		t.Fatalf("signing-keys list: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], first[0]) || !strings.HasSuffix(lines[1], "signing") ||
		!strings.HasPrefix(lines[2], kid) || !strings.HasSuffix(lines[2], "next") {
		t.Errorf("signing-keys list printed:\n%s\nwant %s signing, then %s next", out, first[0], kid)
	}

	if _, err := runCommand(t, vars, "signing-keys", "spin"); err == nil {
		t.Error("signing-keys spin succeeded")
	}
}
