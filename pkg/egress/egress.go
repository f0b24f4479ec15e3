// Package egress is the HTTP client for outbound requests to addresses that
// customers supply (a client's jwks_uri): https only, no redirects, no
// proxy, a deadline and a body cap, and a dialer that refuses loopback,
// private, link-local, shared (CGNAT) and other non-public addresses after
// the name is resolved, so a name pointing at 127.0.0.1 or the cloud
// metadata address 169.254.169.254 is refused like the literal address.
package egress

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Defaults of Options.
const (
	DefaultTimeout  = 5 * time.Second
	DefaultMaxBytes = 64 << 10
)

// ErrRefused is returned for a URL or an address the client will not reach.
var ErrRefused = errors.New("egress: address refused")

// ErrTooLarge is returned for a body above Options.MaxBytes.
var ErrTooLarge = errors.New("egress: response body too large")

// Options configure a Client.
type Options struct {
	// AllowInsecure allows http URLs and non-public addresses: for tests
	// and local development only.
	AllowInsecure bool
	// Timeout bounds a whole request, body included; DefaultTimeout when 0.
	Timeout time.Duration
	// MaxBytes bounds a response body; DefaultMaxBytes when 0.
	MaxBytes int64
	// Resolver resolves host names; nil is the system's. Tests give one
	// that answers chosen addresses, to show that a name resolving to a
	// non-public address is refused.
	Resolver *net.Resolver
}

// Client fetches documents from customer-supplied URLs.
type Client struct {
	http     *http.Client
	insecure bool
	maxBytes int64
}

// New returns a Client.
func New(opts Options) *Client {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	dialer := &net.Dialer{Timeout: opts.Timeout, Resolver: opts.Resolver}
	if !opts.AllowInsecure {
		dialer.Control = refuseNonPublic
	}
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would dial for us, past the address check
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   opts.Timeout,
		ResponseHeaderTimeout: opts.Timeout,
		MaxIdleConns:          16,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &Client{
		http: &http.Client{
			Transport: transport,
			Timeout:   opts.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return fmt.Errorf("%w: redirects are not followed", ErrRefused)
			},
		},
		insecure: opts.AllowInsecure,
		maxBytes: opts.MaxBytes,
	}
}

// CheckURL reports whether u is a URL the client may fetch: absolute,
// https (http only when insecure URLs are allowed), with a host, without
// user info or a fragment, and not a literal non-public address.
func CheckURL(raw string, allowInsecure bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: not a URL", ErrRefused)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowInsecure:
	default:
		return fmt.Errorf("%w: the URL must use https", ErrRefused)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("%w: the URL has no host", ErrRefused)
	}
	if u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%w: the URL may not carry user info or a fragment", ErrRefused)
	}
	if allowInsecure {
		return nil
	}
	if ip, err := netip.ParseAddr(u.Hostname()); err == nil && !Public(ip) {
		return fmt.Errorf("%w: %s is not a public address", ErrRefused, ip)
	}
	if h := strings.TrimSuffix(strings.ToLower(u.Hostname()), "."); h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return fmt.Errorf("%w: localhost is not a public address", ErrRefused)
	}
	return nil
}

// Get fetches url and returns its body; any status but 200 is an error.
func (c *Client) Get(ctx context.Context, rawURL string) ([]byte, error) {
	if err := CheckURL(rawURL, c.insecure); err != nil {
		return nil, err
	}
	return c.get(ctx, rawURL)
}

// get fetches rawURL, whose form CheckURL accepted; the dialer still
// checks every address it connects to.
func (c *Client) get(ctx context.Context, rawURL string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("egress: get: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("egress: get: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("egress: read body: %w", err)
	}
	if int64(len(body)) > c.maxBytes {
		return nil, ErrTooLarge
	}
	return body, nil
}

// Post sends body to rawURL with the given headers and returns the answer's
// status; its body is read (up to MaxBytes) and dropped. The URL is checked
// like Get's, and the dialer checks every address it connects to, after
// resolution: a name that resolves to a non-public address is refused at
// this moment, whatever it resolved to before.
func (c *Client) Post(ctx context.Context, rawURL string, header http.Header, body []byte) (int, error) {
	if err := CheckURL(rawURL, c.insecure); err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("egress: post: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, c.maxBytes))
	return resp.StatusCode, nil
}

// Public reports whether ip is a public unicast address: not loopback,
// private (RFC 1918, RFC 4193), link-local (169.254.0.0/16, fe80::/10,
// where cloud metadata services live), shared (100.64.0.0/10),
// unspecified, multicast, or reserved.
func Public(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() ||
		ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64 can reach IPv4 private space
	netip.MustParsePrefix("2001:db8::/32"),
}

// refuseNonPublic is the dialer's Control: it sees the resolved address,
// so every name, redirect-free retry and DNS answer is checked.
func refuseNonPublic(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrRefused, address)
	}
	if !Public(ap.Addr()) {
		return fmt.Errorf("%w: %s is not a public address", ErrRefused, ap.Addr())
	}
	return nil
}
