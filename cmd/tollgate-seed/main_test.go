package main

import (
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/token"
	"github.com/tollgate/tollgate/storage"
	tgredis "github.com/tollgate/tollgate/storage/redis"
	"github.com/tollgate/tollgate/storage/redis/redistest"
)

func TestSeed(t *testing.T) {
	for _, root := range []int64{0, 1} {
		t.Run("root "+strconv.FormatInt(root, 10), func(t *testing.T) { testSeed(t, root) })
	}
}

// testSeed seeds tokens naming root (0: of the older format).
func testSeed(t *testing.T, root int64) {
	client, prefix := redistest.New(t)
	url := os.Getenv("TOLLGATE_TEST_REDIS_URL")
	if url == "" {
		url = redistest.DefaultURL
	}
	secret := "0123456789abcdef0123456789abcdef-seed-token-secret"
	env := map[string]string{
		"TOLLGATE_REDIS_URL":        url,
		"TOLLGATE_REDIS_KEY_PREFIX": prefix,
		"TOLLGATE_TOKEN_SECRET":     secret,
	}
	lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	out := t.TempDir() + "/tokens.txt"
	o, err := parseFlags([]string{"-tokens", "500", "-clients", "10-19", "-account", "3", "-root", strconv.FormatInt(root, 10),
		"-generation", "2", "-sample", "50", "-sample-out", out, "-workers", "8"}, io.Discard)
	if err != nil {
		t.Fatalf("parseFlags: %v", err)
	}
	if err := run(t.Context(), o, lookup, io.Discard); err != nil {
		t.Fatalf("run: %v", err)
	}

	// One key per token, and the store's few bookkeeping keys.
	keys, err := redistest.Keys(t.Context(), client, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) < 500 || len(keys) > 510 {
		t.Errorf("%d keys under the prefix, want 500 tokens and a few others", len(keys))
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	sample := strings.Fields(string(raw))
	if len(sample) != 50 {
		t.Fatalf("%d sampled tokens, want 50", len(sample))
	}
	strategy, err := token.NewStrategy([]byte(secret), nil)
	if err != nil {
		t.Fatal(err)
	}
	store := tgredis.New(client, tgredis.Options{KeyPrefix: prefix})
	for _, tok := range sample {
		sig, err := strategy.Signature(t.Context(), tok)
		if root != 0 {
			var n token.Names
			n, sig, err = strategy.RootedSignature(tok)
			if err == nil && (n.Root != root || n.Account != 3 || n.Client < 10 || n.Client > 19) {
				t.Errorf("sampled token names %+v, want root %d, account 3, a client of 10-19", n, root)
			}
			sig = storage.Rooted(root, sig)
		}
		if err != nil {
			t.Fatalf("sampled token is not one of this secret: %v", err)
		}
		rec, err := store.GetToken(t.Context(), sig)
		if err != nil {
			t.Fatalf("GetToken(sampled token): %v", err)
		}
		if rec.ClientID < 10 || rec.ClientID > 19 || rec.AccountID != 3 || rec.Generation != 2 ||
			rec.GrantType != "client_credentials" || !slices.Equal(rec.Scopes, []string{"read", "write"}) {
			t.Errorf("record = %+v, want a client_credentials token of clients 10-19, account 3, generation 2, read write", rec)
		}
		if d := time.Until(rec.ExpiresAt); d < 59*time.Minute || d > time.Hour {
			t.Errorf("token expires in %v, want about an hour", d)
		}
	}
}

func TestParseFlagsRefuses(t *testing.T) {
	for _, args := range [][]string{
		{"-account", "1"},                                    // no clients
		{"-clients", "5-2", "-account", "1"},                 // reversed
		{"-clients", "x-2", "-account", "1"},                 // not a number
		{"-clients", "1-2"},                                  // no account
		{"-clients", "1-2", "-account", "1", "-sample", "5"}, // no sample file
		{"-clients", "1-2", "-account", "1", "-tokens", "0"},
		{"-clients", "1-2", "-account", "1", "extra"},
		{"-clients", "1-2", "-account", "1", "-root", "-1"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) = nil error, want one", args)
		}
	}
}
