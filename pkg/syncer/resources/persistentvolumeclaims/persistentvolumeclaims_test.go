package persistentvolumeclaims

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/syncer/resources/internal/forwardtest"
	"github.com/knest-dev/knest/pkg/translate"
)

var meta = translate.Meta{
	Name: "data-db-0-x-shop-x-acme", Namespace: "knest-acme",
	Labels:      map[string]string{translate.LabelTenant: "acme"},
	Annotations: map[string]string{translate.AnnotationName: "data-db-0"},
	Tenant:      "acme", TenantNamespace: "shop",
}

// pol allows the class the claims name.
var pol = func() *policy.Policy {
	p := policy.Default(policy.ProfileHard)
	p.Storage = policy.Storage{Classes: []string{"fast", "standard"}, Default: "standard"}
	return p
}()

func TestForwardGivesAClaimWithoutAClassThePolicysDefault(t *testing.T) {
	t.Parallel()
	c := claim("1Gi")
	c.Spec.StorageClassName = nil
	if got := Forward(c, nil, meta, pol).Spec.StorageClassName; got == nil || *got != "standard" {
		t.Errorf("storage class = %v, want the policy's default", got)
	}
}

func claim(size string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data-db-0", Namespace: "shop", UID: "u1"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
			StorageClassName: ptr.To("fast"),
			VolumeName:       "pv-of-another-tenant",
			Selector:         &metav1.LabelSelector{MatchLabels: map[string]string{"disk": "x"}},
			DataSource:       &corev1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: "other"},
		},
	}
}

func TestForward(t *testing.T) {
	t.Parallel()
	got := forwardtest.Forward(t, claim("1Gi"), nil, func(c, h *corev1.PersistentVolumeClaim) *corev1.PersistentVolumeClaim {
		return Forward(c, h, meta, pol)
	})
	want := corev1.PersistentVolumeClaimSpec{
		AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		StorageClassName: ptr.To("fast"),
	}
	if diff := cmp.Diff(want, got.Spec); diff != "" {
		t.Errorf("a new host claim never names a volume, selector or data source (-want +got):\n%s", diff)
	}

	existing := got.DeepCopy()
	existing.Spec.VolumeName = "pvc-123"
	grown := forwardtest.Forward(t, claim("5Gi"), existing, func(c, h *corev1.PersistentVolumeClaim) *corev1.PersistentVolumeClaim {
		return Forward(c, h, meta, pol)
	})
	wantGrown := existing.DeepCopy()
	wantGrown.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("5Gi")
	if diff := cmp.Diff(wantGrown, grown); diff != "" {
		t.Errorf("an existing claim only follows the requested size (-want +got):\n%s", diff)
	}
}

func TestBackward(t *testing.T) {
	t.Parallel()
	host := Forward(claim("1Gi"), nil, meta, pol)
	host.Spec.VolumeName = "pvc-123"
	host.Status = corev1.PersistentVolumeClaimStatus{
		Phase:       corev1.ClaimBound,
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Capacity:    corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
	}
	tenant := claim("1Gi")
	got := Backward(host, tenant)
	if diff := cmp.Diff(host.Status, got.Status); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(tenant.Spec, got.Spec); diff != "" {
		t.Errorf("Backward changed the tenant spec:\n%s", diff)
	}
	if diff := cmp.Diff(host, Forward(got, host, meta, pol)); diff != "" {
		t.Errorf("Forward after Backward changed the host claim (ping-pong):\n%s", diff)
	}
}
