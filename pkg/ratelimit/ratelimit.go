// Package ratelimit owns Tollgate's per-second rate limiting contract: the
// Limit a key is held to, the Result of one decision, the Limiter interface
// every backend implements, and the HTTP headers that tell a client how to pace
// itself (draft-ietf-httpapi-ratelimit-headers, plus Retry-After).
//
// Backends are sub-packages: ratelimit/redis (GCRA in Redis, shared by every
// Tollgate instance) and ratelimit/memory (in process, for the embedded
// default). Both pass ratelimit/conformance. Behaviour such as failing open
// when Redis is down belongs to a wrapper around a Limiter (FailOpen), not
// to a backend.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/pkg/retryafter"
)

// ErrInvalidLimit is returned by Allow for a Limit whose Rate or Burst is out
// of range.
var ErrInvalidLimit = errors.New("invalid rate limit")

// Limit is a per-second rate with a burst.
type Limit struct {
	Rate  int // requests per second, > 0
	Burst int // requests allowed at once, >= 1
}

// Validate answers an error wrapping ErrInvalidLimit when l cannot be enforced.
func (l Limit) Validate() error {
	if l.Rate <= 0 || l.Burst < 1 {
		return fmt.Errorf("%w: rate %d/s, burst %d (want rate > 0, burst >= 1)", ErrInvalidLimit, l.Rate, l.Burst)
	}
	return nil
}

// Result is the decision for one request.
type Result struct {
	Allowed    bool
	Limit      Limit
	Remaining  int           // requests still allowed right now
	RetryAfter time.Duration // when not allowed: wait this long before one more is allowed; 0 when allowed
	ResetAfter time.Duration // time until the limit is fully replenished
	// FailedOpen marks a request let through with no decision made: the
	// backend failed and FailOpen waived the limit.
	FailedOpen bool
}

// Limiter decides whether one more request under key fits limit. Keys are
// stored as given (in Redis, in clear text): pass identifiers such as a client
// id and rate class, never a secret.
//
// An error means no decision was made (for example Redis is unreachable); it
// never comes with an allowed Result.
type Limiter interface {
	Allow(ctx context.Context, key string, limit Limit) (Result, error)
}

// Headers sets the IETF RateLimit-Policy and RateLimit headers
// (draft-ietf-httpapi-ratelimit-headers, structured-field form) for the rate
// class name:
//
//	RateLimit-Policy: "<name>";q=<burst>;w=1
//	RateLimit: "<name>";r=<remaining>;t=<seconds until reset, rounded up>
//
// and, when the request was not allowed, Retry-After in whole seconds, rounded
// up and at least 1, so a client that honours it is never early.
func Headers(h http.Header, name string, res Result) {
	item := SFString(name)
	h.Set("RateLimit-Policy", item+";q="+strconv.Itoa(res.Limit.Burst)+";w=1")
	h.Set("RateLimit", item+";r="+strconv.Itoa(max(res.Remaining, 0))+";t="+strconv.FormatInt(CeilSeconds(res.ResetAfter), 10))
	if !res.Allowed {
		retryafter.Set(h, res.RetryAfter)
	}
}

// CeilSeconds answers d in whole seconds, rounded up; 0 for d <= 0.
func CeilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// SFString serialises s as a structured-field string (RFC 9651 §4.1.6):
// quoted, with '"' and '\' escaped. Characters a string cannot hold (controls,
// non-ASCII) become '_', so a bad class name cannot break the header.
func SFString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c > 0x7e:
			b.WriteByte('_')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
