package gatewayapi

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"
)

//go:embed crds/*.yaml
var crdFiles embed.FS

// Group is the Gateway API group.
const Group = gatewayv1.GroupName

// BundleVersionAnnotation carries the gateway-api release a CRD comes from.
const BundleVersionAnnotation = "gateway.networking.k8s.io/bundle-version"

// CRDs returns the embedded CustomResourceDefinitions, sorted by name.
func CRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	names, err := fs.Glob(crdFiles, "crds/*.yaml")
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, name := range names {
		data, err := crdFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(data, crd); err != nil {
			return nil, fmt.Errorf("failed to decode the Gateway API CRD %s: %w", name, err)
		}
		out = append(out, crd)
	}
	return out, nil
}

// ManagedByLabel marks the CRDs Install created, which it keeps at the
// embedded release.
const ManagedByLabel = "app.kubernetes.io/managed-by"

// Install creates the CRDs that do not exist yet, moves those it created
// before (ManagedByLabel knest) to the embedded release when they carry
// another (an upgraded knestd), and waits until each is established
// (served) and discoverable. A CRD of the same name that someone else installed (the
// tenant's own install) is left as it is: the tenant's objects are stored
// under it, and only the kinds' v1 matter to knest.
func Install(ctx context.Context, c apiextensionsclient.Interface) error {
	crds, err := CRDs()
	if err != nil {
		return err
	}
	crdClient := c.ApiextensionsV1().CustomResourceDefinitions()
	for _, crd := range crds {
		if crd.Labels == nil {
			crd.Labels = map[string]string{}
		}
		crd.Labels[ManagedByLabel] = "knest"
		_, err := crdClient.Create(ctx, crd, metav1.CreateOptions{})
		if kerrors.IsAlreadyExists(err) {
			err = upgrade(ctx, c, crd)
		}
		if err != nil {
			return fmt.Errorf("failed to create CustomResourceDefinition %s: %w", crd.Name, err)
		}
	}
	for _, crd := range crds {
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			got, err := c.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			for _, cond := range got.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("CustomResourceDefinition %s is not established: %w", crd.Name, err)
		}
	}
	// Established is not yet discoverable: the API server's discovery
	// documents follow a moment later (seconds on a loaded machine), and
	// a client that maps kinds to resources through discovery (the
	// syncer's caches) fails with "no matches for kind" until they do.
	for _, crd := range crds {
		for _, v := range crd.Spec.Versions {
			if !v.Served {
				continue
			}
			gv := crd.Spec.Group + "/" + v.Name
			err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
				// The groups list (aggregated discovery) and the
				// version's resources, as a discovery-based RESTMapper
				// reads them.
				groups, err := c.Discovery().ServerGroups()
				if err != nil || !slices.ContainsFunc(groups.Groups, func(g metav1.APIGroup) bool {
					return g.Name == crd.Spec.Group && slices.ContainsFunc(g.Versions, func(x metav1.GroupVersionForDiscovery) bool { return x.GroupVersion == gv })
				}) {
					return false, nil
				}
				list, err := c.Discovery().ServerResourcesForGroupVersion(gv)
				if err != nil {
					return false, nil
				}
				return slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Name == crd.Spec.Names.Plural }), nil
			})
			if err != nil {
				return fmt.Errorf("%s of %s is not discoverable: %w", crd.Spec.Names.Plural, gv, err)
			}
		}
	}
	return nil
}

// upgrade replaces the spec of existing CRD crd.Name with crd's when knest
// installed it and it comes from another release.
func upgrade(ctx context.Context, c apiextensionsclient.Interface, crd *apiextensionsv1.CustomResourceDefinition) error {
	existing, err := c.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if existing.Labels[ManagedByLabel] != "knest" || existing.Annotations[BundleVersionAnnotation] == crd.Annotations[BundleVersionAnnotation] {
		return nil
	}
	existing.Spec = crd.Spec
	existing.Annotations = crd.Annotations
	_, err = c.ApiextensionsV1().CustomResourceDefinitions().Update(ctx, existing, metav1.UpdateOptions{})
	return err
}
