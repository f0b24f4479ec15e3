package e2e

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// StopAtCleanup interrupts the process cmd started when t ends, and kills it
// if it has not exited after grace; either way the cleanup waits for it, so
// no process outlives its test.
func StopAtCleanup(t *testing.T, cmd *exec.Cmd, grace time.Duration) {
	t.Helper()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(grace):
			_ = cmd.Process.Kill()
			<-done
		}
	})
}
