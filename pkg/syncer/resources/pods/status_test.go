package pods

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestBackward(t *testing.T) {
	t.Parallel()
	tenant := tenantPod()
	tenant.Spec.NodeName = "knest-node-abc"
	tenant.Status.QOSClass = corev1.PodQOSBurstable
	hostPod := Forward(tenant, nil, meta, Env{})
	hostPod.Spec.NodeName = "ip-10-0-3-7.internal"
	started := metav1.NewTime(time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC))
	hostPod.Status = corev1.PodStatus{
		Phase:             corev1.PodRunning,
		Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		HostIP:            "10.0.3.7",
		HostIPs:           []corev1.HostIP{{IP: "10.0.3.7"}},
		PodIP:             "10.244.1.5",
		PodIPs:            []corev1.PodIP{{IP: "10.244.1.5"}},
		StartTime:         &started,
		NominatedNodeName: "ip-10-0-3-8.internal",
		QOSClass:          corev1.PodQOSBestEffort,
		ContainerStatuses: []corev1.ContainerStatus{{Name: "api", Ready: true, Image: "api:1", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}}},
	}
	before := tenant.DeepCopy()
	got := Backward(hostPod, tenant, "10.96.0.10")

	if diff := cmp.Diff(before, tenant); diff != "" {
		t.Errorf("Backward mutated the tenant pod:\n%s", diff)
	}
	want := before.Status.DeepCopy()
	want.Phase = corev1.PodRunning
	want.Conditions = hostPod.Status.Conditions
	want.PodIP, want.PodIPs, want.StartTime = "10.244.1.5", hostPod.Status.PodIPs, &started
	want.ContainerStatuses = hostPod.Status.ContainerStatuses
	want.HostIP, want.HostIPs = "10.96.0.10", []corev1.HostIP{{IP: "10.96.0.10"}}
	if diff := cmp.Diff(*want, got.Status); diff != "" {
		t.Errorf("status (-want +got): host node addresses and nominations must not reach the tenant, the QoS class stays the tenant's:\n%s", diff)
	}
	if diff := cmp.Diff(before.Spec, got.Spec); diff != "" {
		t.Errorf("Backward must only change status:\n%s", diff)
	}
	// No ping-pong: forwarding the result changes nothing on the host pod.
	if diff := cmp.Diff(hostPod, Forward(got, hostPod, meta, Env{})); diff != "" {
		t.Errorf("Forward after Backward changed the host pod:\n%s", diff)
	}
	if diff := cmp.Diff(got, Backward(hostPod, got, "10.96.0.10")); diff != "" {
		t.Errorf("Backward is not stable:\n%s", diff)
	}
}

// The tenant's PodScheduled condition, set by its binding, stays when the
// host's says the same, so a bound pod that the host has only scheduled
// needs no status write; a host condition that says otherwise replaces it.
func TestBackwardKeepsTheTenantsScheduledCondition(t *testing.T) {
	t.Parallel()
	tenantBound := metav1.NewTime(time.Date(2026, 11, 27, 1, 0, 1, 0, time.UTC))
	hostScheduled := metav1.NewTime(time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC))
	tenant := tenantPod()
	tenant.Spec.NodeName = "knest-node-abc"
	tenant.Status.Phase = corev1.PodPending
	tenant.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: tenantBound}}
	hostPod := Forward(tenant, nil, meta, Env{})
	hostPod.Status = corev1.PodStatus{Phase: corev1.PodPending,
		Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: hostScheduled}}}

	if got := Backward(hostPod, tenant, "10.96.0.10"); !cmp.Equal(got.Status, tenant.Status) {
		t.Errorf("a host pod that is only scheduled changed the bound tenant pod's status:\n%s", cmp.Diff(tenant.Status, got.Status))
	}

	// Running: the host's other conditions come, PodScheduled stays the
	// tenant's.
	hostPod.Status.Phase = corev1.PodRunning
	hostPod.Status.Conditions = append(hostPod.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: hostScheduled})
	got := Backward(hostPod, tenant, "10.96.0.10")
	want := []corev1.PodCondition{tenant.Status.Conditions[0], hostPod.Status.Conditions[1]}
	if diff := cmp.Diff(want, got.Status.Conditions); diff != "" || got.Status.Phase != corev1.PodRunning {
		t.Errorf("a running host pod gave phase %s and conditions (-want +got):\n%s", got.Status.Phase, diff)
	}

	// A host condition that differs replaces the tenant's.
	unschedulable := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: "0/3 nodes are available", LastTransitionTime: hostScheduled}
	hostPod.Status.Conditions = []corev1.PodCondition{unschedulable}
	if got := Backward(hostPod, tenant, "10.96.0.10"); !cmp.Equal(got.Status.Conditions, []corev1.PodCondition{unschedulable}) {
		t.Errorf("conditions %v, want the host's %v", got.Status.Conditions, unschedulable)
	}
	if !cmp.Equal(tenant.Status.Conditions[0].LastTransitionTime, tenantBound) {
		t.Error("Backward mutated the tenant pod")
	}
}
