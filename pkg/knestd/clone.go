package knestd

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// cloneSource is the tenant the data dir's last restore cloned, "" when it
// was no clone.
func cloneSource(dataDir string) string {
	var rec RestoreRecord
	data, err := os.ReadFile(filepath.Join(dataDir, lastRestoreName))
	if err != nil || json.Unmarshal(data, &rec) != nil {
		return ""
	}
	return rec.CloneOf
}

// reallocateClonedServices gives a clone's Services addresses of its own,
// before its syncer starts. Tenant Services carry host ClusterIPs (and node
// ports), which in a clone's data are still allocated to the source's host
// Services: the clone's host copies could not be created, and its
// default/kubernetes Service would point at the source's API server. Each
// Service with a ClusterIP is deleted and created again without its
// addresses (default/kubernetes is deleted only: the API server recreates
// it with this tenant's address).
func reallocateClonedServices(ctx context.Context, client kubernetes.Interface, source string) error {
	logger := klog.FromContext(ctx)
	list, err := client.CoreV1().Services(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("failed to list the cloned Services: %w", err)
	}
	n := 0
	for i := range list.Items {
		svc := &list.Items[i]
		if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
			continue
		}
		err := client.CoreV1().Services(svc.Namespace).Delete(ctx, svc.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &svc.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("failed to re-address cloned Service %s/%s: %w", svc.Namespace, svc.Name, err)
		}
		n++
		if svc.Namespace == metav1.NamespaceDefault && svc.Name == "kubernetes" {
			continue
		}
		fresh := &corev1.Service{ObjectMeta: metav1.ObjectMeta{
			Name: svc.Name, Namespace: svc.Namespace, Labels: svc.Labels, Annotations: svc.Annotations,
			OwnerReferences: svc.OwnerReferences, Finalizers: svc.Finalizers,
		}, Spec: *svc.Spec.DeepCopy()}
		fresh.Spec.ClusterIP, fresh.Spec.ClusterIPs, fresh.Spec.HealthCheckNodePort = "", nil, 0
		for j := range fresh.Spec.Ports {
			fresh.Spec.Ports[j].NodePort = 0
		}
		if _, err := client.CoreV1().Services(svc.Namespace).Create(ctx, fresh, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("failed to re-create cloned Service %s/%s with an address of its own: %w", svc.Namespace, svc.Name, err)
		}
	}
	logger.Info("Gave the cloned Services addresses of their own", "cloneOf", source, "services", n)
	return nil
}
