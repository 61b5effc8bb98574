package app

import "syscall"

// childAttr puts knestd in its own process group, so that a terminal's
// Ctrl-C reaches only the supervisor, which forwards it once (a second
// signal makes knestd exit at once), and has the kernel send it SIGTERM if
// the supervisor dies without stopping it.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
