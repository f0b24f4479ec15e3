package redistest

import "syscall"

// sysProcAttr makes a private server die with the test binary, even when
// the binary is killed before its cleanups run.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
