// Package app is knestd's command line: flags, signals and logging around
// pkg/knestd.
package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/knest-dev/knest/pkg/knestd"
	"github.com/knest-dev/knest/pkg/knestd/options"
	"github.com/knest-dev/knest/pkg/version"
)

// ErrLogged is returned (wrapped) for a failure knestd has already logged:
// in the json format its last line is a log entry, not plain text.
var ErrLogged = errors.New("logged")

// ErrAsleep is returned when knestd stopped to sleep (--sleep-after, knest
// sleep): not a failure; the command exits with supervisor.ExitAsleep.
var ErrAsleep = knestd.ErrAsleep

// Run parses args and runs knestd until SIGINT or SIGTERM. A second signal
// exits at once.
func Run(args []string) error {
	f := options.NewCommandLine()
	if err := f.Parse(args); err != nil {
		return err
	}
	switch {
	case f.Help:
		f.PrintHelp(os.Stdout)
		return nil
	case f.Version:
		fmt.Println("knestd " + version.Get().String())
		return nil
	}
	o := f.Options
	// Everything on stderr, in one format: klog (the Kubernetes
	// components, the syncer through controller-runtime, knestd), the
	// standard library's log, and etcd (EtcdLogFormat).
	logs.InitLogs()
	if err := logsapi.ValidateAndApplyWithOptions(o.Logging, &logsapi.LoggingOptions{ErrorStream: os.Stderr, InfoStream: os.Stderr}, options.LoggingFeatureGate()); err != nil {
		return err
	}
	defer logs.FlushLogs()

	// The cause is the reason knestd logs for stopping.
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-signals
		cancel(errors.New("signal"))
		<-signals
		klog.Background().Info("Second signal, exiting now")
		logs.FlushLogs()
		os.Exit(1)
	}()
	// controller-runtime (the syncer) logs through klog like the rest.
	ctrllog.SetLogger(klog.Background())
	logger := klog.Background().WithName("knestd")
	v := version.Get()
	logger.Info("Starting knestd", "version", v.Version, "commit", v.Commit, "kubernetes", v.Kubernetes, "go", v.Go, "platform", v.Platform)
	err := knestd.Run(klog.NewContext(ctx, logger), o)
	if errors.Is(err, knestd.ErrAsleep) {
		logger.Info("knestd stopped: the tenant is asleep until knest-supervisor wakes it")
		return ErrAsleep
	}
	if err != nil && o.Logging.Format == logsapi.JSONLogFormat {
		logger.Error(err, "knestd stopped")
		return fmt.Errorf("%w: %w", ErrLogged, err)
	}
	return err
}
