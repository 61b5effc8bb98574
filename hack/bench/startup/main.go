// Command startup measures knestd: cold start to ready on a fresh data dir,
// restart to ready on the same dir, RSS after an idle period, and the binary
// size. It prints one JSON object.
//
//	go run ./hack/bench/startup --knestd bin/knestd [--runs 3] [--idle 30s]
//
// Start times are from exec to the "ready" log line, which knestd prints only
// once /readyz is ok and the controllers have created the default
// ServiceAccount. With --runs > 1 the medians are reported. The time from
// the API server's "Serving securely" line to ready is reported beside
// them: it is the part of a start after the API server's construction
// (post-start hooks, controller-manager, readiness probe), and on a loaded
// machine it shows changes there that the whole start time hides.
//
// The CPU time knestd used until ready (cold_cpu_seconds, restart_cpu_seconds)
// depends far less on other load than the wall time does, and so does the
// idle cost over the idle period: idle_cpu_percent (of one core) and
// idle_wakeups_per_second (context switches of all its threads, the
// scheduler wake-ups that make up most of an idle knestd's CPU).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/knest-dev/knest/hack/bench/internal/proccpu"
	"github.com/knest-dev/knest/hack/bench/internal/procmem"
)

const (
	readyMessage = "Tenant control plane is ready"
	// servingMessage is the API server's line once it listens, before its
	// post-start hooks and the controllers: what follows it is the part of
	// a start that knestd's bootstrap hooks and readiness probe decide.
	servingMessage = "Serving securely on"
)

type result struct {
	Binary       string    `json:"binary"`
	BinaryBytes  int64     `json:"binary_bytes"`
	Runs         int       `json:"runs"`
	ColdStartSec float64   `json:"cold_start_seconds"`
	RestartSec   float64   `json:"restart_seconds"`
	IdleSeconds  float64   `json:"idle_seconds"`
	IdleRSSMiB   float64   `json:"idle_rss_mib"`
	IdleAnonMiB  float64   `json:"idle_rss_anon_mib"`
	IdleFileMiB  float64   `json:"idle_rss_file_mib"`
	ShutdownSec  float64   `json:"shutdown_seconds"`
	ColdStartAll []float64 `json:"cold_start_all_seconds"`
	RestartAll   []float64 `json:"restart_all_seconds"`
	// ColdServingToReady and RestartServingToReady are the medians of the
	// time from the API server serving to knestd ready.
	ColdServingToReady    float64   `json:"cold_serving_to_ready_seconds"`
	RestartServingToReady float64   `json:"restart_serving_to_ready_seconds"`
	IdleRSSAll            []float64 `json:"idle_rss_all_mib"`
	// ColdCPU and RestartCPU are the medians of the CPU seconds knestd
	// used from exec to ready.
	ColdCPU    float64   `json:"cold_cpu_seconds"`
	RestartCPU float64   `json:"restart_cpu_seconds"`
	ColdCPUAll []float64 `json:"cold_cpu_all_seconds"`
	// IdleCPUPercent (of one core) and IdleWakeups are the medians over
	// the idle period after the cold start.
	IdleCPUPercent float64  `json:"idle_cpu_percent"`
	IdleWakeups    float64  `json:"idle_wakeups_per_second"`
	Env            []string `json:"env,omitempty"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "startup:", err)
		os.Exit(1)
	}
}

func run() error {
	bin := flag.String("knestd", "bin/knestd", "knestd binary")
	runs := flag.Int("runs", 1, "measurements to take; medians are reported")
	idle := flag.Duration("idle", 30*time.Second, "idle time before reading RSS")
	flag.Parse()

	st, err := os.Stat(*bin)
	if err != nil {
		return err
	}
	res := result{Binary: *bin, BinaryBytes: st.Size(), Runs: *runs, IdleSeconds: idle.Seconds()}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GOGC=") || strings.HasPrefix(kv, "GOMEMLIMIT=") || strings.HasPrefix(kv, "KNESTD_") {
			res.Env = append(res.Env, kv)
		}
	}
	var shutdowns, anon, file, coldPost, warmPost, warmCPU, idleCPU, wakeups []float64
	for i := 0; i < *runs; i++ {
		dir, err := os.MkdirTemp("", "knestd-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)

		p, cold, coldServing, err := start(*bin, dir)
		if err != nil {
			return fmt.Errorf("cold start: %w", err)
		}
		pid := p.cmd.Process.Pid
		coldCPU, err := proccpu.Seconds(pid)
		if err != nil {
			p.kill()
			return err
		}
		// The first seconds after ready still finish start-up work (the
		// OpenAPI v3 groups, the probe namespace's deletion); the idle
		// window is the second half of the idle period.
		time.Sleep(*idle / 2)
		cpu0, err0 := proccpu.Seconds(pid)
		sw0, err1 := contextSwitches(pid)
		begin := time.Now()
		time.Sleep(*idle - *idle/2)
		cpu1, err2 := proccpu.Seconds(pid)
		sw1, err3 := contextSwitches(pid)
		if err := errors.Join(err0, err1, err2, err3); err != nil {
			p.kill()
			return err
		}
		window := time.Since(begin).Seconds()
		mem, err := procmem.Read(p.cmd.Process.Pid)
		if err != nil {
			p.kill()
			return err
		}
		down, err := p.stop()
		if err != nil {
			return err
		}
		p2, warm, warmServing, err := start(*bin, dir)
		if err != nil {
			return fmt.Errorf("restart: %w", err)
		}
		restartCPU, err := proccpu.Seconds(p2.cmd.Process.Pid)
		if err != nil {
			p2.kill()
			return err
		}
		if _, err := p2.stop(); err != nil {
			return err
		}
		res.ColdStartAll = append(res.ColdStartAll, round(cold.Seconds()))
		res.RestartAll = append(res.RestartAll, round(warm.Seconds()))
		res.IdleRSSAll = append(res.IdleRSSAll, round(mem.RSS))
		anon = append(anon, mem.Anon)
		file = append(file, mem.File)
		shutdowns = append(shutdowns, down.Seconds())
		res.ColdCPUAll = append(res.ColdCPUAll, round(coldCPU))
		warmCPU = append(warmCPU, restartCPU)
		idleCPU = append(idleCPU, (cpu1-cpu0)/window*100)
		wakeups = append(wakeups, float64(sw1-sw0)/window)
		coldPost = append(coldPost, (cold - coldServing).Seconds())
		warmPost = append(warmPost, (warm - warmServing).Seconds())
	}
	res.ColdServingToReady = round(median(coldPost))
	res.RestartServingToReady = round(median(warmPost))
	res.ColdCPU = median(res.ColdCPUAll)
	res.RestartCPU = round(median(warmCPU))
	res.IdleCPUPercent = round(median(idleCPU))
	res.IdleWakeups = round(median(wakeups))
	res.ColdStartSec = median(res.ColdStartAll)
	res.RestartSec = median(res.RestartAll)
	res.IdleRSSMiB = median(res.IdleRSSAll)
	res.ShutdownSec = round(median(shutdowns))
	res.IdleAnonMiB = round(median(anon))
	res.IdleFileMiB = round(median(file))
	out, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	return nil
}

type proc struct {
	cmd    *exec.Cmd
	exited chan error
}

// start runs knestd on dir and returns once it is ready, with the time to
// ready and the time to the API server serving.
func start(bin, dir string) (*proc, time.Duration, time.Duration, error) {
	cmd := exec.Command(bin, "--data-dir="+dir, "--name=bench", "--secure-port=0")
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, 0, 0, err
	}
	log, err := os.Create(filepath.Join(dir, "knestd.log"))
	if err != nil {
		return nil, 0, 0, err
	}
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, 0, 0, err
	}
	ready, serving := make(chan time.Duration, 1), make(chan time.Duration, 1)
	go func() {
		defer log.Close()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			fmt.Fprintln(log, sc.Text())
			if strings.Contains(sc.Text(), servingMessage) && len(serving) == 0 {
				serving <- time.Since(begin)
			}
			if strings.Contains(sc.Text(), readyMessage) {
				ready <- time.Since(begin)
			}
		}
	}()
	p := &proc{cmd: cmd, exited: make(chan error, 1)}
	go func() { p.exited <- cmd.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	select {
	case d := <-ready:
		var s time.Duration
		select {
		case s = <-serving:
		default:
		}
		return p, d, s, nil
	case err := <-p.exited:
		return nil, 0, 0, fmt.Errorf("knestd exited before ready (%v); see %s", err, log.Name())
	case <-ctx.Done():
		p.kill()
		return nil, 0, 0, errors.New("knestd not ready within 3 minutes")
	}
}

func (p *proc) stop() (time.Duration, error) {
	begin := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, err
	}
	select {
	case <-p.exited:
		return time.Since(begin), nil
	case <-time.After(30 * time.Second):
		p.kill()
		return 0, errors.New("knestd did not stop within 30s of SIGTERM")
	}
}

func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// contextSwitches sums the voluntary and involuntary context switches of
// every thread of pid.
func contextSwitches(pid int) (int64, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var n int64
	for _, t := range tasks {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
		if err != nil {
			continue // the thread exited
		}
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(k, "voluntary_ctxt_switches") {
				c, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				if err != nil {
					return 0, err
				}
				n += c
			}
		}
	}
	return n, nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func round(x float64) float64 { return float64(int(x*100+0.5)) / 100 }
