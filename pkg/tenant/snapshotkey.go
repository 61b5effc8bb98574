package tenant

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// SnapshotKeySecretName holds the key that seals the tenant's snapshots
// (base64, under SnapshotKeySecretKey), in the tenant's host namespace,
// which the tenant never reads: the chart's --snapshot-key-secret. knestd
// creates it at its first start.
const (
	SnapshotKeySecretName = "knestd-snapshot-key"
	SnapshotKeySecretKey  = "key"
	snapshotKeySize       = 32
	// CloneKeySecretName holds, in a new tenant's host namespace, the
	// snapshot key of the tenant it is cloned from, while `knest create
	// --from-snapshot` clones it (then it is deleted).
	CloneKeySecretName = "knestd-clone-key"
)

// EnsureSnapshotKey returns the tenant's snapshot key from host Secret
// name, storing the key newKey returns when the Secret does not exist. Two
// starts racing agree on the first key stored; a stored key is never
// replaced, and a corrupt one is refused, not overwritten (snapshots
// sealed with it would no longer open).
func EnsureSnapshotKey(ctx context.Context, c kubernetes.Interface, namespace, name, tenant string, newKey func() ([]byte, error)) ([]byte, error) {
	s, err := ensureKeySecret(ctx, c, namespace, name, tenant, SnapshotKeySecretKey, newKey)
	if err != nil {
		return nil, fmt.Errorf("failed to get or create the snapshot key Secret %s/%s in host cluster: %w", namespace, name, err)
	}
	return decodeSnapshotKey(s)
}

// SnapshotKey reads the snapshot key in host Secret namespace/name.
func SnapshotKey(ctx context.Context, c kubernetes.Interface, namespace, name string) ([]byte, error) {
	s, err := c.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("failed to read the snapshot key Secret %s/%s in host cluster: %w", namespace, name, err)
	}
	return decodeSnapshotKey(s)
}

func decodeSnapshotKey(s *corev1.Secret) ([]byte, error) {
	namespace, name := s.Namespace, s.Name
	key, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(s.Data[SnapshotKeySecretKey])))
	if err != nil || len(key) != snapshotKeySize {
		return nil, fmt.Errorf("host Secret %s/%s is corrupt: %q must hold a base64 %d-byte key", namespace, name, SnapshotKeySecretKey, snapshotKeySize)
	}
	return key, nil
}
