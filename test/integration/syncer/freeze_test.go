package syncer

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/knest-dev/knest/pkg/devenv"
	"github.com/knest-dev/knest/pkg/syncer/podsync"
)

// TestIntegrationFreeze freezes a tenant with a running pod (knestd
// restarted with --frozen, as the chart value frozen does), checks that its
// host pod goes while the tenant pod stays, not Failed and saying why, that
// the tenant's admin can read but not write (create, update, delete), then
// unfreezes it and checks that the host pod is back and writes work.
func TestIntegrationFreeze(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	// With pool nodes (the chart's default): knestd knows the host node of
	// a virtual Node without a host pod on it, which the pod made again
	// after the unfreeze goes back to. Without them it is unknown after a
	// restart, and the pod waits, unschedulable, with the reason.
	e := setUpHost(t, devenv.DefaultHost(), map[string]any{"poolNodes": true})
	e.startKnestd(t)
	ctx := t.Context()
	const ns = "default"
	if _, err := e.tenant.CoreV1().Pods(ns).Create(ctx, simplePod("web"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.tenant.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var before *corev1.Pod
	within(t, 60*time.Second, "tenant pod Running on the host", func(ctx context.Context) (bool, error) {
		p, err := e.tenantPod(ctx, ns, "web")
		if err != nil {
			return false, err
		}
		before = p
		_, err = e.hostPod(ctx, ns, "web")
		return p.Status.Phase == corev1.PodRunning && err == nil, nil
	})

	e.stopKnestd(t)
	e.knestdArgs = []string{"--frozen"}
	e.startKnestd(t)

	t.Run("frozen: the host pod goes, the tenant pod stays and says why", func(t *testing.T) {
		within(t, 60*time.Second, "host pod gone", func(ctx context.Context) (bool, error) {
			_, err := e.hostPod(ctx, ns, "web")
			return apierrors.IsNotFound(err), nil
		})
		var p *corev1.Pod
		within(t, 30*time.Second, "tenant pod frozen", func(ctx context.Context) (bool, error) {
			var err error
			p, err = e.tenantPod(ctx, ns, "web")
			if err != nil {
				return false, err
			}
			return slices.ContainsFunc(p.Status.Conditions, func(c corev1.PodCondition) bool {
				return c.Type == podsync.ConditionFrozen && c.Status == corev1.ConditionTrue && c.Reason == podsync.ReasonFrozen
			}), nil
		})
		if p.UID != before.UID || p.Status.Phase != corev1.PodRunning {
			t.Errorf("tenant pod %s is %s, want the same pod (%s), still Running", p.UID, p.Status.Phase, before.UID)
		}
		if i := slices.IndexFunc(p.Status.Conditions, func(c corev1.PodCondition) bool { return c.Type == corev1.PodReady }); i < 0 || p.Status.Conditions[i].Status != corev1.ConditionFalse {
			t.Errorf("conditions %+v, want Ready False", p.Status.Conditions)
		}
	})

	t.Run("frozen: the tenant's admin reads but cannot write", func(t *testing.T) {
		if _, err := e.tenant.CoreV1().ConfigMaps(ns).Get(ctx, "kept", metav1.GetOptions{}); err != nil {
			t.Errorf("a read: %v", err)
		}
		_, err := e.tenant.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "new"}}, metav1.CreateOptions{})
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "the tenant is frozen by its operator") {
			t.Errorf("a create: %v, want Forbidden naming the freeze", err)
		}
		if err := e.tenant.CoreV1().Pods(ns).Delete(ctx, "web", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "frozen") {
			t.Errorf("a delete: %v, want Forbidden naming the freeze", err)
		}
		_, err = e.tenant.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "new"}}, metav1.CreateOptions{})
		if !apierrors.IsForbidden(err) {
			t.Errorf("a Namespace create: %v, want Forbidden", err)
		}
	})

	e.stopKnestd(t)
	e.knestdArgs = nil
	e.startKnestd(t)

	t.Run("unfrozen: the host pod of the pod that still exists is back", func(t *testing.T) {
		within(t, 60*time.Second, "tenant pod Running on the host again", func(ctx context.Context) (bool, error) {
			p, err := e.tenantPod(ctx, ns, "web")
			if err != nil {
				return false, err
			}
			if _, err := e.hostPod(ctx, ns, "web"); err != nil {
				return false, nil
			}
			return p.Status.Phase == corev1.PodRunning && !slices.ContainsFunc(p.Status.Conditions, func(c corev1.PodCondition) bool {
				return c.Type == podsync.ConditionFrozen
			}), nil
		})
		if cm, err := e.tenant.CoreV1().ConfigMaps(ns).Get(ctx, "kept", metav1.GetOptions{}); err != nil || cm.Data["k"] != "v" {
			t.Errorf("the ConfigMap kept through the freeze: %v %v", cm, err)
		}
		if _, err := e.tenant.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "new"}}, metav1.CreateOptions{}); err != nil {
			t.Errorf("a create after the unfreeze: %v", err)
		}
	})
}
