package configmaps

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/pkg/syncer/resources/internal/forwardtest"
	"github.com/knest-dev/knest/pkg/translate"
)

var meta = translate.Meta{
	Name: "cfg-x-web-x-acme", Namespace: "knest-acme",
	Labels:      map[string]string{translate.LabelTenant: "acme", "app": "web"},
	Annotations: map[string]string{translate.AnnotationName: "cfg", translate.AnnotationKind: "ConfigMap"},
}

func tenantCM(tweak func(*corev1.ConfigMap)) *corev1.ConfigMap {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "web", UID: "u1", Labels: map[string]string{"app": "web"}, Annotations: map[string]string{"note": "tenant only"}},
		Data:       map[string]string{"a": "1"},
		BinaryData: map[string][]byte{"b": {0, 1}},
	}
	if tweak != nil {
		tweak(cm)
	}
	return cm
}

func TestForward(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cm   *corev1.ConfigMap
		host *corev1.ConfigMap
		want *corev1.ConfigMap
	}{
		{
			name: "a new copy carries data and owned metadata, not tenant annotations",
			cm:   tenantCM(nil),
			want: &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: meta.Name, Namespace: meta.Namespace, Labels: meta.Labels, Annotations: meta.Annotations},
				Data:       map[string]string{"a": "1"}, BinaryData: map[string][]byte{"b": {0, 1}},
			},
		},
		{
			name: "an existing copy keeps host-owned fields and loses edits to owned ones",
			cm:   tenantCM(func(cm *corev1.ConfigMap) { cm.Immutable = ptr.To(true) }),
			host: &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: meta.Name, Namespace: meta.Namespace, UID: "host-uid", ResourceVersion: "7",
					Labels: map[string]string{"added": "by hand"}, Annotations: map[string]string{"host.example/x": "y"}},
				Data: map[string]string{"a": "edited"},
			},
			want: &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: meta.Name, Namespace: meta.Namespace, UID: "host-uid", ResourceVersion: "7",
					Labels:      meta.Labels,
					Annotations: map[string]string{"host.example/x": "y", translate.AnnotationName: "cfg", translate.AnnotationKind: "ConfigMap"}},
				Data: map[string]string{"a": "1"}, BinaryData: map[string][]byte{"b": {0, 1}}, Immutable: ptr.To(true),
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := forwardtest.Forward(t, tc.cm, tc.host, func(cm, host *corev1.ConfigMap) *corev1.ConfigMap { return Forward(cm, host, meta) })
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Forward (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRecreate(t *testing.T) {
	t.Parallel()
	if Recreate(&corev1.ConfigMap{}, &corev1.ConfigMap{}) {
		t.Errorf("a mutable copy can change in place")
	}
	if !Recreate(&corev1.ConfigMap{Data: map[string]string{"a": "2"}}, &corev1.ConfigMap{Immutable: ptr.To(true), Data: map[string]string{"a": "1"}}) {
		t.Errorf("an immutable copy with other data must be recreated")
	}
	if Recreate(&corev1.ConfigMap{Data: map[string]string{"a": "1"}}, &corev1.ConfigMap{Immutable: ptr.To(true), Data: map[string]string{"a": "1"}}) {
		t.Errorf("an immutable copy with the same data changes its metadata in place")
	}
}
