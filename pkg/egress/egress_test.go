package egress_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/egress"
)

func TestPublic(t *testing.T) {
	for addr, want := range map[string]bool{
		"8.8.8.8": true, "2606:4700::1111": true, "93.184.216.34": true,
		"127.0.0.1": false, "127.9.9.9": false, "::1": false, "10.1.2.3": false, "172.16.0.1": false,
		"192.168.1.1": false, "169.254.169.254": false, "fe80::1": false, "fd00::1": false,
		"100.64.0.1": false, "0.0.0.0": false, "::": false, "224.0.0.1": false, "::ffff:127.0.0.1": false,
		"::ffff:169.254.169.254": false, "64:ff9b::a9fe:a9fe": false, "255.255.255.255": false,
	} {
		if got := egress.Public(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Public(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestCheckURL(t *testing.T) {
	for _, tc := range []struct {
		url      string
		insecure bool
		ok       bool
	}{
		{"https://keys.example.com/jwks.json", false, true},
		{"http://keys.example.com/jwks.json", false, false},
		{"http://keys.example.com/jwks.json", true, true},
		{"https://127.0.0.1/jwks.json", false, false},
		{"https://169.254.169.254/latest/meta-data/", false, false},
		{"https://[::1]:8443/jwks", false, false},
		{"https://localhost/jwks", false, false},
		{"https://LOCALHOST./jwks", false, false},
		{"https://api.localhost/jwks", false, false},
		{"https://127.0.0.1/jwks.json", true, true},
		{"https://user:pw@keys.example.com/", false, false},
		{"https://keys.example.com/#frag", false, false},
		{"file:///etc/passwd", true, false},
		{"/relative", false, false},
		{"https://", false, false},
		{"://bad", false, false},
	} {
		err := egress.CheckURL(tc.url, tc.insecure)
		if (err == nil) != tc.ok {
			t.Errorf("CheckURL(%q, %v) = %v, want ok %v", tc.url, tc.insecure, err, tc.ok)
		}
		if err != nil && !errors.Is(err, egress.ErrRefused) {
			t.Errorf("CheckURL(%q) = %v, want ErrRefused", tc.url, err)
		}
	}
}

// The dialer checks the resolved address: a name that resolves to
// loopback is refused, though the URL's host is no literal address.
func TestDialerRefusesResolvedLoopback(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("{}")) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	// The machine's own name resolves to a loopback address on most hosts
	// (/etc/hosts); CheckURL knows nothing of it.
	host, err := os.Hostname()
	if err != nil {
		t.Skipf("no host name: %v", err)
	}
	addrs, err := net.DefaultResolver.LookupNetIP(t.Context(), "ip4", host)
	if err != nil || len(addrs) == 0 || !addrs[0].IsLoopback() {
		t.Skipf("host name %q does not resolve to loopback here (%v, %v)", host, addrs, err)
	}
	c := egress.New(egress.Options{Timeout: 2 * time.Second})
	// CheckURL passes (no literal address), so it is the dialer that refuses.
	_, err = c.Get(t.Context(), "https://"+net.JoinHostPort(host, port)+"/")
	if !errors.Is(err, egress.ErrRefused) {
		t.Fatalf("Get of a name resolving to loopback: got %v, want ErrRefused", err)
	}
}

func TestGet(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"keys":[]}`)) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(make([]byte, 2048)) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/404", http.NotFound)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	strict := egress.New(egress.Options{})
	if _, err := strict.Get(t.Context(), srv.URL+"/ok"); !errors.Is(err, egress.ErrRefused) {
		t.Fatalf("strict Get of http loopback: got %v, want ErrRefused", err)
	}
	c := egress.New(egress.Options{AllowInsecure: true, Timeout: 300 * time.Millisecond, MaxBytes: 1024})
	if body, err := c.Get(t.Context(), srv.URL+"/ok"); err != nil || string(body) != `{"keys":[]}` {
		t.Fatalf("Get: %q, %v", body, err)
	}
	if _, err := c.Get(t.Context(), srv.URL+"/big"); !errors.Is(err, egress.ErrTooLarge) {
		t.Fatalf("Get of a large body: got %v, want ErrTooLarge", err)
	}
	start := time.Now()
	if _, err := c.Get(t.Context(), srv.URL+"/slow"); err == nil {
		t.Fatal("Get of a slow server: no error")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Get of a slow server took %v, want about the timeout", d)
	}
	if _, err := c.Get(t.Context(), srv.URL+"/redirect"); err == nil {
		t.Fatal("Get followed a redirect")
	}
	if _, err := c.Get(t.Context(), srv.URL+"/404"); err == nil {
		t.Fatal("Get of a 404: no error")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.Get(ctx, srv.URL+"/ok"); err == nil {
		t.Fatal("Get with a canceled context: no error")
	}
}

// The dialer refuses a non-public address on its own, whatever the URL
// check let through (a DNS answer, a literal it did not know).
func TestDialerRefusesNonPublic(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("{}")) }))
	defer srv.Close()
	c := egress.New(egress.Options{Timeout: 2 * time.Second})
	for _, u := range []string{srv.URL + "/", "http://169.254.169.254/latest/meta-data/", "http://[::1]:1/", "http://10.0.0.1:1/"} {
		if _, err := c.GetUnchecked(t.Context(), u); !errors.Is(err, egress.ErrRefused) {
			t.Errorf("GetUnchecked(%s): got %v, want ErrRefused", u, err)
		}
	}
	open := egress.New(egress.Options{AllowInsecure: true, Timeout: 2 * time.Second})
	if _, err := open.GetUnchecked(t.Context(), srv.URL+"/"); err != nil {
		t.Errorf("GetUnchecked with insecure allowed: %v", err)
	}
}
