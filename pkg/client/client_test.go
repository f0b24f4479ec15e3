package client

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestETag(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"3", `"3"`}, {`"3"`, `"3"`}, {`W/"3"`, `W/"3"`}, {"*", "*"},
	} {
		if got := ETag(tt.in); got != tt.want {
			t.Errorf("ETag(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPolicyChangeJSON(t *testing.T) {
	for _, tt := range []struct {
		in   PolicyChange
		want string
	}{
		{PolicyChange{}, `{}`},
		{PolicyChange{RequirePasswordForNewKeys: Set(false)}, `{"require_password_for_new_keys":false}`},
		{PolicyChange{KeysManagedBy: Inherit[string]()}, `{"keys_managed_by":null}`},
		{PolicyChange{RequirePasswordForNewKeys: Set(true), KeysManagedBy: Set("admins")}, `{"require_password_for_new_keys":true,"keys_managed_by":"admins"}`},
	} {
		b, err := json.Marshal(tt.in)
		if err != nil || string(b) != tt.want {
			t.Errorf("Marshal(%+v) = %s, %v; want %s", tt.in, b, err, tt.want)
		}
	}
}

func TestCredentialUpdateSendsOnlyWhatIsSet(t *testing.T) {
	for _, tt := range []struct {
		in   CredentialUpdate
		want string
	}{
		{CredentialUpdate{IfMatch: "3"}, `{}`},
		{CredentialUpdate{Scopes: []string{}, RateLimits: map[string]RateLimit{}}, `{"scopes":[],"rate_limits":{}}`},
		{CredentialUpdate{ExpiresAt: new(""), MayIntrospect: new(false)}, `{"may_introspect":false,"expires_at":""}`},
	} {
		b, err := json.Marshal(tt.in)
		if err != nil || string(b) != tt.want {
			t.Errorf("Marshal(%+v) = %s, %v; want %s", tt.in, b, err, tt.want)
		}
	}
}

// TestClientCredentials: the token is fetched once, sent as Bearer, fetched
// again once it nears its expiry, and again when the API refuses it.
func TestClientCredentials(t *testing.T) {
	var fetched atomic.Int32
	var refuse atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/oauth/token":
			id, secret, ok := r.BasicAuth()
			if !ok || id != "12" || secret != "a%2Bb" || r.FormValue("grant_type") != "client_credentials" {
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
				return
			}
			n := fetched.Add(1)
			_, _ = w.Write([]byte(`{"access_token":"tok` + string(rune('0'+n)) + `","token_type":"bearer","expires_in":3600}`))
		case "/api/v1/accounts/1":
			if refuse.Swap(false) || r.Header.Get("Authorization") != "Bearer tok"+string(rune('0'+fetched.Load())) {
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"type":"about:blank","title":"Unauthorized","status":401}`))
				return
			}
			_, _ = w.Write([]byte(`{"id":1,"name":"root","status":"active","version":2}`))
		}
	}))
	defer srv.Close()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c, err := New(srv.URL, WithClientCredentials("12", "a+b"))
	if err != nil {
		t.Fatal(err)
	}
	c.creds.(*clientCredentials).now = func() time.Time { return now }
	get := func(want int32) {
		t.Helper()
		a, err := c.GetAccount(t.Context(), 1)
		if err != nil || a.Name != "root" || a.Version != 2 || !strings.Contains(string(a.Raw), `"root"`) {
			t.Fatalf("get = %+v, %v", a, err)
		}
		if got := fetched.Load(); got != want {
			t.Errorf("tokens fetched = %d, want %d", got, want)
		}
	}
	get(1)
	get(1)
	now = now.Add(time.Hour - refreshMargin)
	get(2)
	refuse.Store(true)
	get(3)
}

func TestNewRefusesPlainHTTPToAnotherMachine(t *testing.T) {
	for _, tt := range []struct {
		url  string
		opts []Option
		want bool // refused
	}{
		{"http://auth.example.test", []Option{WithToken("t")}, true},
		{"http://10.1.2.3:8080", []Option{WithClientCredentials("1", "s")}, true},
		{"http://auth.example.test", []Option{WithToken("t"), WithPlainHTTP()}, false},
		{"http://127.0.0.1:8080", []Option{WithToken("t")}, false},
		{"http://[::1]:8080", []Option{WithToken("t")}, false},
		{"http://LocalHost:8080", []Option{WithToken("t")}, false},
		{"https://auth.example.test", []Option{WithToken("t")}, false},
	} {
		_, err := New(tt.url, tt.opts...)
		if got := errors.Is(err, ErrPlainHTTP); got != tt.want || (!tt.want && err != nil) {
			t.Errorf("New(%q): err = %v, want refused %v", tt.url, err, tt.want)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	for _, tt := range []struct {
		url  string
		opts []Option
	}{
		{"https://auth.example.test", nil},
		{"ftp://auth.example.test", []Option{WithToken("t")}},
		{"https://auth.example.test/?a=b", []Option{WithToken("t")}},
		{"https://", []Option{WithToken("t")}},
	} {
		if _, err := New(tt.url, tt.opts...); err == nil {
			t.Errorf("New(%q) with %d options: no error", tt.url, len(tt.opts))
		}
	}
}
