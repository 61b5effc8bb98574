package synctest

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// EventuallyWithin polls cond every 50 ms for up to timeout, failing the
// test with what if it never holds.
func EventuallyWithin(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, timeout, true, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Exists reports whether c has obj's key, reading it into obj.
func Exists(ctx context.Context, c client.Client, obj client.Object) (bool, error) {
	err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj)
	if kerrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// Create creates obj with c, failing the test if it cannot.
func Create(t *testing.T, c client.Client, obj client.Object) {
	t.Helper()
	if err := c.Create(t.Context(), obj); err != nil {
		t.Fatalf("failed to create %T %s: %v", obj, client.ObjectKeyFromObject(obj), err)
	}
}

// RunHostPod plays a host kubelet: pod's status becomes Running with a pod
// IP on host IP 192.168.0.5, retried on conflicts as a kubelet does (the
// syncer may write the host pod meanwhile).
func RunHostPod(t *testing.T, c client.Client, pod *corev1.Pod) {
	t.Helper()
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(t.Context(), client.ObjectKeyFromObject(pod), pod); err != nil {
			return err
		}
		pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.3.4", PodIPs: []corev1.PodIP{{IP: "10.244.3.4"}}, HostIP: "192.168.0.5",
			Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}}}
		return c.Status().Update(t.Context(), pod)
	}); err != nil {
		t.Fatal(err)
	}
}
