package devenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Child is a long-running child process whose output goes to a log file.
type Child struct {
	Name    string
	LogPath string
	cmd     *exec.Cmd
	ready   chan struct{}
	exited  chan struct{}
	err     error

	mu       sync.Mutex
	lastLine string
}

// StartChild starts bin with args, logging to logPath, and watches its output
// for readyMessage. The child gets SIGTERM if this process dies, so nothing is
// left behind even on SIGKILL of the parent.
func StartChild(name, logPath, readyMessage, bin string, args ...string) (*Child, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	c := &Child{Name: name, LogPath: logPath, ready: make(chan struct{}), exited: make(chan struct{})}
	c.cmd = exec.Command(bin, args...)
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	pr, pw := io.Pipe()
	c.cmd.Stdout, c.cmd.Stderr = pw, pw
	if err := c.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("failed to start %s: %w", name, err)
	}
	go func() {
		defer logFile.Close()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			c.mu.Lock()
			c.lastLine = line
			c.mu.Unlock()
			if strings.Contains(line, readyMessage) {
				once.Do(func() { close(c.ready) })
			}
		}
	}()
	go func() {
		c.err = c.cmd.Wait()
		pw.Close()
		close(c.exited)
	}()
	return c, nil
}

// WaitReady waits for the ready message. If the child exits first, the error
// carries its last line of output, which for knest processes is the reason.
func (c *Child) WaitReady(ctx context.Context) error {
	select {
	case <-c.ready:
		return nil
	case <-c.exited:
		// Let the log pump catch up with the last line.
		time.Sleep(50 * time.Millisecond)
		return fmt.Errorf("%s exited before it was ready: %s (log: %s)", c.Name, c.LastLine(), c.LogPath)
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.Canceled) {
			return fmt.Errorf("interrupted while waiting for %s to start", c.Name)
		}
		return fmt.Errorf("%s was not ready in time (log: %s): %w", c.Name, c.LogPath, ctx.Err())
	}
}

// LastLine is the last line the child printed.
func (c *Child) LastLine() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastLine
}

// Exited is closed when the child has exited.
func (c *Child) Exited() <-chan struct{} { return c.exited }

// Err is the child's exit error, once it has exited.
func (c *Child) Err() error { return c.err }

// Pid is the child's process ID.
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// Kill kills the child's process group at once (SIGKILL), as a crash
// would, and waits for it to exit.
func (c *Child) Kill() {
	select {
	case <-c.exited:
		return
	default:
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	<-c.exited
}

// Stop sends SIGTERM and waits up to grace for the child to exit, then kills
// its whole process group.
func (c *Child) Stop(grace time.Duration) error {
	select {
	case <-c.exited:
		return nil
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		return nil
	case <-time.After(grace):
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.exited
		return errors.New(c.Name + " did not stop in time and was killed")
	}
}
