package pods

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestEphemeralContainers(t *testing.T) {
	t.Parallel()
	tenant := tenantPod()
	hostPod := Forward(tenant, nil, meta, Env{})
	if got := EphemeralContainers(tenant, hostPod, meta); got != nil {
		t.Errorf("no ephemeral containers to add, got %+v", got.Spec.EphemeralContainers)
	}
	tenant.Spec.EphemeralContainers = []corev1.EphemeralContainer{{
		EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: "busybox",
			EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}}}}},
		TargetContainerName: "api",
	}}
	before := hostPod.DeepCopy()
	got := EphemeralContainers(tenant, hostPod, meta)
	if diff := cmp.Diff(before, hostPod); diff != "" {
		t.Errorf("EphemeralContainers mutated the host pod:\n%s", diff)
	}
	if got == nil || len(got.Spec.EphemeralContainers) != 1 {
		t.Fatalf("the debug container must be added: %+v", got)
	}
	ec := got.Spec.EphemeralContainers[0]
	if ec.TargetContainerName != "api" || ec.EnvFrom[0].SecretRef.Name != host("db") {
		t.Errorf("ephemeral container not translated: %+v", ec)
	}
	if again := EphemeralContainers(tenant, got, meta); again != nil {
		t.Errorf("an added ephemeral container is added again")
	}
}

func TestResize(t *testing.T) {
	t.Parallel()
	tenant := tenantPod()
	hostPod := Forward(tenant, nil, meta, Env{})
	// The host's LimitRange defaulted a limit the tenant never set.
	hostPod.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")}
	if got := Resize(tenant, hostPod); got != nil {
		t.Errorf("nothing the tenant set differs, got a resize to %+v", got.Spec.Containers[0].Resources)
	}
	tenant.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}
	got := Resize(tenant, hostPod)
	if got == nil {
		t.Fatal("a changed request must resize the host pod")
	}
	want := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
	}
	if diff := cmp.Diff(want, got.Spec.Containers[0].Resources); diff != "" {
		t.Errorf("resources (-want +got): the host's defaults stay, the tenant's values win:\n%s", diff)
	}
	if Resize(tenant, got) != nil {
		t.Errorf("Resize is not stable")
	}
}
