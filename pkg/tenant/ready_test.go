package tenant

import (
	"context"
	"errors"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// knestdPod is knestd's pod of revision rev, its container waiting with
// reason.
func knestdPod(ns, rev, reason string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: PodName, Namespace: ns, Labels: map[string]string{appsv1.ControllerRevisionHashLabelKey: rev}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: ContainerName, Image: "registry.example/knestd:v9"}}},
		Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{
			Name:  ContainerName,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "pull access denied"}},
		}}},
	}
}

func knestdStatefulSet(ns, rev string) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: StatefulSetName, Namespace: ns, Generation: 1},
		Status:     appsv1.StatefulSetStatus{ObservedGeneration: 1, UpdateRevision: rev},
	}
}

func TestWaitReadyFailsFastWhenTheImageCannotBePulled(t *testing.T) {
	t.Parallel()
	for _, reason := range []string{"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"} {
		t.Run(reason, func(t *testing.T) {
			t.Parallel()
			c := fake.NewClientset(knestdStatefulSet("t", "r2"), knestdPod("t", "r2", reason))
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			start := time.Now()
			err := WaitReady(ctx, c, "t", func(string) {})
			var e *ImagePullError
			if !errors.As(err, &e) {
				t.Fatalf("error = %v, want an ImagePullError", err)
			}
			if e.Image != "registry.example/knestd:v9" || e.Reason != reason || e.Message != "pull access denied" {
				t.Errorf("error = %+v", e)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %s: not fast", d)
			}
		})
	}
}

// An upgrade that fixes the image: the old pod's pull failure is not the
// new image's, so the wait goes on (here until its deadline).
func TestWaitReadyIgnoresPullFailuresOfAnOlderRevision(t *testing.T) {
	t.Parallel()
	c := fake.NewClientset(knestdStatefulSet("t", "r2"), knestdPod("t", "r1", "ImagePullBackOff"))
	ctx, cancel := context.WithTimeout(t.Context(), 2500*time.Millisecond)
	defer cancel()
	err := WaitReady(ctx, c, "t", func(string) {})
	var nr *NotReadyError
	if !errors.As(err, &nr) {
		t.Fatalf("error = %v, want a NotReadyError at the deadline", err)
	}
}

func TestWaitReadyDoesNotFailOnOtherWaitingReasons(t *testing.T) {
	t.Parallel()
	c := fake.NewClientset(knestdStatefulSet("t", "r2"), knestdPod("t", "r2", "ContainerCreating"))
	ctx, cancel := context.WithTimeout(t.Context(), 2500*time.Millisecond)
	defer cancel()
	var nr *NotReadyError
	if err := WaitReady(ctx, c, "t", func(string) {}); !errors.As(err, &nr) || nr.State != PodName+": ContainerCreating: pull access denied" {
		t.Fatalf("error = %v, want a NotReadyError in ContainerCreating", err)
	}
}
