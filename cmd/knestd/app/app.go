// Package app is knestd's command line: flags, signals and logging around
// pkg/knestd.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/knest-dev/knest/pkg/knestd"
	"github.com/knest-dev/knest/pkg/knestd/options"
)

// Run parses args and runs knestd until SIGINT or SIGTERM. A second signal
// exits at once.
func Run(args []string) error {
	o := options.Defaults()
	fs := pflag.NewFlagSet("knestd", pflag.ContinueOnError)
	o.AddFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: knestd --data-dir DIR [flags]\n\n%s", fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if err := o.Validate(); err != nil {
		// One line: every problem, separated.
		return errors.New(strings.ReplaceAll(err.Error(), "\n", "; "))
	}

	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	if err := klogFlags.Set("v", strconv.Itoa(o.Verbosity)); err != nil {
		return err
	}

	// The cause is the reason knestd logs for stopping.
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-signals
		cancel(errors.New("signal"))
		<-signals
		fmt.Fprintln(os.Stderr, "knestd: second signal, exiting now")
		os.Exit(1)
	}()
	// controller-runtime (the syncer) logs through klog like the rest.
	ctrllog.SetLogger(klog.Background())
	ctx = klog.NewContext(ctx, klog.Background().WithName("knestd"))
	err := knestd.Run(ctx, o)
	klog.Flush()
	return err
}
