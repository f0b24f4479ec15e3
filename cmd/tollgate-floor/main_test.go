package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tollgate/tollgate/pkg/secret"
	"github.com/tollgate/tollgate/storage/redis/redistest"
)

func TestFloorPaths(t *testing.T) {
	client, prefix := redistest.New(t)
	// Cheap argon2id parameters: the test checks the path, not its cost.
	passwords, err := secret.NewPasswords(secret.Argon2Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	if err != nil {
		t.Fatal(err)
	}
	hash, err := passwords.Hash(FloorPassword)
	if err != nil {
		t.Fatal(err)
	}
	verify := func(_ context.Context, password string) bool {
		ok, err := passwords.Verify(hash, password)
		return err == nil && ok
	}
	srv := httptest.NewServer(newHandler(client, prefix, time.Minute, verify))
	defer srv.Close()

	do := func(req *http.Request) *http.Response {
		t.Helper()
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = resp.Body.Close() })
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: status %d, want 200", req.Method, req.URL.Path, resp.StatusCode)
		}
		return resp
	}
	form := func(path string, v url.Values) *http.Request {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+path, strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req
	}

	var tok struct {
		AccessToken string `json:"access_token"`
	}
	resp := do(form("/oauth/token", url.Values{"grant_type": {"client_credentials"}}))
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token answer: %v %+v", err, tok)
	}
	if ttl := client.TTL(t.Context(), prefix+"t:"+tok.AccessToken).Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("token key TTL %v, want (0, 1m]", ttl)
	}

	resp = do(form("/oauth/token", url.Values{"grant_type": {"eskimi_dsp"}, "username": {"u"}, "password": {FloorPassword}}))
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("eskimi_dsp token answer: %v %+v", err, tok)
	}
	bad, err := srv.Client().Do(form("/oauth/token", url.Values{"grant_type": {"eskimi_dsp"}, "username": {"u"}, "password": {"wrong"}}))
	if err != nil {
		t.Fatal(err)
	}
	_ = bad.Body.Close()
	if bad.StatusCode != http.StatusBadRequest {
		t.Fatalf("eskimi_dsp with a wrong password: status %d, want 400", bad.StatusCode)
	}

	var in struct {
		Active bool `json:"active"`
	}
	resp = do(form("/oauth/introspect", url.Values{"token": {tok.AccessToken}}))
	if err := json.NewDecoder(resp.Body).Decode(&in); err != nil || !in.Active {
		t.Fatalf("introspect answer: %v active=%v", err, in.Active)
	}

	for _, h := range [][2]string{{"Authorization", "Bearer " + tok.AccessToken}, {"X-API-Key", tok.AccessToken}} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/auth/check", nil)
		req.Header.Set(h[0], h[1])
		if resp := do(req); resp.Header.Get("X-Tollgate-Subject") == "" {
			t.Fatalf("check with %s: no X-Tollgate-Subject header", h[0])
		}
	}
}

// TestFloorAssertions: the floor's private_key_jwt path verifies an
// assertion's signature and spends its jti once.
func TestFloorAssertions(t *testing.T) {
	client, prefix := redistest.New(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv := httptest.NewServer(withAssertions(newHandler(client, prefix, time.Minute, nil), client, prefix, &key.PublicKey))
	defer srv.Close()
	sign := func(k *ecdsa.PrivateKey, jti string) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, nil)
		if err != nil {
			t.Fatal(err)
		}
		jws, err := s.Sign([]byte(`{"exp":` + strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10) + `,"jti":"` + jti + `"}`))
		if err != nil {
			t.Fatal(err)
		}
		c, _ := jws.CompactSerialize()
		return c
	}
	status := func(assertion string) int {
		resp, err := srv.Client().PostForm(srv.URL+"/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_assertion": {assertion}})
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	good := sign(key, "a")
	for _, tc := range []struct {
		name, assertion string
		want            int
	}{
		{"good", good, http.StatusOK},
		{"replayed", good, http.StatusUnauthorized},
		{"another key", sign(other, "b"), http.StatusUnauthorized},
		{"garbage", "a.b.c", http.StatusUnauthorized},
	} {
		if got := status(tc.assertion); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
}
