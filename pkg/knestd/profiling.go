package knestd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/knest-dev/knest/pkg/lifecycle"
)

// startProfiling serves Go's pprof handlers for the whole process (the
// control plane, etcd and the syncer alike) on --profiling-address, first
// of all steps so that a start can be profiled too.
func (d *daemon) startProfiling(ctx context.Context) (lifecycle.Running, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", d.o.ProfilingAddress)
	if err != nil {
		return lifecycle.Running{}, fmt.Errorf("failed to serve profiles on %s: %w", d.o.ProfilingAddress, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	failed := make(chan error, 1)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			failed <- fmt.Errorf("profiling server: %w", err)
		}
	}()
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
	return lifecycle.Running{Stop: stop, Failed: failed}, nil
}
