package bruteforce_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/pkg/bruteforce"
)

// FuzzClientAddress feeds arbitrary peers and X-Forwarded-For headers to
// the choice of a request's source: it never panics, answers a bounded key
// (no list, no header text beyond 64 bytes), ignores the header from an
// untrusted peer, and never answers a trusted proxy's address when the
// header names an untrusted one to its right.
func FuzzClientAddress(f *testing.F) {
	for _, seed := range []struct{ peer, xff string }{
		{"10.0.0.1:1234", "192.0.2.7"},
		{"10.0.0.1:1234", "198.51.100.1, 192.0.2.7, 10.0.0.2"},
		{"192.0.2.1:1", "10.0.0.9"},
		{"[2001:db8::1]:443", "2001:db8:1:2::3"},
		{"10.0.0.1:1", "garbage, 192.0.2.1"},
		{"10.0.0.1:1", "[::ffff:192.0.2.1]:80"},
		{"not an address", ""},
		{"10.0.0.1:1", strings.Repeat("1.2.3.4,", 1000)},
	} {
		f.Add(seed.peer, seed.xff)
	}
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	f.Fuzz(func(t *testing.T, peer, xff string) {
		r := httptest.NewRequest(http.MethodPost, "/oauth/token", nil)
		r.RemoteAddr = peer
		if xff != "" {
			r.Header["X-Forwarded-For"] = []string{xff}
		}
		got := clientAddress(r, trusted)
		if len(got) > 64 {
			t.Fatalf("ClientAddress(peer %q, XFF %q) = %q", peer, xff, got)
		}
		// net/http sets RemoteAddr from the TCP peer: from a real one,
		// the source is one address or network, never header text.
		if _, err := netip.ParseAddrPort(peer); err == nil {
			if _, err := netip.ParsePrefix(got); err != nil {
				if _, err := netip.ParseAddr(got); err != nil {
					t.Fatalf("ClientAddress(peer %q, XFF %q) = %q, not an address or network", peer, xff, got)
				}
			}
		}
		if untrusted := clientAddress(r, nil); untrusted != bruteforce.Source(peer) {
			t.Fatalf("without trusted proxies, ClientAddress(peer %q, XFF %q) = %q, want the peer %q", peer, xff, untrusted, bruteforce.Source(peer))
		}
		if ap, err := netip.ParseAddrPort(strings.TrimSpace(peer)); err == nil && !trusted[0].Contains(ap.Addr().Unmap().WithZone("")) && !trusted[1].Contains(ap.Addr().Unmap().WithZone("")) {
			if got != bruteforce.Source(peer) {
				t.Fatalf("untrusted peer %q with XFF %q: source %q, want the peer's", peer, xff, got)
			}
		}
		if fwd := forwardedAddress(r, trusted); fwd != "" && fwd != got {
			t.Fatalf("ForwardedAddress = %q, ClientAddress = %q for peer %q XFF %q", fwd, got, peer, xff)
		}
	})
}
