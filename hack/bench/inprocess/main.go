// Command inprocess measures what knestd's in-process transport
// (pkg/controlplane/inprocess) saves its own clients (syncer, DNS,
// kubelet) per request against the network path they took before: TLS
// over loopback with a client certificate. It starts a control plane in
// this process, as knestd does, and sends the same requests through both
// clients, alternating request by request so that both see the same
// machine: a GET of a pod and a status update of it, back to back and
// after a quiet pause (a paced workload finds the threads asleep), and the
// process's CPU per request (client and server, both in this process) over
// blocks of back-to-back requests. It prints one JSON object.
//
//	go run ./hack/bench/inprocess [--requests 300] [--pause 20ms]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/knest-dev/knest/hack/bench/internal/proccpu"
	"github.com/knest-dev/knest/hack/bench/internal/stats"
	"github.com/knest-dev/knest/pkg/controlplane"
)

// transports are the two paths, in the order of each round.
var transports = []string{"network", "in_process"}

type result struct {
	Requests int     `json:"requests"`
	PauseMS  float64 `json:"pause_ms"`
	// Per transport, then "back_to_back" or "paused", in milliseconds.
	GetPod          map[string]map[string]stats.Latency `json:"get_pod_ms"`
	UpdatePodStatus map[string]map[string]stats.Latency `json:"update_pod_status_ms"`
	// CPUPerRequestMS is this process's CPU (client and server) per
	// request of a back-to-back block of GETs and status updates.
	CPUPerRequestMS map[string]float64 `json:"cpu_ms_per_request"`
	Go              string             `json:"go"`
	CPUs            int                `json:"cpus"`
	LoadAverage     string             `json:"load_average_start"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "inprocess:", err)
		os.Exit(1)
	}
}

func run() error {
	n := flag.Int("requests", 300, "requests of each kind, pause and transport")
	pause := flag.Duration("pause", 20*time.Millisecond, "quiet time before each paused request")
	flag.Parse()
	if *n < 1 || *pause <= 0 {
		return errors.New("--requests and --pause must be positive")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "knest-bench-inprocess-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	load := proccpu.LoadAverage()
	inst, err := controlplane.Start(ctx, controlplane.Spec{
		Name: "bench-inprocess", DataDir: filepath.Join(dir, "data"),
		BindAddress: "127.0.0.1", AdvertiseAddress: net.IPv4(127, 0, 0, 1),
		ServiceCIDR: "10.96.0.0/16", ClusterDomain: "cluster.local",
		Controllers: []string{"serviceaccount-controller"},
	})
	if err != nil {
		return err
	}
	defer inst.Stop("bench done")
	clients := map[string]*kubernetes.Clientset{}
	for name, cfg := range map[string]*rest.Config{"network": rest.CopyConfig(inst.AdminConfig), "in_process": inst.LocalConfig()} {
		// As knestd's own clients: unthrottled, protobuf.
		cfg.QPS, cfg.Burst = -1, 0
		cfg.ContentType = "application/vnd.kubernetes.protobuf"
		cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
		if clients[name], err = kubernetes.NewForConfig(cfg); err != nil {
			return err
		}
	}
	pods := clients["network"].CoreV1().Pods(metav1.NamespaceDefault)
	pod, err := pods.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "bench-inprocess"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		return err
	}

	res := result{
		Requests: *n, PauseMS: stats.Round(float64(*pause) / 1e6),
		GetPod: map[string]map[string]stats.Latency{}, UpdatePodStatus: map[string]map[string]stats.Latency{},
		CPUPerRequestMS: map[string]float64{},
		Go:              runtime.Version(), CPUs: runtime.NumCPU(), LoadAverage: load,
	}
	for _, t := range transports {
		res.GetPod[t], res.UpdatePodStatus[t] = map[string]stats.Latency{}, map[string]stats.Latency{}
	}
	get := func(t string) error {
		_, err := clients[t].CoreV1().Pods(metav1.NamespaceDefault).Get(ctx, pod.Name, metav1.GetOptions{})
		return err
	}
	i := 0
	update := func(t string) error {
		i++
		pod.Status.Message = fmt.Sprintf("%s-%d", t, i)
		updated, err := clients[t].CoreV1().Pods(metav1.NamespaceDefault).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
		if err == nil {
			pod = updated
		}
		return err
	}
	// pairs sends times GETs and status updates, back to back.
	pairs := func(t string, times int) error {
		for range times {
			if err := get(t); err != nil {
				return err
			}
			if err := update(t); err != nil {
				return err
			}
		}
		return nil
	}
	// A warm-up round of each, so neither transport pays for first
	// connections or first-use allocations in the measurement.
	for _, t := range transports {
		if err := pairs(t, 20); err != nil {
			return err
		}
	}
	for _, p := range []struct {
		name string
		d    time.Duration
	}{{"back_to_back", 0}, {"paused", *pause}} {
		for _, kind := range []struct {
			do  func(string) error
			out map[string]map[string]stats.Latency
		}{{get, res.GetPod}, {update, res.UpdatePodStatus}} {
			ms := map[string][]float64{}
			for range *n {
				for _, t := range transports {
					time.Sleep(p.d)
					s := time.Now()
					if err := kind.do(t); err != nil {
						return fmt.Errorf("%s: %w", t, err)
					}
					ms[t] = append(ms[t], float64(time.Since(s))/1e6)
				}
			}
			for _, t := range transports {
				kind.out[t][p.name] = stats.LatencyOf(ms[t], 0)
			}
		}
	}
	// CPU: blocks of back-to-back requests, twice per transport, in
	// alternation.
	cpu := map[string]float64{}
	for range 2 {
		for _, t := range transports {
			before, err := proccpu.Seconds(os.Getpid())
			if err != nil {
				return err
			}
			if err := pairs(t, *n); err != nil {
				return err
			}
			after, err := proccpu.Seconds(os.Getpid())
			if err != nil {
				return err
			}
			cpu[t] += after - before
		}
	}
	for _, t := range transports {
		res.CPUPerRequestMS[t] = stats.Round(cpu[t] * 1000 / float64(4**n))
	}
	out, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	return nil
}
