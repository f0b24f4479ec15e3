package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestShutdownDelay: on SIGTERM with http.shutdown_delay, the server goes on
// answering while /readyz says it is draining and every answer asks the
// client to close its connection; then it stops cleanly.
func TestShutdownDelay(t *testing.T) {
	const delay = 1500 * time.Millisecond
	vars := map[string]string{
		"TOLLGATE_DATA_DIR":            t.TempDir(),
		"TOLLGATE_HTTP_ADDR":           "127.0.0.1:0",
		"TOLLGATE_OPS_ADDR":            "127.0.0.1:0",
		"TOLLGATE_HTTP_SHUTDOWN_DELAY": delay.String(),
	}
	addr, ops, stop := runServe(t, vars)
	get := func(url string) (*http.Response, string) {
		t.Helper()
		res, err := http.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	if res, _ := get("http://" + ops + "/readyz"); res.StatusCode != http.StatusOK {
		t.Fatalf("/readyz before SIGTERM: %d", res.StatusCode)
	}
	if res, _ := get("http://" + addr + "/.well-known/oauth-authorization-server"); res.Close {
		t.Error("an answer before SIGTERM closes the connection")
	}

	signalled := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	deadline := time.Now().Add(delay / 2)
	for {
		res, body := get("http://" + ops + "/readyz")
		if res.StatusCode == http.StatusServiceUnavailable {
			if !strings.Contains(body, `"shutdown":"draining"`) {
				t.Errorf("/readyz while draining: %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d %v after SIGTERM", res.StatusCode, time.Since(signalled))
		}
		time.Sleep(10 * time.Millisecond)
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
