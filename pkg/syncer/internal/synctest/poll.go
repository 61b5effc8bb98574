package synctest

import (
	"context"
	"testing"
	"time"

	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// EventuallyWithin polls cond every 50 ms for up to timeout, failing the
// test with what if it never holds.
func EventuallyWithin(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, timeout, true, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Exists reports whether c has obj's key, reading it into obj.
func Exists(ctx context.Context, c client.Client, obj client.Object) (bool, error) {
	err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj)
	if kerrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// Create creates obj with c, failing the test if it cannot.
func Create(t *testing.T, c client.Client, obj client.Object) {
	t.Helper()
	if err := c.Create(t.Context(), obj); err != nil {
		t.Fatalf("failed to create %T %s: %v", obj, client.ObjectKeyFromObject(obj), err)
	}
}
