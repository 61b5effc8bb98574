package podsync

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestRefusePod(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		pod  corev1.Pod
		pool bool
		want string
	}{
		{name: "a plain pod goes to the host", pod: corev1.Pod{}},
		{name: "a ReplicaSet's pod goes to the host", pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Controller: ptr.To(true)}}}}},
		{name: "a DaemonSet's pod is refused without pool nodes: its node stands for no host node of its own", pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{
			OwnerReferences: []metav1.OwnerReference{{Kind: "DaemonSet", Controller: ptr.To(true)}}}}, want: "DaemonSet"},
		{name: "a DaemonSet's pod goes to the host with pool nodes", pool: true, pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{
			OwnerReferences: []metav1.OwnerReference{{Kind: "DaemonSet", Controller: ptr.To(true)}}}}},
		{name: "a pod the tenant bound to a node itself goes to the host (placed on that node's host node)", pod: corev1.Pod{Spec: corev1.PodSpec{NodeName: "node-1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := refusePod(&tt.pod, tt.pool)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("refusePod = %q, want one mentioning %q", got, tt.want)
			}
		})
	}
}

func TestWasOnHost(t *testing.T) {
	t.Parallel()
	fresh := &corev1.Pod{}
	if wasOnHost(fresh) {
		t.Errorf("a pod the host never saw counts as having had a host pod")
	}
	waiting := &corev1.Pod{Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse}}}}
	if wasOnHost(waiting) {
		t.Errorf("a pod that only waited to be scheduled counts as having had a host pod")
	}
	scheduled := &corev1.Pod{Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}}}}
	if !wasOnHost(scheduled) {
		t.Errorf("a pod the host scheduled must count as having had a host pod")
	}
	gated := &corev1.Pod{Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonSchedulingGated}}}}
	if wasOnHost(gated) {
		t.Errorf("a pod the tenant API server holds for its scheduling gates counts as having had a host pod")
	}
}
