package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/knest-dev/knest/test/integration/framework"
)

// TestIntegrationChartSleep installs a tenant with the chart's
// sleep.enabled, runs its container as a kubelet would (knest-supervisor
// in front of knestd, with the container's arguments: the devcluster runs
// no containers), puts it to sleep with `knest sleep NAME` through the
// host, probes it as a kubelet would without waking it, and wakes it with
// a request.
func TestIntegrationChartSleep(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	h := startHost(t)
	ctx := t.Context()
	h.addVolume(t, "tenant-data-1")
	const ns = "knest-sleepy"

	create := h.knestAsync(t, "create", "sleepy", "--isolation=soft", "--timeout=3m", "--set=sleep.enabled=true", "--set=sleep.after=30m")
	pod := framework.StartKnestdAsPod(t, h.cfg, h.ca, ns, "knestd-0")
	pod.WaitReady(t, readyTimeout)
	mustSucceed(t, create(), "create sleepy with sleep.enabled")
	if !strings.Contains(pod.Output(), "Serving the tenant's API address") {
		t.Fatalf("the chart's container did not run knest-supervisor:\n%s", pod.Output())
	}
	health := fmt.Sprintf("http://127.0.0.1:%d", pod.Ports[8444])
	server := pod.Server(6443)

	r := h.knest(t, "connect", "sleepy", "-n", ns, "--print", "--server="+server)
	mustSucceed(t, r, "connect --print")
	tenantCfg, err := clientcmd.RESTConfigFromKubeConfig([]byte(r.stdout))
	if err != nil {
		t.Fatal(err)
	}
	tenant := framework.Client(t, tenantCfg)
	if _, err := tenant.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	wantHealth(t, health, "awake", "/readyz", http.StatusOK, "ok: awake")
	wantHealth(t, health, "awake", "/livez", http.StatusOK, "ok: awake")

	// knest sleep NAME finds the tenant on the host, as freeze does.
	mustSucceed(t, h.knest(t, "sleep", "sleepy", "-n", ns, "--server="+server), "knest sleep sleepy")
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		return strings.Contains(pod.Output(), "Tenant asleep"), nil
	}); err != nil {
		t.Fatalf("knestd did not go to sleep after knest sleep:\n%s", tail(pod.Output()))
	}
	// Kubelet probes for a minute's worth of periods: answered, and the
	// tenant stays asleep.
	for range 20 {
		wantHealth(t, health, "asleep", "/readyz", http.StatusOK, "ok: asleep")
		wantHealth(t, health, "asleep", "/livez", http.StatusOK, "ok: asleep")
	}
	if n := strings.Count(pod.Output(), "Started knestd"); n != 1 {
		t.Fatalf("knestd was started %d times after probes of a sleeping tenant, want once", n)
	}

	// A request wakes it, is held, and is answered; the data is there.
	begin := time.Now()
	got, err := tenant.CoreV1().ConfigMaps("default").Get(ctx, "kept", metav1.GetOptions{})
	if err != nil || got.Data["k"] != "v" {
		t.Fatalf("the request to the sleeping tenant: %v, %v", got, err)
	}
	t.Logf("wake: the request was answered after %s", time.Since(begin).Round(time.Millisecond))
	for _, l := range strings.Split(pod.Output(), "\n") {
		if strings.Contains(l, "knestd is ready") || strings.Contains(l, "Started knestd") || strings.Contains(l, "held connection") {
			t.Log(l)
		}
	}
	if n := strings.Count(pod.Output(), "Started knestd"); n != 2 {
		t.Errorf("knestd was started %d times, want 2 (start and one wake)", n)
	}
	// Ready throughout: waking while knestd's own checks (the syncer's
	// caches) catch up, then awake.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		code, body := getHealth(t, health, "/readyz")
		if code != http.StatusOK || !strings.HasPrefix(body, "ok: ") {
			t.Fatalf("woken: /readyz answered %d %q, want ok (waking, then awake)", code, body)
		}
		if strings.HasPrefix(body, "ok: awake") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("woken: /readyz still answers %q a minute after the wake", body)
		}
	}

	pod.Stop(t, time.Minute)
	mustSucceed(t, h.knest(t, "delete", "sleepy", "-n", ns), "delete sleepy")
}

func wantHealth(t *testing.T, base, when, path string, code int, text string) {
	t.Helper()
	got, body := getHealth(t, base, path)
	if got != code || !strings.Contains(body, text) {
		t.Errorf("%s: %s answered %d %q, want %d with %q", when, path, got, body, code, text)
	}
}

// getHealth asks the supervisor's health endpoint as a kubelet would.
func getHealth(t *testing.T, base, path string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(base + path)
	if err != nil {
		t.Fatalf("the supervisor's %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func tail(s string) string {
	if lines := strings.Split(s, "\n"); len(lines) > 40 {
		return strings.Join(lines[len(lines)-40:], "\n")
	}
	return s
}
