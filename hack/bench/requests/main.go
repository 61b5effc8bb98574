// Command requests measures what one API request costs a running API
// server, back to back and after a quiet pause: a GET of a namespace (from
// etcd, and from the watch cache with resourceVersion=0) and a status
// write of a pod, as a merge PATCH and as an update (PUT) with the pod's
// resourceVersion, each with the time until the client's own watch sees
// it. The client speaks protobuf, as knest's syncer and Kubernetes' own
// components do. It prints one JSON object.
//
//	go run ./hack/bench/requests --kubeconfig FILE [--requests 300] [--pause 20ms] [--namespace default]
//
// The pod has a scheduling gate, so a syncing knestd never runs it on its
// host; it is deleted at the end. The pause shows the cost of a request
// that finds the server's threads asleep, as a paced workload does.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/knest-dev/knest/hack/bench/internal/stats"
)

type result struct {
	Requests int     `json:"requests"`
	PauseMS  float64 `json:"pause_ms"`
	// Each distribution is in milliseconds, with no pause between the
	// requests ("back_to_back") and with --pause ("paused").
	GetNamespace          map[string]stats.Latency `json:"get_namespace_ms"`
	GetNamespaceFromCache map[string]stats.Latency `json:"get_namespace_rv0_ms"`
	PatchPodStatus        map[string]stats.Latency `json:"patch_pod_status_ms"`
	PatchToOwnWatchEvent  map[string]stats.Latency `json:"patch_pod_status_to_watch_event_ms"`
	UpdatePodStatus       map[string]stats.Latency `json:"update_pod_status_ms"`
	UpdateToOwnWatchEvent map[string]stats.Latency `json:"update_pod_status_to_watch_event_ms"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "requests:", err)
		os.Exit(1)
	}
}

func run() error {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the API server to measure (required)")
	n := flag.Int("requests", 300, "requests of each kind and pause")
	pause := flag.Duration("pause", 20*time.Millisecond, "quiet time between the paused requests")
	namespace := flag.String("namespace", "default", "namespace of the namespace GET and the pod")
	flag.Parse()
	if *kubeconfig == "" || *n < 1 || *pause <= 0 {
		return errors.New("--kubeconfig is required, --requests and --pause must be positive")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = -1, 0 // unthrottled: the pauses are the bench's own
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	res := result{Requests: *n, PauseMS: stats.Round(float64(*pause) / 1e6),
		GetNamespace: map[string]stats.Latency{}, GetNamespaceFromCache: map[string]stats.Latency{},
		PatchPodStatus: map[string]stats.Latency{}, PatchToOwnWatchEvent: map[string]stats.Latency{},
		UpdatePodStatus: map[string]stats.Latency{}, UpdateToOwnWatchEvent: map[string]stats.Latency{}}
	pod, err := c.CoreV1().Pods(*namespace).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-requests-", Namespace: *namespace},
		Spec: corev1.PodSpec{
			SchedulingGates: []corev1.PodSchedulingGate{{Name: "knest.io/bench-requests"}},
			Containers:      []corev1.Container{{Name: "c", Image: "busybox"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	defer func() {
		_ = c.CoreV1().Pods(*namespace).Delete(context.Background(), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
	}()
	w, err := c.CoreV1().Pods(*namespace).Watch(ctx, metav1.ListOptions{
		FieldSelector: "metadata.name=" + pod.Name, ResourceVersion: pod.ResourceVersion})
	if err != nil {
		return err
	}
	defer w.Stop()

	for _, p := range []struct {
		name string
		d    time.Duration
	}{{"back_to_back", 0}, {"paused", *pause}} {
		for _, rv := range []string{"", "0"} {
			var ms []float64
			for range *n {
				s := time.Now()
				if _, err := c.CoreV1().Namespaces().Get(ctx, *namespace, metav1.GetOptions{ResourceVersion: rv}); err != nil {
					return err
				}
				ms = append(ms, since(s))
				time.Sleep(p.d)
			}
			if rv == "" {
				res.GetNamespace[p.name] = stats.LatencyOf(ms, 0)
			} else {
				res.GetNamespaceFromCache[p.name] = stats.LatencyOf(ms, 0)
			}
		}
		// Each status write sets a new message and waits for the watch
		// to show it.
		writes := []struct {
			name          string
			write         func(msg string) error
			done, toWatch map[string]stats.Latency
		}{
			{"patch", func(msg string) error {
				body, err := json.Marshal(map[string]any{"status": map[string]any{"message": msg}})
				if err != nil {
					return err
				}
				pod, err = c.CoreV1().Pods(*namespace).Patch(ctx, pod.Name, types.MergePatchType, body, metav1.PatchOptions{}, "status")
				return err
			}, res.PatchPodStatus, res.PatchToOwnWatchEvent},
			{"update", func(msg string) error {
				pod.Status.Message = msg
				pod, err = c.CoreV1().Pods(*namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
				return err
			}, res.UpdatePodStatus, res.UpdateToOwnWatchEvent},
		}
		for _, wr := range writes {
			var done, event []float64
			for i := range *n {
				msg := fmt.Sprintf("%s-%s-%d", p.name, wr.name, i)
				s := time.Now()
				if err := wr.write(msg); err != nil {
					return err
				}
				done = append(done, since(s))
				if err := awaitMessage(ctx, w, msg); err != nil {
					return err
				}
				event = append(event, since(s))
				time.Sleep(p.d)
			}
			wr.done[p.name] = stats.LatencyOf(done, 0)
			wr.toWatch[p.name] = stats.LatencyOf(event, 0)
		}
	}
	out, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	return nil
}

func since(t time.Time) float64 { return float64(time.Since(t)) / 1e6 }

// awaitMessage waits for w to show the pod with status message msg.
func awaitMessage(ctx context.Context, w watch.Interface, msg string) error {
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return errors.New("the pod watch ended")
			}
			if p, isPod := ev.Object.(*corev1.Pod); isPod && p.Status.Message == msg {
				return nil
			}
		case <-timeout:
			return fmt.Errorf("no watch event with status message %q within 30 s", msg)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
