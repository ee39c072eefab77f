//go:build !linux

package training_test

import "syscall"

// serverProcAttr: only Linux can tie the server's life to this process's.
func serverProcAttr() *syscall.SysProcAttr {
	return nil
}
