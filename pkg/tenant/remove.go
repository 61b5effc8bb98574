package tenant

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"k8s.io/utils/ptr"
)

// Remover removes what a tenant leaves in its host namespace besides its
// Helm release.
type Remover struct {
	Client    kubernetes.Interface
	Dynamic   dynamic.Interface
	Discovery discovery.DiscoveryInterface
	// Progress gets a line per step; nil means none.
	Progress func(string)
}

// Remove deletes, in every namespaced resource type the host serves, the
// objects labelled as the tenant's control plane (its data volume, its
// encryption key, its published kubeconfig) or as synced by its knestd
// (pods, Secrets, Services, claims, ...), waits until they are gone, and
// then deletes the Events about objects that no longer exist: the
// namespace held only this tenant, so they are its history. Run it once
// knestd is stopped, or it would restore what it syncs.
func (r Remover) Remove(ctx context.Context, namespace, tenant string) error {
	progress := r.Progress
	if progress == nil {
		progress = func(string) {}
	}
	resources, err := r.namespacedResources()
	if err != nil {
		return err
	}
	deleted := map[string]int{}
	for _, res := range resources {
		for _, sel := range OwnedSelectors(tenant) {
			list, err := r.Dynamic.Resource(res).Namespace(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
			if apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
				continue
			}
			if err != nil {
				return fmt.Errorf("failed to list %s in namespace %s of host cluster: %w", res.Resource, namespace, err)
			}
			for _, item := range list.Items {
				// Foreground: an object stays until the garbage collector
				// has removed its dependents (a Service's EndpointSlices),
				// so waiting for it covers them.
				err := r.Dynamic.Resource(res).Namespace(namespace).Delete(ctx, item.GetName(), metav1.DeleteOptions{
					Preconditions:     &metav1.Preconditions{UID: ptr.To(item.GetUID())},
					PropagationPolicy: ptr.To(metav1.DeletePropagationForeground),
				})
				if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
					return fmt.Errorf("failed to delete %s %s/%s in host cluster: %w", res.Resource, namespace, item.GetName(), err)
				}
				deleted[res.GroupResource().String()]++
			}
		}
	}
	if len(deleted) > 0 {
		progress("Deleted " + summary(deleted) + "; waiting until they are gone")
	}
	err = wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		for _, res := range resources {
			if deleted[res.GroupResource().String()] == 0 {
				continue
			}
			for _, sel := range OwnedSelectors(tenant) {
				list, err := r.Dynamic.Resource(res).Namespace(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel, Limit: 1})
				if err == nil && len(list.Items) > 0 {
					return false, nil
				}
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("the tenant's objects in namespace %s are not gone: %w", namespace, err)
	}
	n, err := r.removeOrphanedEvents(ctx, namespace)
	if err != nil {
		return err
	}
	if n > 0 {
		progress(fmt.Sprintf("Deleted %d events about objects that are gone", n))
	}
	return nil
}

// namespacedResources lists the namespaced resource types that can be
// listed and deleted, Events aside (removeOrphanedEvents handles them).
func (r Remover) namespacedResources() ([]schema.GroupVersionResource, error) {
	lists, err := discovery.ServerPreferredNamespacedResources(r.Discovery)
	// An aggregated API that is down must not stop the clean-up of the
	// others; its objects, if any, stay and the final check names them.
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		return nil, fmt.Errorf("failed to discover the host's resource types: %w", err)
	}
	var out []schema.GroupVersionResource
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, res := range l.APIResources {
			if strings.Contains(res.Name, "/") || !slices.Contains(res.Verbs, "list") || !slices.Contains(res.Verbs, "delete") {
				continue
			}
			if res.Name == "events" {
				continue
			}
			out = append(out, gv.WithResource(res.Name))
		}
	}
	return out, nil
}

// removeOrphanedEvents deletes the Events of the namespace whose object no
// longer exists (or is another object of the same name).
func (r Remover) removeOrphanedEvents(ctx context.Context, namespace string) (int, error) {
	events, err := r.Client.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, fmt.Errorf("failed to list events in namespace %s of host cluster: %w", namespace, err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(r.Discovery))
	exists := map[types.UID]bool{}
	n := 0
	for _, ev := range events.Items {
		obj := ev.InvolvedObject
		if obj.Namespace != namespace || obj.Name == "" {
			continue
		}
		gone, err := r.gone(ctx, mapper, exists, obj)
		if err != nil || !gone {
			continue
		}
		err = r.Client.CoreV1().Events(namespace).Delete(ctx, ev.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return n, fmt.Errorf("failed to delete event %s/%s in host cluster: %w", namespace, ev.Name, err)
		}
		n++
	}
	return n, nil
}

// gone reports whether the object an event is about no longer exists.
// Kinds the host does not serve any more count as gone.
func (r Remover) gone(ctx context.Context, mapper meta.RESTMapper, exists map[types.UID]bool, obj corev1.ObjectReference) (bool, error) {
	if obj.UID != "" {
		if e, ok := exists[obj.UID]; ok {
			return !e, nil
		}
	}
	gv, err := schema.ParseGroupVersion(obj.APIVersion)
	if err != nil {
		return false, err
	}
	mapping, err := mapper.RESTMapping(gv.WithKind(obj.Kind).GroupKind(), gv.Version)
	if meta.IsNoMatchError(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	got, err := r.Dynamic.Resource(mapping.Resource).Namespace(obj.Namespace).Get(ctx, obj.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		exists[obj.UID] = false
		return true, nil
	case err != nil:
		return false, err
	}
	e := obj.UID == "" || got.GetUID() == obj.UID
	exists[obj.UID] = e
	return !e, nil
}

// Leftovers lists, as "resource/name", every object of the namespace but
// those Kubernetes puts in every namespace (the kube-root-ca.crt ConfigMap
// and the default ServiceAccount). After `knest delete` of the namespace's
// only tenant there must be none.
func Leftovers(ctx context.Context, dyn dynamic.Interface, disc discovery.DiscoveryInterface, namespace string) ([]string, error) {
	lists, err := discovery.ServerPreferredNamespacedResources(disc)
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		return nil, err
	}
	var out []string
	var errs []error
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, res := range l.APIResources {
			if strings.Contains(res.Name, "/") || !slices.Contains(res.Verbs, "list") {
				continue
			}
			list, err := dyn.Resource(gv.WithResource(res.Name)).Namespace(namespace).List(ctx, metav1.ListOptions{})
			if err != nil {
				if !apierrors.IsNotFound(err) && !apierrors.IsMethodNotSupported(err) {
					errs = append(errs, fmt.Errorf("%s: %w", res.Name, err))
				}
				continue
			}
			for _, item := range list.Items {
				if kubernetesDefault(gv.Group, res.Name, item.GetName()) {
					continue
				}
				out = append(out, res.Name+"/"+item.GetName())
			}
		}
	}
	sort.Strings(out)
	return out, errors.Join(errs...)
}

// kubernetesDefault reports the objects Kubernetes puts in every namespace.
func kubernetesDefault(group, resource, name string) bool {
	return group == "" && (resource == "configmaps" && name == "kube-root-ca.crt" ||
		resource == "serviceaccounts" && name == "default")
}

func summary(counts map[string]int) string {
	var parts []string
	for res, n := range counts {
		parts = append(parts, fmt.Sprintf("%d %s", n, res))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
