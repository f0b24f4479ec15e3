//go:build !linux

package redistest

import "syscall"

// sysProcAttr: outside Linux a private server is stopped by the test's
// cleanup only.
func sysProcAttr() *syscall.SysProcAttr { return nil }
