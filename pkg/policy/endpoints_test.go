package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestPodAddresses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status corev1.PodStatus
		want   []string
	}{
		{name: "a running pod's IPs", status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1", PodIPs: []corev1.PodIP{{IP: "10.0.0.1"}, {IP: "fd00::1"}}},
			want: []string{"10.0.0.1", "fd00::1"}},
		{name: "podIP alone, as older writers set it", status: corev1.PodStatus{Phase: corev1.PodPending, PodIP: "10.0.0.1"}, want: []string{"10.0.0.1"}},
		{name: "no IP yet", status: corev1.PodStatus{Phase: corev1.PodPending}},
		{name: "a succeeded pod's IP is released", status: corev1.PodStatus{Phase: corev1.PodSucceeded, PodIP: "10.0.0.1", PodIPs: []corev1.PodIP{{IP: "10.0.0.1"}}}},
		{name: "a failed pod's IP is released", status: corev1.PodStatus{Phase: corev1.PodFailed, PodIP: "10.0.0.1", PodIPs: []corev1.PodIP{{IP: "10.0.0.1"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := PodAddresses(&corev1.Pod{Status: tt.status}); !slices.Equal(got, tt.want) {
				t.Errorf("PodAddresses = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCheckEndpointAddresses(t *testing.T) {
	t.Parallel()
	path := field.NewPath("endpoints")
	owns := func(addr string) (bool, error) {
		if addr == "10.0.0.9" {
			return false, errors.New("lookup failed")
		}
		return addr == "10.0.0.1", nil
	}
	errs := CheckEndpointAddresses([]EndpointAddress{
		{Path: path.Index(0), Address: "10.0.0.1"},
		{Path: path.Index(1), Address: "192.168.0.1"},
		{Path: path.Index(2), Address: "10.0.0.9"},
	}, owns)
	if len(errs) != 2 {
		t.Fatalf("got %d errors, want 2: %v", len(errs), errs)
	}
	if errs[0].Field != "endpoints[1]" || errs[0].Type != field.ErrorTypeInvalid || !strings.Contains(errs[0].Detail, "the cluster's own pods") {
		t.Errorf("foreign address: %v", errs[0])
	}
	if errs[1].Field != "endpoints[2]" || errs[1].Type != field.ErrorTypeInternal {
		t.Errorf("failed lookup: %v", errs[1])
	}
}
