package tenant

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/knest-dev/knest/pkg/encryption"
)

// EncodeKey is how a key is stored in its Secret: the format of knestd's
// --encryption-key-file (base64 on one line), so the Secret can also be
// mounted as that file.
func EncodeKey(key []byte) []byte {
	return []byte(base64.StdEncoding.EncodeToString(key) + "\n")
}

// EnsureEncryptionKey returns the tenant's secrets-encryption key from its
// host Secret name (EncryptionKeySecretName in the chart). When the Secret does not exist it stores the key newKey
// returns: a fresh one for a new tenant. newKey may refuse instead (a data
// volume whose key is lost must not get a new one: its Secrets would be
// unreadable). Two starts racing agree on the first key stored; a stored
// key is never replaced.
func EnsureEncryptionKey(ctx context.Context, c kubernetes.Interface, namespace, name, tenant string, newKey func() ([]byte, error)) ([]byte, error) {
	s, err := ensureKeySecret(ctx, c, namespace, name, tenant, EncryptionKeySecretKey, newKey)
	if err != nil {
		return nil, fmt.Errorf("failed to get or create the encryption key Secret %s/%s in host cluster: %w", namespace, name, err)
	}
	key, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(s.Data[EncryptionKeySecretKey])))
	if err != nil || len(key) != encryption.KeySize {
		return nil, fmt.Errorf("host Secret %s/%s is corrupt: %q must hold a base64 %d-byte key", namespace, name, EncryptionKeySecretKey, encryption.KeySize)
	}
	return key, nil
}

// ensureKeySecret returns host Secret name, creating it with the key newKey
// returns, base64 under dataKey, when it does not exist. Two starts racing
// agree on the first key stored; a stored Secret is never replaced.
func ensureKeySecret(ctx context.Context, c kubernetes.Interface, namespace, name, tenant, dataKey string, newKey func() ([]byte, error)) (*corev1.Secret, error) {
	secrets := c.CoreV1().Secrets(namespace)
	s, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		return s, err
	}
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	s, err = secrets.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: ControlPlaneLabels(tenant)},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{dataKey: EncodeKey(key)},
	}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return secrets.Get(ctx, name, metav1.GetOptions{})
	}
	return s, err
}

// PublishKubeconfig stores the tenant's admin kubeconfig in host Secret name
// (KubeconfigSecretName in the chart), creating or updating it.
func PublishKubeconfig(ctx context.Context, c kubernetes.Interface, namespace, name, tenant string, kubeconfig []byte) error {
	secrets := c.CoreV1().Secrets(namespace)
	want := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: ControlPlaneLabels(tenant)},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{KubeconfigSecretKey: kubeconfig},
	}
	_, err := secrets.Create(ctx, want, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		var have *corev1.Secret
		if have, err = secrets.Get(ctx, name, metav1.GetOptions{}); err == nil && !bytes.Equal(have.Data[KubeconfigSecretKey], kubeconfig) {
			have = have.DeepCopy()
			have.Data = want.Data
			_, err = secrets.Update(ctx, have, metav1.UpdateOptions{})
		}
	}
	if err != nil {
		return fmt.Errorf("failed to publish the admin kubeconfig in Secret %s/%s in host cluster: %w", namespace, name, err)
	}
	return nil
}

// ErrNotPublished means knestd has not published the admin kubeconfig (yet).
var ErrNotPublished = errors.New("the tenant's admin kubeconfig is not published yet")

// Kubeconfig reads the admin kubeconfig knestd published.
func Kubeconfig(ctx context.Context, c kubernetes.Interface, namespace string) ([]byte, error) {
	s, err := c.CoreV1().Secrets(namespace).Get(ctx, KubeconfigSecretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, ErrNotPublished
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read Secret %s/%s in host cluster: %w", namespace, KubeconfigSecretName, err)
	}
	data := s.Data[KubeconfigSecretKey]
	if len(data) == 0 {
		return nil, ErrNotPublished
	}
	return data, nil
}
