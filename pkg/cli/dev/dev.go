// Package dev is `knest dev`: a local host cluster (the devcluster) with
// tenant control planes, no Docker needed. The devcluster lives in the
// knest-dev binary ('make build' puts it next to knest in bin/): these
// commands parse their flags, for help and errors, and run knest-dev with
// them, so the knest CLI itself stays small and builds for every platform.
package dev

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/knest-dev/knest/pkg/cli"
	"github.com/knest-dev/knest/pkg/devenv/devflags"
)

// Binary is the name of the binary that runs the dev environment.
const Binary = "knest-dev"

// NewCommand returns `knest dev`.
func NewCommand(streams cli.Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a local host cluster and tenants, with no Docker (Linux; needs the knest-dev binary)",
		Example: `  knest dev up --dir _output/dev --tenants demo
  knest dev down --dir _output/dev`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newUp(streams), newDown(streams))
	return cmd
}

func newUp(streams cli.Streams) *cobra.Command {
	return devflags.UpCommand(func(cmd *cobra.Command, _ *devflags.Up) error {
		return Forward(streams, "up", cmd.Flags())
	})
}

func newDown(streams cli.Streams) *cobra.Command {
	return devflags.DownCommand(func(cmd *cobra.Command, _ *devflags.Down) error {
		return Forward(streams, "down", cmd.Flags())
	})
}

// Args are the knest-dev arguments for subcommand sub with the flags set
// on fs, each as --name=value.
func Args(sub string, fs *pflag.FlagSet) []string {
	args := []string{sub}
	fs.Visit(func(f *pflag.Flag) {
		args = append(args, "--"+f.Name+"="+f.Value.String())
	})
	return args
}

// Forward runs knest-dev's subcommand sub with the flags set on fs, on the
// same standard streams, passes SIGINT and SIGTERM on to it, and returns
// its exit status as a cli.ExitError (it has printed its own error).
func Forward(streams cli.Streams, sub string, fs *pflag.FlagSet) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	bin, err := FindBinary(self)
	if err != nil {
		return err
	}
	c := exec.Command(bin, Args(sub, fs)...)
	c.Stdin, c.Stdout, c.Stderr = streams.In, streams.Out, streams.ErrOut
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := c.Start(); err != nil {
		return fmt.Errorf("failed to start %s: %w", bin, err)
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = c.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err = c.Wait()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) && exitErr.ExitCode() > 0 {
		return cli.ExitError{Code: exitErr.ExitCode()}
	}
	return err
}

// FindBinary looks for knest-dev next to self (the knest executable), then
// on PATH.
func FindBinary(self string) (string, error) {
	name := Binary
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	beside := filepath.Join(filepath.Dir(self), name)
	if st, err := os.Stat(beside); err == nil && !st.IsDir() {
		return beside, nil
	}
	if p, err := exec.LookPath(Binary); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("knest dev needs the %s binary (the local devcluster, Linux only), which is neither next to knest (%s) nor on PATH: run 'make build', which puts it in bin/ next to knest and knestd",
		Binary, filepath.Dir(self))
}
