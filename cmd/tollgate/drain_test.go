package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestShutdownDelay: on SIGTERM with http.shutdown_delay, the server goes on
// answering while /readyz (and tollgate_ready) says it is draining and every
// answer asks the client to close its connection; then it stops cleanly.
func TestShutdownDelay(t *testing.T) {
	// Long enough that the two requests made while draining (one poll that
	// sees /readyz flip, one request that must be served) fit in it on a
	// loaded machine; the lower bound on the stop below does not depend on
	// the machine's speed.
	const delay = 3 * time.Second
	vars := map[string]string{
		"TOLLGATE_DATA_DIR":            t.TempDir(),
		"TOLLGATE_HTTP_ADDR":           "127.0.0.1:0",
		"TOLLGATE_OPS_ADDR":            "127.0.0.1:0",
		"TOLLGATE_HTTP_SHUTDOWN_DELAY": delay.String(),
	}
	addr, ops, stop := runServe(t, vars)
	// get returns what the checks read (status, Connection: close, body) and
	// closes the body itself.
	get := func(url string) (answer, string) {
		t.Helper()
		res, err := http.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return answer{StatusCode: res.StatusCode, Close: res.Close}, string(b)
	}
	if res, _ := get("http://" + ops + "/readyz"); res.StatusCode != http.StatusOK {
		t.Fatalf("/readyz before SIGTERM: %d", res.StatusCode)
	}
	if _, metrics := get("http://" + ops + "/metrics"); !strings.Contains(metrics, "\ntollgate_ready 1\n") {
		t.Errorf("/metrics before SIGTERM has no tollgate_ready 1")
	}
	if res, _ := get("http://" + addr + "/.well-known/oauth-authorization-server"); res.Close {
		t.Error("an answer before SIGTERM closes the connection")
	}

	signalled := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	// /readyz must flip before the server stops: awaited until then, not
	// for a fixed share of the delay that a slow signal delivery could
	// spend.
	for {
		res, body := get("http://" + ops + "/readyz")
		if res.StatusCode == http.StatusServiceUnavailable {
			if !strings.Contains(body, `"shutdown":"draining"`) {
				t.Errorf("/readyz while draining: %s", body)
			}
			break
		}
		select {
		case err := <-stopped:
			t.Fatalf("stopped %v after SIGTERM (%v) while /readyz still answered %d, want it draining first", time.Since(signalled), err, res.StatusCode)
		case <-time.After(10 * time.Millisecond):
		}
	}
	// tollgate_ready says what /readyz says.
	if _, metrics := get("http://" + ops + "/metrics"); !strings.Contains(metrics, "\ntollgate_ready 0\n") {
		t.Errorf("/metrics while draining has no tollgate_ready 0")
	}
	res, _ := get("http://" + addr + "/.well-known/oauth-authorization-server")
	if res.StatusCode != http.StatusOK {
		t.Errorf("a request while draining: %d, want it served", res.StatusCode)
	}
	if !res.Close {
		t.Error("an answer while draining does not carry Connection: close")
	}
	if err := <-stopped; err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	if took := time.Since(signalled); took < delay {
		t.Errorf("stopped %v after SIGTERM, want at least the delay %v", took, delay)
	}
}

// answer is the part of a response the drain checks read.
type answer struct {
	StatusCode int
	Close      bool
}
