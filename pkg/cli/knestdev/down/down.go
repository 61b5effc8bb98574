// Package down is `knest dev down`: stop a `knest dev up` started elsewhere.
package down

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/knest-dev/knest/internal/dirlock"
	"github.com/knest-dev/knest/pkg/cli"
	"github.com/knest-dev/knest/pkg/devenv"
	"github.com/knest-dev/knest/pkg/devenv/devflags"
)

// NewCommand returns the `down` command of knest-dev, which `knest dev
// down` runs.
func NewCommand(streams cli.Streams) *cobra.Command {
	return devflags.DownCommand(func(cmd *cobra.Command, o *devflags.Down) error {
		return Run(cmd.Context(), streams, o.Dir, o.Timeout)
	})
}

// Run signals the `knest dev up` process owning dir and waits until it has
// stopped every child and released its lock.
func Run(ctx context.Context, streams cli.Streams, dir string, timeout time.Duration) error {
	layout := devenv.Layout{Dir: dir}
	held, err := dirlock.Held(layout.Lock())
	if err != nil {
		return err
	}
	if !held {
		return fmt.Errorf("no knest dev environment is running in %s", dir)
	}
	pid, err := dirlock.Holder(layout.Lock())
	if err != nil || pid <= 0 {
		return fmt.Errorf("cannot tell which process runs %s: %v", dir, err)
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	if err := proc.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("failed to signal knest dev (pid %d): %w", pid, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if held, err := dirlock.Held(layout.Lock()); err == nil && !held {
			fmt.Fprintf(streams.Out, "Stopped the knest dev environment in %s\n", dir)
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New("knest dev did not stop in time")
		case <-time.After(100 * time.Millisecond):
		}
	}
}
