package syncer

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/pkg/devcluster"
	"github.com/knest-dev/knest/pkg/devcluster/pools"
	"github.com/knest-dev/knest/test/integration/framework"
)

// hostPodOnPool waits for the host pod of default/name to be scheduled and
// returns it with the pool of its node.
func (e *env) hostPodOnPool(t *testing.T, name string) (*corev1.Pod, string) {
	t.Helper()
	var h *corev1.Pod
	within(t, 30*time.Second, "host pod "+name+" scheduled", func(ctx context.Context) (bool, error) {
		p, err := e.hostPod(ctx, "default", name)
		h = p
		return err == nil && p.Spec.NodeName != "", nil
	})
	node, err := e.host.CoreV1().Nodes().Get(t.Context(), h.Spec.NodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return h, node.Labels[pools.Label]
}

func TestIntegrationIsolationProfiles(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := setUp(t)
	ctx := t.Context()

	t.Run("hard: every host pod is sandboxed, on the sandboxed pool, always pulling, without NET_RAW", func(t *testing.T) {
		if _, err := e.tenant.CoreV1().Pods("default").Create(ctx, simplePod("hard"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		h, pool := e.hostPodOnPool(t, "hard")
		if ptr.Deref(h.Spec.RuntimeClassName, "") != devcluster.KataRuntimeClass || pool != pools.Sandboxed {
			t.Errorf("host pod runtime class %v on pool %q, want %q on %q", h.Spec.RuntimeClassName, pool, devcluster.KataRuntimeClass, pools.Sandboxed)
		}
		c := h.Spec.Containers[0]
		if c.ImagePullPolicy != corev1.PullAlways || c.SecurityContext == nil || c.SecurityContext.Capabilities == nil ||
			!slices.Contains(c.SecurityContext.Capabilities.Drop, "NET_RAW") {
			t.Errorf("hard host container: pull %s, security context %+v", c.ImagePullPolicy, c.SecurityContext)
		}
	})

	t.Run("hard: a root pod runs sandboxed; a privileged one is refused at apply, nothing reaches the host", func(t *testing.T) {
		p := simplePod("root")
		p.Spec.SecurityContext = nil
		if _, err := e.tenant.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatalf("a root pod is refused in hard: %v", err)
		}
		if h, _ := e.hostPodOnPool(t, "root"); ptr.Deref(h.Spec.RuntimeClassName, "") != devcluster.KataRuntimeClass {
			t.Errorf("the root pod's host pod is not sandboxed: %v", h.Spec.RuntimeClassName)
		}
		p = simplePod("privileged")
		p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
		_, err := e.tenant.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), "privileged") || !strings.Contains(err.Error(), "hard") {
			t.Fatalf("create of a privileged pod: %v, want a refusal naming the field and the profile", err)
		}
		time.Sleep(time.Second)
		if _, err := e.hostPod(ctx, "default", "privileged"); err == nil {
			t.Errorf("a refused pod reached the host")
		}
	})

	t.Run("soft: pods run on general nodes without a sandbox", func(t *testing.T) {
		e.stopKnestd(t)
		e.knestdArgs = []string{"--isolation=soft"}
		e.startKnestd(t)
		p := simplePod("soft")
		p.Spec.SecurityContext = nil // baseline does not require it
		if _, err := e.tenant.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		h, pool := e.hostPodOnPool(t, "soft")
		if h.Spec.RuntimeClassName != nil || pool != pools.General {
			t.Errorf("soft host pod: runtime class %v on pool %q, want none on %q", h.Spec.RuntimeClassName, pool, pools.General)
		}
	})

	t.Run("hard on a host without the sandboxed RuntimeClass fails at start, saying what to do", func(t *testing.T) {
		// The previous subtest's knestd ends with it.
		e.knestd.Kill()
		hostAdmin := framework.Client(t, framework.AdminConfig(t, e.dev.Layout.HostKubeconfig()))
		if err := hostAdmin.NodeV1().RuntimeClasses().Delete(ctx, devcluster.KataRuntimeClass, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		// Up's flags for the tenant: the hard profile.
		out, err := framework.Run(t, time.Minute, framework.KnestdPath(), e.dev.KnestdArgs(e.it)...)
		if err == nil {
			t.Fatalf("knestd started in the hard profile without the kata RuntimeClass:\n%s", out)
		}
		if !strings.Contains(out, "install the RuntimeClass") || !strings.Contains(out, "--isolation=soft") {
			t.Errorf("knestd's error does not say what to do:\n%s", lastLines(out, 5))
		}
	})
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
