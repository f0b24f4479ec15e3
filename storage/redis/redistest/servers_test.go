package redistest

import (
	"sync/atomic"
	"testing"
)

// A server that exits at once (here: an option it does not know; in
// practice a port taken before it bound it) is started again on another
// port.
func TestStartRedisRetries(t *testing.T) {
	server := needBinaries(t, "redis-server")[0]
	var calls atomic.Int32
	port := startRedis(t, server, t.TempDir(), "retry", "", func(int) []string {
		if calls.Add(1) == 1 {
			return []string{"--no-such-option", "1"}
		}
		return nil
	})
	if got := calls.Load(); got != 2 {
		t.Errorf("starts: got %d, want 2", got)
	}
	if port == 0 {
		t.Error("port: got 0")
	}
}
