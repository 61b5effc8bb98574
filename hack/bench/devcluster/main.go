// Command devcluster measures the devcluster host: time from exec to all
// nodes Ready (the "Host cluster is ready" line, logged once every node is
// Ready), time from then until a 10-replica Deployment has 10 Running pods,
// and the process's RSS at that point. It prints one JSON object.
//
//	go run ./hack/bench/devcluster --knest-dev bin/knest-dev [--replicas 10]
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
	"strconv"
	"strings"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/hack/bench/internal/procmem"
)

const readyMessage = "Host cluster is ready"

type result struct {
	Nodes                int     `json:"nodes"`
	Replicas             int     `json:"replicas"`
	StartToNodesReadySec float64 `json:"start_to_nodes_ready_seconds"`
	DeploymentRunningSec float64 `json:"deployment_running_seconds"`
	StartToDeploymentSec float64 `json:"start_to_deployment_running_seconds"`
	RSSMiB               float64 `json:"rss_mib"`
	RSSAnonMiB           float64 `json:"rss_anon_mib"`
	RSSFileMiB           float64 `json:"rss_file_mib"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "devcluster bench:", err)
		os.Exit(1)
	}
}

func run() error {
	knestDev := flag.String("knest-dev", "bin/knest-dev", "knest-dev binary (the devcluster)")
	replicas := flag.Int("replicas", 10, "deployment replicas")
	nodes := flag.Int("nodes", 2, "general nodes")
	flag.Parse()

	dir, err := os.MkdirTemp("", "knest-bench-devcluster-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command(*knestDev, "host", "--dir", dir, "--nodes", strconv.Itoa(*nodes))
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	ready := make(chan time.Duration, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if strings.Contains(sc.Text(), readyMessage) {
				ready <- time.Since(begin)
			}
		}
	}()
	var nodesReady time.Duration
	select {
	case nodesReady = <-ready:
	case <-time.After(3 * time.Minute):
		return errors.New("devcluster not ready within 3 minutes")
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "admin.kubeconfig"))
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	labels := map[string]string{"app": "bench"}
	deployStart := time.Now()
	_, err = client.AppsV1().Deployments("default").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "bench"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(*replicas)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	for {
		pods, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=bench"})
		if err != nil {
			return err
		}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		if running == *replicas {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d pods Running after 3 minutes", running, *replicas)
		case <-time.After(20 * time.Millisecond):
		}
	}
	deployRunning := time.Since(deployStart)
	mem, err := procmem.Read(cmd.Process.Pid)
	if err != nil {
		return err
	}
	out, err := json.MarshalIndent(result{
		Nodes:                *nodes + 1,
		Replicas:             *replicas,
		StartToNodesReadySec: round(nodesReady.Seconds()),
		DeploymentRunningSec: round(deployRunning.Seconds()),
		StartToDeploymentSec: round((nodesReady + deployRunning).Seconds()),
		RSSMiB:               round(mem.RSS),
		RSSAnonMiB:           round(mem.Anon),
		RSSFileMiB:           round(mem.File),
	}, "", "  ")
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	return nil
}

func round(x float64) float64 { return float64(int(x*100+0.5)) / 100 }
