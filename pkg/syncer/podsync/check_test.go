package podsync

import (
	"maps"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/syncer/internal/synctest"
)

func TestCheckHostRunsPods(t *testing.T) {
	t.Parallel()
	e := synctest.New(t, &clusters, synctest.Options{})
	host, err := kubernetes.NewForConfig(e.HostConfig)
	if err != nil {
		t.Fatal(err)
	}
	// A namespace without the host ServiceAccount, and one whose quota is
	// full.
	bare, full := "bare-"+e.Tenant, "full-"+e.Tenant
	for _, ns := range []string{bare, full} {
		if _, err := host.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := host.CoreV1().ServiceAccounts(full).Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "knest-workload"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	q, err := host.CoreV1().ResourceQuotas(full).Create(t.Context(), &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "none"},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("0")}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Quota admission enforces once the quota controller has filled the
	// status; there is none here, so the test does.
	q.Status = corev1.ResourceQuotaStatus{Hard: q.Spec.Hard, Used: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("0")}}
	if _, err := host.CoreV1().ResourceQuotas(full).UpdateStatus(t.Context(), q, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Make sure the quota refuses pods, or the row below proves nothing.
	probe := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "probe"}, Spec: corev1.PodSpec{
		ServiceAccountName: "knest-workload", Containers: []corev1.Container{{Name: "c", Image: "c"}}}}
	if _, err := host.CoreV1().Pods(full).Create(t.Context(), probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err == nil || !strings.Contains(err.Error(), "exceeded quota") {
		t.Fatalf("a pod in the full namespace was not refused for its quota: %v", err)
	}

	tests := []struct {
		name      string
		namespace string
		profile   policy.Profile
		want      string
		// wantPool: the check ran and returns the admitted pod's pool.
		wantPool bool
	}{
		{name: "a host that runs the soft profile's pods passes", namespace: e.HostNamespace, profile: policy.ProfileSoft, wantPool: true},
		{name: "a host without the hard profile's RuntimeClass fails, naming it", namespace: e.HostNamespace, profile: policy.ProfileHard, want: `RuntimeClass "kata"`},
		{name: "a namespace where pods cannot be created fails, naming it", namespace: bare, profile: policy.ProfileSoft, want: "in namespace " + bare},
		{name: "a full quota says nothing about the host: it passes", namespace: full, profile: policy.ProfileSoft},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pol := policy.Default(tt.profile)
			pool, err := CheckHostRunsPods(t.Context(), host, tt.namespace, pol)
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("CheckHostRunsPods = %v, want an error mentioning %q: %t", err, tt.want, tt.want != "")
			}
			if (pool != nil) != tt.wantPool {
				t.Errorf("CheckHostRunsPods pool = %+v, want one: %t", pool, tt.wantPool)
			}
			if pool != nil && !maps.Equal(pool.NodeSelector, HostPool(t.Context(), host, tt.namespace, pol).NodeSelector) {
				t.Errorf("CheckHostRunsPods pool = %+v, want HostPool's", pool)
			}
		})
	}
}
