//go:build !linux

package app

import "syscall"

// childAttr: see sysproc_linux.go; elsewhere knestd's process group is
// its own and nothing stops it if the supervisor dies.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
