// Command sleep measures a sleeping tenant: knest-supervisor in front of a
// standalone knestd, put to sleep with knest sleep's endpoint; while it
// sleeps, the supervisor's RSS and CPU (the whole cost of the tenant: no
// knestd runs); then the wake: from the first request, sent to the
// sleeping tenant, to its answer (a list of namespaces with the admin
// kubeconfig, held by the supervisor until knestd is ready; its TLS
// handshake completes only then). It prints one JSON object.
//
//	go run ./hack/bench/sleep --supervisor bin/knest-supervisor --knestd bin/knestd [--runs 3] [--asleep 20s]
//	go run ./hack/bench/sleep --syncing --knest-dev bin/knest-dev [--pods 3] [same flags]
//
// By default knestd runs without a host (no syncer, DNS or kubelet API).
// With --syncing it syncs, as knest dev runs it (devenv.Up: a devcluster
// host, pool nodes, knestd with its namespaced host identity) with --pods
// running pods: its sleep stops their host pods, and its wake also waits
// for the syncer's caches (its /readyz); the JSON then adds how long after
// the first request all host pods run again and the tenant sees them Ready
// (pods_back_*).
package main

import (
	"bufio"
	"context"
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

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/hack/bench/internal/proccpu"
	"github.com/knest-dev/knest/hack/bench/internal/procmem"
	"github.com/knest-dev/knest/pkg/devenv"
	"github.com/knest-dev/knest/pkg/policy"
)

type result struct {
	// Mode is standalone (no host) or syncing.
	Mode            string    `json:"mode"`
	Pods            int       `json:"pods,omitempty"`
	PodsBackSec     float64   `json:"pods_back_seconds,omitempty"`
	PodsBackAll     []float64 `json:"pods_back_all_seconds,omitempty"`
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

// tenant is the supervised knestd the bench sleeps and wakes.
type tenant struct {
	// pid is the supervisor's; cfg is the tenant's admin configuration
	// (its server is the supervisor's address).
	pid int
	cfg *rest.Config
	// asleep and ready get a value for each "Tenant asleep" and each
	// "ready" line of the log.
	asleep, ready chan struct{}
	// podsBack, in syncing mode, waits until the pods run again on the
	// host and are Ready in the tenant.
	podsBack func(ctx context.Context) error
	// podsGone, in syncing mode, waits until their host pods are gone.
	podsGone func(ctx context.Context) error
	stop     func()
}

func run() error {
	supervisor := flag.String("supervisor", "bin/knest-supervisor", "knest-supervisor binary")
	knestd := flag.String("knestd", "bin/knestd", "knestd binary")
	knestDev := flag.String("knest-dev", "bin/knest-dev", "knest-dev binary (the devcluster host), with --syncing")
	syncing := flag.Bool("syncing", false, "a syncing tenant on a devcluster host (pool nodes, --pods running pods) instead of a standalone knestd")
	pods := flag.Int("pods", 3, "running pods of the syncing tenant")
	runs := flag.Int("runs", 3, "sleep/wake cycles")
	asleepFor := flag.Duration("asleep", 20*time.Second, "how long each sleep lasts before the wake (RSS and CPU are read at its end)")
	flag.Parse()
	dir, err := os.MkdirTemp("", "knest-sleep-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var tn *tenant
	if *syncing {
		tn, err = startSyncing(dir, *knestDev, *knestd, *supervisor, *pods)
	} else {
		tn, err = startStandalone(dir, *knestd, *supervisor)
	}
	if tn != nil {
		defer tn.stop()
	}
	if err != nil {
		return err
	}
	cfg := tn.cfg
	// client-go's transport gives up on a TLS handshake after 10s, and a
	// held connection's handshake completes only once knestd is ready: the
	// bench waits longer, to measure a slow wake rather than fail on it.
	tlsConfig, err := rest.TLSConfigFor(cfg)
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 3 * time.Minute, Transport: &http.Transport{TLSClientConfig: tlsConfig, TLSHandshakeTimeout: 3 * time.Minute, DisableKeepAlives: true}}
	st, _ := os.Stat(*supervisor)
	mode := "standalone"
	if *syncing {
		mode = "syncing"
	} else {
		*pods = 0
	}
	res := result{Mode: mode, Pods: *pods, Supervisor: *supervisor, SupervisorBytes: st.Size(), Runs: *runs, AsleepSeconds: asleepFor.Seconds(),
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
		case <-tn.asleep:
		case <-time.After(2 * time.Minute):
			return errors.New("knestd did not sleep within 2 minutes")
		}
		toAsleep = append(toAsleep, time.Since(begin).Seconds())
		if tn.podsGone != nil {
			// Looking at the host only: a tenant request would wake it.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			err := tn.podsGone(ctx)
			cancel()
			if err != nil {
				return fmt.Errorf("sleep %d: %w", i+1, err)
			}
		}
		cpu0, err := proccpu.Seconds(tn.pid)
		if err != nil {
			return err
		}
		time.Sleep(*asleepFor)
		mem, err := procmem.Read(tn.pid)
		if err != nil {
			return err
		}
		cpu1, _ := proccpu.Seconds(tn.pid)
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
		if tn.podsBack != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			err := tn.podsBack(ctx)
			cancel()
			if err != nil {
				return fmt.Errorf("wake %d: %w", i+1, err)
			}
			res.PodsBackAll = append(res.PodsBackAll, time.Since(begin).Seconds())
		}
		// Drain the ready line of this wake.
		select {
		case <-tn.ready:
		case <-time.After(time.Minute):
		}
	}
	res.PodsBackSec = median(res.PodsBackAll)
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

// startStandalone runs knest-supervisor in front of a knestd without a
// host.
func startStandalone(dir, knestd, supervisor string) (*tenant, error) {
	dataDir := filepath.Join(dir, "data")
	cmd := exec.Command(supervisor, "--knestd", knestd, "--", "--data-dir", dataDir, "--name", "bench", "--secure-port", "0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	out, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	tn := &tenant{pid: cmd.Process.Pid, asleep: make(chan struct{}, 16), ready: make(chan struct{}, 16), stop: func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}}
	logFile, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		return tn, err
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			tn.saw(line)
		}
	}()
	select {
	case <-tn.ready:
	case <-time.After(5 * time.Minute):
		return tn, errors.New("knestd was not ready within 5 minutes")
	}
	tn.cfg, err = clientcmd.BuildConfigFromFlags("", filepath.Join(dataDir, "admin.kubeconfig"))
	return tn, err
}

func (tn *tenant) saw(line string) {
	switch {
	case strings.Contains(line, "Tenant asleep"):
		tn.asleep <- struct{}{}
	case strings.Contains(line, "Tenant control plane is ready"):
		tn.ready <- struct{}{}
	}
}

// startSyncing starts a devcluster host and one tenant behind
// knest-supervisor as knest dev up --sleep-after does, with pool nodes, and
// n running pods.
func startSyncing(dir, knestDev, knestd, supervisor string, n int) (*tenant, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const name = "bench"
	env, err := devenv.Up(ctx, devenv.Options{
		Dir: dir, KnestDev: knestDev, Knestd: knestd, Supervisor: supervisor, Host: devenv.DefaultHost(),
		StopGrace: 30 * time.Second, Progress: os.Stderr,
		Tenants: []devenv.TenantOptions{{Tenant: devenv.Tenant{Name: name, Profile: policy.DefaultProfile}, Values: map[string]any{"poolNodes": true}}},
	})
	if err != nil {
		return nil, err
	}
	t := env.Tenant(name)
	tn := &tenant{pid: t.Knestd.Pid(), asleep: make(chan struct{}, 16), ready: make(chan struct{}, 16), stop: func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "sleep bench: stopping:", err)
		}
	}}
	go tn.follow(t.Knestd.LogPath)
	// The start's ready line was logged before the bench followed the log.
	select {
	case <-tn.ready:
	case <-time.After(time.Minute):
		return tn, errors.New("no ready line in the tenant's log")
	}
	if tn.cfg, err = clientcmd.BuildConfigFromFlags("", env.Layout.TenantKubeconfig(name)); err != nil {
		return tn, err
	}
	hostCfg, err := clientcmd.BuildConfigFromFlags("", env.Layout.HostKubeconfig())
	if err != nil {
		return tn, err
	}
	tc, err := kubernetes.NewForConfig(tn.cfg)
	if err != nil {
		return tn, err
	}
	hc, err := kubernetes.NewForConfig(hostCfg)
	if err != nil {
		return tn, err
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := tc.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		return tn, fmt.Errorf("no default ServiceAccount in the tenant: %w", err)
	}
	for i := range n {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("web-%d", i), Labels: map[string]string{"app": "web"}},
			Spec: corev1.PodSpec{
				SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65534)},
				Containers:      []corev1.Container{{Name: "c", Image: "busybox"}},
			},
		}
		if _, err := tc.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			return tn, err
		}
	}
	hostNS, selector := t.Namespace, "knest.io/tenant="+name
	hostRunning := func(ctx context.Context) (int, int, error) {
		l, err := hc.CoreV1().Pods(hostNS).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return 0, 0, err
		}
		running := 0
		for _, p := range l.Items {
			if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		return len(l.Items), running, nil
	}
	tn.podsBack = func(ctx context.Context) error {
		err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			if _, running, err := hostRunning(ctx); err != nil || running < n {
				return false, nil
			}
			l, err := tc.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil {
				return false, nil
			}
			ready := 0
			for _, p := range l.Items {
				for _, c := range p.Status.Conditions {
					if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
						ready++
					}
				}
			}
			return ready == n, nil
		})
		if err != nil {
			return fmt.Errorf("the %d pods did not run again on the host and Ready in the tenant: %w", n, err)
		}
		return nil
	}
	tn.podsGone = func(ctx context.Context) error {
		err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			all, _, err := hostRunning(ctx)
			return err == nil && all == 0, nil
		})
		if err != nil {
			return fmt.Errorf("the sleeping tenant's host pods are still there: %w", err)
		}
		return nil
	}
	if err := tn.podsBack(ctx); err != nil {
		return tn, err
	}
	return tn, nil
}

// follow reads the tenant's log file as it grows.
func (tn *tenant) follow(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var partial string
	for {
		line, err := r.ReadString('\n')
		partial += line
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		tn.saw(partial)
		partial = ""
	}
}
