package training_test

import "syscall"

// serverProcAttr has the kernel stop the server (SIGTERM, its graceful stop) when this test
// process dies without stopping it, e.g. killed by go test's -timeout.
func serverProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
