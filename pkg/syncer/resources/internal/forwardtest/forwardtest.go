// Package forwardtest holds the checks every kind's Forward must pass:
// pure (its inputs are not modified) and stable (applied to its own output
// it changes nothing, so a synced pair never causes another write).
package forwardtest

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Object is a generated API type: a pointer with a nil-safe DeepCopy.
type Object[T any] interface {
	DeepCopy() T
}

// Forward calls forward(tenant, host), fails t if either input changed or
// if forwarding onto the result changes it again, and returns the result.
func Forward[T Object[T]](t *testing.T, tenant, host T, forward func(tenant, host T) T) T {
	t.Helper()
	tenantBefore, hostBefore := tenant.DeepCopy(), host.DeepCopy()
	got := forward(tenant, host)
	if diff := cmp.Diff(tenantBefore, tenant); diff != "" {
		t.Errorf("Forward mutated the tenant object (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(hostBefore, host); diff != "" {
		t.Errorf("Forward mutated the host object (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(got, forward(tenant, got)); diff != "" {
		t.Errorf("Forward is not stable on its own output (-first +second):\n%s", diff)
	}
	return got
}
