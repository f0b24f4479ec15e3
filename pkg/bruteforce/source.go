package bruteforce

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Source answers the source address counted for a request from remoteAddr
// (http.Request.RemoteAddr, "host:port"): the IP address, or for IPv6 its
// /64 network, which one subscriber typically holds whole. An address that
// does not parse is answered as it is, cut to 64 bytes.
func Source(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	return SourceOfHost(host)
}

// SourceOfHost is Source for an address without a port, as ClientIP
// answers it: splitting it again would read a host holding a colon (a peer
// that is no IP address) as "host:port" and count it under another key.
func SourceOfHost(host string) string {
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host[:min(len(host), 64)]
	}
	return sourceOf(addr)
}

func sourceOf(addr netip.Addr) string {
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

// ClientIP answers the address of the client that sent r, whole (an IPv6
// address is not cut to its /64 as in Source), for the audit trail: the TCP
// peer, unless the peer is in trusted (the proxies in front of Tollgate,
// e.g. a load balancer or the API gateway), in which case it is the
// right-most address of X-Forwarded-For that is not itself in trusted (the
// address the nearest trusted proxy was connected from; everything to its
// left was written by the client and is ignored). When every forwarded
// address is trusted it is the left-most; when the header is missing, or
// the address next in line does not parse, the last trusted hop stands.
// X-Forwarded-For from a peer not in trusted is ignored, and so is every
// header with no trusted proxies. It is the one trusted-proxy rule: reqctx.Middleware
// applies it once per request; the brute-force protection counts by its
// Source, and every surface records it.
func ClientIP(r *http.Request, trusted []netip.Prefix) string {
	addr, _ := Client(r, trusted)
	return addr
}

// Client returns ClientIP's address of r, and whether it is one a trusted
// proxy forwarded rather than the TCP peer's own.
func Client(r *http.Request, trusted []netip.Prefix) (addr string, forwardedByProxy bool) {
	if addr, ok := forwarded(r, trusted); ok {
		return addr.String(), true
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr, false
	}
	return host, false
}

// TrustedPeer reports whether the TCP peer of r is in trusted: one of the
// proxies whose headers (X-Forwarded-For, X-Forwarded-Proto) are believed.
func TrustedPeer(r *http.Request, trusted []netip.Prefix) bool {
	if len(trusted) == 0 {
		return false
	}
	peer, ok := parseHop(r.RemoteAddr)
	return ok && isTrusted(peer, trusted)
}

// forwarded answers the client address a trusted peer forwarded, by the
// rule ClientIP describes.
func forwarded(r *http.Request, trusted []netip.Prefix) (netip.Addr, bool) {
	if !TrustedPeer(r, trusted) {
		return netip.Addr{}, false
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	var last netip.Addr // the left-most trusted hop so far
	for i := len(hops) - 1; i >= 0; i-- {
		addr, ok := parseHop(hops[i])
		if !ok {
			break
		}
		if !isTrusted(addr, trusted) {
			return addr, true
		}
		last = addr
	}
	return last, last.IsValid()
}

// parseHop reads an address as proxies write it: "192.0.2.1", "2001:db8::1",
// "[2001:db8::1]", or any of them with a port.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return addr.Unmap().WithZone(""), true
}

func isTrusted(addr netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
