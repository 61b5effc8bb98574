package secrets

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
	Name: "db-x-web-x-acme", Namespace: "knest-acme",
	Labels:      map[string]string{translate.LabelTenant: "acme"},
	Annotations: map[string]string{translate.AnnotationName: "db", translate.AnnotationKind: "Secret"},
}

func TestForward(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		secret   *corev1.Secret
		host     *corev1.Secret
		wantType corev1.SecretType
	}{
		{name: "an Opaque secret stays Opaque", secret: &corev1.Secret{Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"pw": []byte("x")}}, wantType: corev1.SecretTypeOpaque},
		{name: "an untyped secret becomes Opaque", secret: &corev1.Secret{Data: map[string][]byte{"pw": []byte("x")}}, wantType: corev1.SecretTypeOpaque},
		{name: "a TLS secret keeps its type", secret: &corev1.Secret{Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": []byte("c"), "tls.key": []byte("k")}}, wantType: corev1.SecretTypeTLS},
		{
			name: "a service-account-token secret becomes Opaque, so the host token controller never fills it",
			secret: &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{corev1.ServiceAccountNameKey: "knestd"}},
				Type:       corev1.SecretTypeServiceAccountToken,
			},
			wantType: corev1.SecretTypeOpaque,
		},
		{
			name:     "an existing copy is brought back to the tenant's data",
			secret:   &corev1.Secret{Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"pw": []byte("x")}, Immutable: ptr.To(false)},
			host:     &corev1.Secret{ObjectMeta: metav1.ObjectMeta{UID: "h", ResourceVersion: "3"}, Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"pw": []byte("edited"), "extra": []byte("1")}},
			wantType: corev1.SecretTypeOpaque,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := forwardtest.Forward(t, tc.secret, tc.host, func(s, host *corev1.Secret) *corev1.Secret { return Forward(s, host, meta) })
			if got.Type != tc.wantType {
				t.Errorf("type = %q, want %q", got.Type, tc.wantType)
			}
			if diff := cmp.Diff(tc.secret.Data, got.Data); diff != "" {
				t.Errorf("data (-tenant +host):\n%s", diff)
			}
			if _, ok := got.Annotations[corev1.ServiceAccountNameKey]; ok {
				t.Errorf("tenant annotations must not reach the host: %v", got.Annotations)
			}
			if diff := cmp.Diff(meta.Labels, got.Labels); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
			if tc.host != nil && (got.UID != tc.host.UID || got.ResourceVersion != tc.host.ResourceVersion) {
				t.Errorf("host-owned metadata was not kept")
			}
		})
	}
}

func TestRecreate(t *testing.T) {
	t.Parallel()
	opaque := &corev1.Secret{Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"a": []byte("1")}}
	tests := []struct {
		name          string
		desired, host *corev1.Secret
		want          bool
	}{
		{name: "same type, mutable: in place", desired: opaque, host: &corev1.Secret{Type: corev1.SecretTypeOpaque}, want: false},
		{name: "a type change needs a new object", desired: opaque, host: &corev1.Secret{Type: corev1.SecretTypeTLS}, want: true},
		{name: "an immutable copy with other data needs a new object", desired: opaque, host: &corev1.Secret{Type: corev1.SecretTypeOpaque, Immutable: ptr.To(true)}, want: true},
		{name: "an immutable copy with the same data stays", desired: opaque, host: &corev1.Secret{Type: corev1.SecretTypeOpaque, Immutable: ptr.To(true), Data: map[string][]byte{"a": []byte("1")}}, want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Recreate(tc.desired, tc.host); got != tc.want {
				t.Errorf("Recreate = %v, want %v", got, tc.want)
			}
		})
	}
}
