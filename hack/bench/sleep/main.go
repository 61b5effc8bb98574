// Command sleep measures a sleeping tenant: knest-supervisor in front of a
// standalone knestd, put to sleep with knest sleep's endpoint; while it
// sleeps, the supervisor's RSS and CPU (the whole cost of the tenant: no
// knestd runs); then the wake: from the first request, sent to the
// sleeping tenant, to its answer (a list of namespaces with the admin
// kubeconfig, held by the supervisor until knestd is ready; its TLS
// handshake completes only then). It prints one JSON object.
//
//	go run ./hack/bench/sleep --supervisor bin/knest-supervisor --knestd bin/knestd [--runs 3] [--asleep 20s]
//
// knestd runs without a host (no syncer, DNS or kubelet API): a syncing
// tenant's wake also waits for the syncer's caches (its /readyz).
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/knest-dev/knest/hack/bench/internal/proccpu"
	"github.com/knest-dev/knest/hack/bench/internal/procmem"
)

type result struct {
	Supervisor      string    `json:"supervisor"`
	SupervisorBytes int64     `json:"supervisor_binary_bytes"`
	Runs            int       `json:"runs"`
	AsleepSeconds   float64   `json:"asleep_seconds"`
	WakeSec         float64   `json:"wake_to_first_answer_seconds"`
	WakeAll         []float64 `json:"wake_to_first_answer_all_seconds"`
	SleepingRSSMiB  float64   `json:"sleeping_rss_mib"`
	SleepingAnonMiB float64   `json:"sleeping_rss_anon_mib"`
	SleepingRSSAll  []float64 `json:"sleeping_rss_all_mib"`
	SleepingCPUSec  float64   `json:"sleeping_cpu_seconds"`
	SleepToExitSec  float64   `json:"sleep_request_to_asleep_seconds"`
	Cores           int       `json:"cores"`
	LoadAverage1Min string    `json:"load_average_1min"`
	TargetWakeSec   float64   `json:"target_wake_seconds"`
	TargetRSSMiB    float64   `json:"target_sleeping_rss_mib"`
	MeetsWakeTarget bool      `json:"meets_wake_target"`
	MeetsRSSTarget  bool      `json:"meets_rss_target"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sleep bench: "+err.Error())
		os.Exit(1)
	}
}

func run() error {
	supervisor := flag.String("supervisor", "bin/knest-supervisor", "knest-supervisor binary")
	knestd := flag.String("knestd", "bin/knestd", "knestd binary")
	runs := flag.Int("runs", 3, "sleep/wake cycles")
	asleepFor := flag.Duration("asleep", 20*time.Second, "how long each sleep lasts before the wake (RSS and CPU are read at its end)")
	flag.Parse()
	dir, err := os.MkdirTemp("", "knest-sleep-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	dataDir := filepath.Join(dir, "data")
	cmd := exec.Command(*supervisor, "--knestd", *knestd, "--", "--data-dir", dataDir, "--name", "bench", "--secure-port", "0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	out, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	asleep, ready := make(chan struct{}, 16), make(chan struct{}, 16)
	logFile, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		return err
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			switch {
			case strings.Contains(line, "Tenant asleep"):
				asleep <- struct{}{}
			case strings.Contains(line, "Tenant control plane is ready"):
				ready <- struct{}{}
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(5 * time.Minute):
		return errors.New("knestd was not ready within 5 minutes")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dataDir, "admin.kubeconfig"))
	if err != nil {
		return err
	}
	// client-go's transport gives up on a TLS handshake after 10s, and a
	// held connection's handshake completes only once knestd is ready: the
	// bench waits longer, to measure a slow wake rather than fail on it.
	tlsConfig, err := rest.TLSConfigFor(cfg)
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 3 * time.Minute, Transport: &http.Transport{TLSClientConfig: tlsConfig, TLSHandshakeTimeout: 3 * time.Minute, DisableKeepAlives: true}}
	st, _ := os.Stat(*supervisor)
	res := result{Supervisor: *supervisor, SupervisorBytes: st.Size(), Runs: *runs, AsleepSeconds: asleepFor.Seconds(),
		Cores: runtime.NumCPU(), TargetWakeSec: 3, TargetRSSMiB: 20}
	var toAsleep []float64
	for i := range *runs {
		begin := time.Now()
		resp, err := hc.Post(strings.TrimSuffix(cfg.Host, "/")+"/knest/sleep", "", nil)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("sleep: %s", resp.Status)
		}
		select {
		case <-asleep:
		case <-time.After(2 * time.Minute):
			return errors.New("knestd did not sleep within 2 minutes")
		}
		toAsleep = append(toAsleep, time.Since(begin).Seconds())
		cpu0, err := proccpu.Seconds(cmd.Process.Pid)
		if err != nil {
			return err
		}
		time.Sleep(*asleepFor)
		mem, err := procmem.Read(cmd.Process.Pid)
		if err != nil {
			return err
		}
		cpu1, _ := proccpu.Seconds(cmd.Process.Pid)
		res.SleepingRSSAll = append(res.SleepingRSSAll, mem.RSS)
		res.SleepingRSSMiB = max(res.SleepingRSSMiB, mem.RSS)
		res.SleepingAnonMiB = max(res.SleepingAnonMiB, mem.Anon)
		res.SleepingCPUSec = max(res.SleepingCPUSec, cpu1-cpu0)

		begin = time.Now()
		resp, err = hc.Get(strings.TrimSuffix(cfg.Host, "/") + "/api/v1/namespaces")
		if err != nil {
			return fmt.Errorf("the first request after sleep %d: %w", i+1, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("the first request after sleep %d: %s", i+1, resp.Status)
		}
		res.WakeAll = append(res.WakeAll, time.Since(begin).Seconds())
		// Drain the ready line of this wake.
		select {
		case <-ready:
		case <-time.After(time.Minute):
		}
	}
	res.WakeSec = median(res.WakeAll)
	res.SleepToExitSec = median(toAsleep)
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		res.LoadAverage1Min = strings.Fields(string(load))[0]
	}
	res.MeetsWakeTarget = res.WakeSec <= res.TargetWakeSec
	res.MeetsRSSTarget = res.SleepingRSSMiB <= res.TargetRSSMiB
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
