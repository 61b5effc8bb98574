package simkubelet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/creack/pty"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// execPath is the PATH of commands run by exec; they find their programs
// there, not on the devcluster's own PATH.
const execPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// outputGrace is how long output may still arrive after the command exited
// (from a background process that kept its stdout, say) before the streams
// are closed anyway.
const outputGrace = 2 * time.Second

// localExec runs exec's commands on this machine for one pod.
type localExec struct {
	workDir string
	podName string
}

var _ remotecommand.Executor = localExec{}

// env is the whole environment of a command: nothing of the devcluster's
// own leaks in.
func (e localExec) env(tty bool) []string {
	env := []string{"PATH=" + execPath, "HOME=" + e.workDir, "HOSTNAME=" + e.podName}
	if tty {
		env = append(env, "TERM=xterm")
	}
	return env
}

// ExecInContainer runs cmd with the streams of the request. A non-zero exit
// is reported as a CodeExitError, which the protocol passes on to the client
// as the exit code.
func (e localExec) ExecInContainer(ctx context.Context, _, _, _ string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	if len(cmd) == 0 {
		return errors.New("no command given")
	}
	path, err := lookPath(cmd[0], e.workDir)
	if err != nil {
		return err
	}
	c := exec.CommandContext(ctx, path, cmd[1:]...)
	c.Args[0] = cmd[0]
	c.Dir = e.workDir
	c.Env = e.env(tty)
	// The command leads a process group (a session with a TTY): when the
	// client goes away, the whole group goes, background children included.
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = outputGrace
	if tty {
		err = runTTY(c, in, out, resize)
	} else {
		err = run(c, in, out, errOut)
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) && exitErr.ExitCode() > 0 {
		return utilexec.CodeExitError{Err: err, Code: exitErr.ExitCode()}
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		// The command succeeded; something it started held its output.
		return nil
	}
	return err
}

func run(c *exec.Cmd, in io.Reader, out, errOut io.Writer) error {
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if out != nil {
		c.Stdout = out
	}
	if errOut != nil {
		c.Stderr = errOut
	}
	if in != nil {
		// A pipe rather than c.Stdin = in: Wait would wait for in to end,
		// which a client that keeps stdin open never does.
		stdin, err := c.StdinPipe()
		if err != nil {
			return err
		}
		go func() {
			_, _ = io.Copy(stdin, in)
			_ = stdin.Close()
		}()
	}
	return c.Run()
}

func runTTY(c *exec.Cmd, in io.Reader, out io.Writer, resize <-chan remotecommand.TerminalSize) error {
	// pty.Start makes the command a session leader with the TTY as its
	// controlling terminal.
	ptmx, err := pty.Start(c)
	if err != nil {
		return fmt.Errorf("failed to start %s with a TTY: %w", c.Args[0], err)
	}
	defer ptmx.Close()
	if in != nil {
		go func() { _, _ = io.Copy(ptmx, in) }()
	}
	if out == nil {
		out = io.Discard
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		// Ends with an error once the command and everything it started
		// have closed the TTY.
		_, _ = io.Copy(out, ptmx)
	}()
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case size, ok := <-resize:
				if !ok {
					return
				}
				_ = pty.Setsize(ptmx, &pty.Winsize{Rows: size.Height, Cols: size.Width})
			case <-done:
				return
			}
		}
	}()
	err = c.Wait()
	select {
	case <-copied:
	case <-time.After(outputGrace):
	}
	return err
}

// lookPath finds a program on execPath, or relative to dir if its name has a
// slash in it.
func lookPath(name, dir string) (string, error) {
	if strings.Contains(name, "/") {
		if !filepath.IsAbs(name) {
			name = filepath.Join(dir, name)
		}
		if isExecutable(name) {
			return name, nil
		}
		return "", fmt.Errorf("%s: no such executable", name)
	}
	for _, d := range filepath.SplitList(execPath) {
		p := filepath.Join(d, name)
		if isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: executable not found in %s", name, execPath)
}

func isExecutable(path string) bool {
	info, err := os.Stat(path)
	return err == nil && !info.IsDir() && info.Mode()&0o111 != 0
}
