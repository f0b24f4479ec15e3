// Package reqctx owns what Tollgate knows about the HTTP request being
// served, for every surface alike (the OAuth endpoints, the check
// endpoint, the management API, the console): its id, its source address
// behind the trusted proxies, and the principal it authenticated as. The
// Middleware sets them once per request, at the router; handlers read them
// from the context, and name the principal once they know it; the
// LogHandler puts the id and the client on every log line written with the
// request's context, whatever package writes it.
package reqctx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/netip"
	"sync"

	"github.com/tollgate/tollgate/pkg/bruteforce"
)

// HeaderRequestID carries a request's id, in the request (the caller's own,
// kept when it is safe) and in every answer.
const HeaderRequestID = "X-Request-Id"

// Principal is who a request authenticated as; zero fields are unknown.
type Principal struct {
	// ClientID is the client, API key or token's client the request
	// authenticated with.
	ClientID int64
	// UserID is the user acting: a console user, or the user of a token.
	UserID int64
}

// request is what the context of one request carries. The principal is
// named by the handler that authenticates, after the Middleware made the
// context, so it is the one field that changes.
type request struct {
	id        string
	addr      string // the client's address, whole (bruteforce.ClientIP)
	source    string // the address failures are counted under (bruteforce.SourceOfHost of addr)
	forwarded bool   // addr came from a trusted proxy's X-Forwarded-For
	viaProxy  bool   // the TCP peer is a trusted proxy

	mu        sync.Mutex
	principal Principal
}

type requestKey struct{}

type sourceKey struct{}

// Middleware returns next with each request's context carrying its id (the
// caller's X-Request-Id when it is safe, else a new one; also set on the
// answer), its source address through trusted (the networks of the proxies
// in front of Tollgate, whose X-Forwarded-For is believed: the one rule of
// bruteforce.ClientIP) and room for its principal.
func Middleware(trusted []netip.Prefix, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rq := &request{id: requestID(r)}
		rq.addr, rq.forwarded = bruteforce.Client(r, trusted)
		rq.viaProxy = bruteforce.TrustedPeer(r, trusted)
		rq.source = bruteforce.SourceOfHost(rq.addr)
		w.Header().Set(HeaderRequestID, rq.id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestKey{}, rq)))
	})
}

func from(ctx context.Context) *request {
	rq, _ := ctx.Value(requestKey{}).(*request)
	return rq
}

// ID returns the request's id; "" outside the Middleware.
func ID(ctx context.Context) string {
	if rq := from(ctx); rq != nil {
		return rq.id
	}
	return ""
}

// Addr returns the address of the client that sent the request, whole, as
// bruteforce.ClientIP returns it (for the audit trail); "" outside the
// Middleware.
func Addr(ctx context.Context) string {
	if rq := from(ctx); rq != nil {
		return rq.addr
	}
	return ""
}

// Forwarded reports whether Addr is an address a trusted proxy forwarded,
// not the TCP peer's own.
func Forwarded(ctx context.Context) bool {
	rq := from(ctx)
	return rq != nil && rq.forwarded
}

// ViaTrustedProxy reports whether the request came through one of the
// trusted proxies (its TCP peer is one), whose other X-Forwarded-* headers
// may then be believed too.
func ViaTrustedProxy(ctx context.Context) bool {
	rq := from(ctx)
	return rq != nil && rq.viaProxy
}

// Source returns the source failed attempts are counted under (the client
// address as bruteforce.Source cuts it), or the one WithSource set; ""
// when unknown.
func Source(ctx context.Context) string {
	if s, ok := ctx.Value(sourceKey{}).(string); ok {
		return s
	}
	if rq := from(ctx); rq != nil {
		return rq.source
	}
	return ""
}

// WithSource returns ctx whose Source is source: for an endpoint that counts
// by another rule than the request's own address (the check endpoint, whose
// peer is the API gateway).
func WithSource(ctx context.Context, source string) context.Context {
	return context.WithValue(ctx, sourceKey{}, source)
}

// SetPrincipal names who the request authenticated as. Outside the
// Middleware it does nothing.
func SetPrincipal(ctx context.Context, p Principal) {
	if rq := from(ctx); rq != nil {
		rq.mu.Lock()
		rq.principal = p
		rq.mu.Unlock()
	}
}

// PrincipalOf returns who the request authenticated as; zero when nobody
// (yet), or outside the Middleware.
func PrincipalOf(ctx context.Context) Principal {
	rq := from(ctx)
	if rq == nil {
		return Principal{}
	}
	rq.mu.Lock()
	defer rq.mu.Unlock()
	return rq.principal
}

// maxIDLength is the longest X-Request-Id taken from a caller.
const maxIDLength = 64

// requestID returns the caller's X-Request-Id when it is a short token of
// safe characters, else a new random one.
func requestID(r *http.Request) string {
	if id := r.Header.Get(HeaderRequestID); id != "" && len(id) <= maxIDLength && safeID(id) {
		return id
	}
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24)
	return hex.EncodeToString(b[:])
}

// safeID reports whether s holds only characters safe in a log line and a
// header: letters, digits, '-', '_' and '.'.
func safeID(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
