package syncer

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/knest-dev/knest/pkg/devenv"
	"github.com/knest-dev/knest/test/integration/framework"
)

// asleepMessage is what knest-supervisor logs when knestd went to sleep.
const asleepMessage = "Tenant asleep"

// TestIntegrationSleep runs a syncing tenant behind knest-supervisor with
// --sleep-after, with a running pod, a ConfigMap and a Secret, and sleeps
// it twice: once by `knest sleep`, once by idle time. Each time its host
// pod goes and knestd exits; `kubectl get ns` (bin/kubectl, on the admin
// kubeconfig, which names the supervisor's address) is held while knestd
// wakes and succeeds; the host pod comes back for the same tenant pod,
// and the ConfigMap and Secret are as they were written.
func TestIntegrationSleep(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	// Pool nodes (the chart's default): the pod made again after the wake
	// goes back to the host node of its virtual Node, as after an unfreeze.
	e := setUpHost(t, devenv.DefaultHost(), map[string]any{"poolNodes": true})
	pol, err := devenv.DevPolicy(e.it.Profile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.dev.Layout.TenantPolicy(tenantName), pol, 0o600); err != nil {
		t.Fatal(err)
	}
	const sleepAfter = 20 * time.Second
	args := append([]string{"--knestd", framework.KnestdPath(), "--wake-timeout", "3m", "--"}, e.dev.KnestdArgs(e.it)...)
	args = append(args, "--sleep-after="+sleepAfter.String())
	logPath := e.dev.Layout.Log("tenant-" + tenantName)
	sup, err := devenv.StartChild("knest-supervisor of "+tenantName, logPath, devenv.TenantReadyMessage, framework.SupervisorPath(), args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sup.Stop(30 * time.Second); err != nil {
			t.Error(err)
		}
	})
	ctx := t.Context()
	readyCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := sup.WaitReady(readyCtx); err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(e.tenantDir, "admin.kubeconfig")
	e.tenant = framework.Client(t, framework.AdminConfig(t, kubeconfig))

	const ns = "default"
	asleep := func() int {
		data, err := os.ReadFile(logPath)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(string(data), asleepMessage)
	}
	kubectlGetNS := func(t *testing.T) time.Duration {
		t.Helper()
		begin := time.Now()
		out, err := exec.CommandContext(ctx, framework.KubectlPath(), "--kubeconfig", kubeconfig, "--request-timeout=3m", "get", "ns").CombinedOutput()
		took := time.Since(begin)
		if err != nil || !strings.Contains(string(out), "kube-system") {
			t.Fatalf("kubectl get ns on the sleeping tenant: %v\n%s", err, out)
		}
		return took
	}
	// Written before the first sleep; checked after every wake.
	if _, err := e.tenant.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.tenant.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "kept"}, Data: map[string][]byte{"password": []byte("s3cret")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.tenant.CoreV1().Pods(ns).Create(ctx, simplePod("web"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var before *corev1.Pod
	within(t, 2*time.Minute, "tenant pod Running on the host", func(ctx context.Context) (bool, error) {
		p, err := e.tenantPod(ctx, ns, "web")
		if err != nil {
			return false, err
		}
		before = p
		_, err = e.hostPod(ctx, ns, "web")
		return p.Status.Phase == corev1.PodRunning && err == nil, nil
	})

	// checkAsleep waits, looking at the host and the log only (a tenant
	// request would wake it), for the n-th sleep and the host pod's end.
	checkAsleep := func(t *testing.T, n int, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for asleep() < n {
			if time.Now().After(deadline) {
				t.Fatalf("knestd did not go to sleep (%d) within %v", n, within)
			}
			time.Sleep(200 * time.Millisecond)
		}
		// The host pod was deleted before knestd exited; its grace
		// period runs on the host.
		h, err := e.hostPod(ctx, ns, "web")
		if err == nil && h.DeletionTimestamp == nil {
			t.Errorf("the sleeping tenant's host pod %s is not being deleted", h.Name)
		} else if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			if _, err := e.hostPod(ctx, ns, "web"); apierrors.IsNotFound(err) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the sleeping tenant's host pod was still there after 90s")
			}
		}
		if got := asleep(); got != n {
			t.Errorf("the tenant woke while the test only watched the host: %d sleeps, want %d", got, n)
		}
	}
	// checkAwake: after a wake, the same tenant pod runs on the host again,
	// and the data written before the first sleep is there.
	checkAwake := func(t *testing.T) {
		t.Helper()
		within(t, 2*time.Minute, "host pod made again after the wake", func(ctx context.Context) (bool, error) {
			_, err := e.hostPod(ctx, ns, "web")
			return err == nil, nil
		})
		p, err := e.tenantPod(ctx, ns, "web")
		if err != nil {
			t.Fatal(err)
		}
		if p.UID != before.UID || p.Status.Phase == corev1.PodFailed {
			t.Errorf("tenant pod after the wake: UID %s phase %s, want the same pod (%s), not Failed", p.UID, p.Status.Phase, before.UID)
		}
		cm, err := e.tenant.CoreV1().ConfigMaps(ns).Get(ctx, "kept", metav1.GetOptions{})
		if err != nil || cm.Data["k"] != "v" {
			t.Errorf("ConfigMap kept after the wake: %v, %v", cm, err)
		}
		s, err := e.tenant.CoreV1().Secrets(ns).Get(ctx, "kept", metav1.GetOptions{})
		if err != nil || string(s.Data["password"]) != "s3cret" {
			t.Errorf("Secret kept after the wake: %v, %v", s, err)
		}
	}

	t.Run("knest sleep: the host pod goes, kubectl get ns wakes the tenant, the pod comes back, data is kept", func(t *testing.T) {
		out, err := exec.CommandContext(ctx, framework.KnestPath(), "sleep", "--tenant-kubeconfig", kubeconfig).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "going to sleep") {
			t.Fatalf("knest sleep: %v\n%s", err, out)
		}
		checkAsleep(t, 1, 2*time.Minute)
		t.Logf("woken by kubectl get ns in %v", kubectlGetNS(t))
		checkAwake(t)
	})

	t.Run("idle: the tenant sleeps by itself after --sleep-after, and wakes again", func(t *testing.T) {
		checkAsleep(t, 2, sleepAfter+2*time.Minute)
		data, _ := os.ReadFile(logPath)
		if !strings.Contains(string(data), `reason="idle for`) {
			t.Error("the second sleep was not for idleness (no \"idle for\" reason in the log)")
		}
		t.Logf("woken by kubectl get ns in %v", kubectlGetNS(t))
		checkAwake(t)
		if _, err := e.tenant.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after-two-sleeps"}}, metav1.CreateOptions{}); err != nil {
			t.Errorf("a create after two sleeps: %v", err)
		}
	})
}
