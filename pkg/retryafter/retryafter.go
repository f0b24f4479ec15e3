// Package retryafter owns the one rule for the Retry-After header that every
// surface answers with (OAuth endpoints, the gateway check, the management
// API, the console, rate limiting): whole seconds, rounded up so that a
// client honouring it is never early, and at least 1 so that it never
// invites an immediate retry.
package retryafter

import (
	"net/http"
	"strconv"
	"time"
)

// Outage is the wait every 503 answer of a backend failure asks for: the
// failure is expected to be short (a failover, a restart), and a second is
// the least Seconds answers.
const Outage = time.Second

// Seconds returns d in whole seconds, rounded up, and at least 1.
func Seconds(d time.Duration) int64 {
	if d <= time.Second {
		return 1
	}
	// Computed on the remainder so that a duration near the maximum cannot
	// overflow, as d+time.Second-1 would.
	secs := int64(d / time.Second)
	if d%time.Second != 0 {
		secs++
	}
	return secs
}

// Set sets the Retry-After header of h to d by Seconds.
func Set(h http.Header, d time.Duration) {
	h.Set("Retry-After", strconv.FormatInt(Seconds(d), 10))
}
