package events

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/knest-dev/knest/pkg/translate"
)

func TestBackward(t *testing.T) {
	t.Parallel()
	t0 := metav1.NewTime(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	host := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "web-x-shop-x-acme.1", Namespace: "knest-acme", UID: "host-ev-1"},
		InvolvedObject: corev1.ObjectReference{Kind: "Service", Namespace: "knest-acme", Name: "web-x-shop-x-acme"},
		Type:           corev1.EventTypeWarning, Reason: "FailedToUpdateEndpoint", Message: "boom", Count: 3,
		FirstTimestamp: t0, LastTimestamp: t0, Source: corev1.EventSource{Component: "endpoint-controller", Host: "host-node-7"},
	}
	obj := translate.Object{Kind: "Service", Namespace: "shop", Name: "web", UID: "tenant-uid"}
	before := host.DeepCopy()
	got := Backward(host, obj, "v1", nil, strings.NewReplacer())
	want := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: TenantEventName("web", host), Namespace: "shop"},
		InvolvedObject: corev1.ObjectReference{Kind: "Service", APIVersion: "v1", Namespace: "shop", Name: "web", UID: "tenant-uid"},
		Type:           corev1.EventTypeWarning, Reason: "FailedToUpdateEndpoint", Message: "boom", Count: 3,
		FirstTimestamp: t0, LastTimestamp: t0, Source: corev1.EventSource{Component: SourceComponent},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Backward (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, host); diff != "" {
		t.Errorf("Backward mutated the host Event:\n%s", diff)
	}
	// Stable: applied to its own output it changes nothing.
	if diff := cmp.Diff(got, Backward(host, obj, "v1", got, strings.NewReplacer())); diff != "" {
		t.Errorf("Backward is not stable:\n%s", diff)
	}
	if TenantEventName("web", host) == TenantEventName("web", &corev1.Event{ObjectMeta: metav1.ObjectMeta{UID: "host-ev-2"}}) {
		t.Errorf("two host Events map to one tenant Event")
	}
}

func TestBackwardScrubsHostNames(t *testing.T) {
	t.Parallel()
	host := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "api-x-shop-x-acme.2", Namespace: "knest-acme", UID: "host-ev-3"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "knest-acme", Name: "api-x-shop-x-acme"},
		Type:           corev1.EventTypeNormal, Reason: "Scheduled",
		Message: "Successfully assigned knest-acme/api-x-shop-x-acme to ip-10-0-3-7.internal",
	}
	scrub := strings.NewReplacer("knest-acme/api-x-shop-x-acme", "shop/api", "api-x-shop-x-acme", "api", "ip-10-0-3-7.internal", "knest-node-abc")
	got := Backward(host, translate.Object{Kind: "Pod", Namespace: "shop", Name: "api", UID: "u"}, "v1", nil, scrub)
	if want := "Successfully assigned shop/api to knest-node-abc"; got.Message != want {
		t.Errorf("message = %q, want %q: host namespace, pod and node names must not reach the tenant", got.Message, want)
	}
}
