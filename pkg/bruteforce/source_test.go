package bruteforce_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/pkg/bruteforce"
	"github.com/tollgate/tollgate/pkg/reqctx"
)

func TestSource(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"192.0.2.1:1234", "192.0.2.1"},
		{"[::ffff:192.0.2.1]:1234", "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[fe80::1%eth0]:80", "fe80::/64"},
		{"192.0.2.1", "192.0.2.1"},
		{"@", "@"},
		{"", ""},
		{strings.Repeat("x", 100), strings.Repeat("x", 64)},
	} {
		if got := bruteforce.Source(tt.in); got != tt.want {
			t.Errorf("Source(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// clientAddress is the source a request's failures are counted under, as
// the request context sets it for every surface (reqctx.Source).
func clientAddress(r *http.Request, trusted []netip.Prefix) string {
	var source string
	reqctx.Middleware(trusted, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		source = reqctx.Source(r.Context())
	})).ServeHTTP(httptest.NewRecorder(), r)
	return source
}

// forwardedAddress is the source the check endpoint counts under: the
// Source of the address a trusted proxy forwarded, "" when none did.
func forwardedAddress(r *http.Request, trusted []netip.Prefix) string {
	addr, forwarded := bruteforce.Client(r, trusted)
	if !forwarded {
		return ""
	}
	return bruteforce.SourceOfHost(addr)
}

func TestClientAddress(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	for _, tt := range []struct {
		name    string
		peer    string
		xff     []string
		trusted []netip.Prefix
		want    string // ClientAddress
		fwd     string // ForwardedAddress
	}{
		{"no trusted proxies: the peer, header ignored", "192.0.2.1:1", []string{"198.51.100.7"}, nil, "192.0.2.1", ""},
		{"untrusted peer: header ignored", "192.0.2.1:1", []string{"198.51.100.7"}, trusted, "192.0.2.1", ""},
		{"trusted peer without a header", "10.0.0.1:1", nil, trusted, "10.0.0.1", ""},
		{"trusted peer", "10.0.0.1:1", []string{"198.51.100.7"}, trusted, "198.51.100.7", "198.51.100.7"},
		{"spoofed entries left of the real one", "10.0.0.1:1", []string{"203.0.113.9, 1.2.3.4, 198.51.100.7"}, trusted, "198.51.100.7", "198.51.100.7"},
		{"chain of trusted proxies", "10.0.0.1:1", []string{"203.0.113.9, 198.51.100.7, 10.1.1.1, 10.2.2.2"}, trusted, "198.51.100.7", "198.51.100.7"},
		{"several header lines", "10.0.0.1:1", []string{"203.0.113.9", "198.51.100.7, 10.1.1.1"}, trusted, "198.51.100.7", "198.51.100.7"},
		{"every hop trusted: the left-most", "10.0.0.1:1", []string{"10.9.9.9, 10.1.1.1"}, trusted, "10.9.9.9", "10.9.9.9"},
		{"garbage stops the walk at the last trusted hop", "10.0.0.1:1", []string{"198.51.100.7, unknown, 10.1.1.1"}, trusted, "10.1.1.1", "10.1.1.1"},
		{"garbage right-most: the peer", "10.0.0.1:1", []string{"198.51.100.7, unknown"}, trusted, "10.0.0.1", ""},
		{"empty header", "10.0.0.1:1", []string{""}, trusted, "10.0.0.1", ""},
		{"ports and brackets", "10.0.0.1:1", []string{"[2001:db8:1:2::9]:443, 198.51.100.7:80"}, trusted, "198.51.100.7", "198.51.100.7"},
		{"IPv6 forwarded, grouped by /64", "10.0.0.1:1", []string{"2001:db8:1:2::9"}, trusted, "2001:db8:1:2::/64", "2001:db8:1:2::/64"},
		{"IPv6 proxy", "[2001:db8:ffff::1]:1", []string{"192.0.2.5"}, trusted, "192.0.2.5", "192.0.2.5"},
		{"IPv4-mapped peer", "[::ffff:10.0.0.1]:1", []string{"192.0.2.5"}, trusted, "192.0.2.5", "192.0.2.5"},
		{"IPv4-mapped forwarded address", "10.0.0.1:1", []string{"::ffff:192.0.2.5"}, trusted, "192.0.2.5", "192.0.2.5"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.peer
		for _, v := range tt.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := clientAddress(r, tt.trusted); got != tt.want {
			t.Errorf("%s: ClientAddress = %q, want %q", tt.name, got, tt.want)
		}
		if got := forwardedAddress(r, tt.trusted); got != tt.fwd {
			t.Errorf("%s: ForwardedAddress = %q, want %q", tt.name, got, tt.fwd)
		}
	}
}

// ClientIP is the trusted-proxy rule of ClientAddress with the address
// whole, as the audit trail records it.
func TestClientIP(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	tests := []struct {
		name    string
		remote  string
		xff     []string
		trusted []netip.Prefix
		want    string
	}{
		{"direct peer", "192.0.2.1:1234", nil, trusted, "192.0.2.1"},
		{"untrusted peer's header is ignored", "192.0.2.1:1234", []string{"198.51.100.7"}, trusted, "192.0.2.1"},
		{"no trusted proxies: header ignored", "10.1.2.3:1234", []string{"198.51.100.7"}, nil, "10.1.2.3"},
		{"trusted proxy forwards the client", "10.1.2.3:1234", []string{"198.51.100.7"}, trusted, "198.51.100.7"},
		{"client-written hops left of the proxy's are ignored", "10.1.2.3:1234", []string{"203.0.113.9, 198.51.100.7"}, trusted, "198.51.100.7"},
		{"chain of trusted proxies", "10.1.2.3:1234", []string{"198.51.100.7, 10.9.9.9"}, trusted, "198.51.100.7"},
		{"IPv6 client kept whole, not cut to /64", "[2001:db8:ffff::1]:443", []string{"2001:db8:1:2:3:4:5:6"}, trusted, "2001:db8:1:2:3:4:5:6"},
		{"trusted proxy forwarding nothing", "10.1.2.3:1234", nil, trusted, "10.1.2.3"},
		{"garbage next in line: the last trusted hop stands", "10.1.2.3:1234", []string{"not-an-address"}, trusted, "10.1.2.3"},
		{"peer without a port", "@", nil, trusted, "@"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := bruteforce.ClientIP(r, tt.trusted); got != tt.want {
				t.Errorf("ClientIP(%s, X-Forwarded-For %q) = %q, want %q", tt.remote, tt.xff, got, tt.want)
			}
		})
	}
}
