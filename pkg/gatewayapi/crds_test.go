package gatewayapi

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset/fake"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// TestCRDsMatchModule checks the embedded CRDs come from the gateway-api
// release go.mod requires (run hack/gatewayapi-crds.sh after moving it),
// from the standard channel, and cover the kinds knest serves.
func TestCRDsMatchModule(t *testing.T) {
	t.Parallel()
	// Test binaries carry no module versions in their build info: read
	// go.mod.
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	var version string
	for line := range strings.Lines(string(gomod)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "sigs.k8s.io/gateway-api" {
			version = f[1]
		}
	}
	if version == "" {
		t.Fatal("go.mod does not require sigs.k8s.io/gateway-api")
	}
	crds, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, crd := range crds {
		kinds = append(kinds, crd.Spec.Names.Kind)
		if got := crd.Annotations[BundleVersionAnnotation]; got != version {
			t.Errorf("CRD %s is from gateway-api %s, go.mod requires %s: run hack/gatewayapi-crds.sh", crd.Name, got, version)
		}
		if got := crd.Annotations["gateway.networking.k8s.io/channel"]; got != "standard" {
			t.Errorf("CRD %s is from channel %q, want standard", crd.Name, got)
		}
	}
	slices.Sort(kinds)
	if want := []string{"GRPCRoute", "Gateway", "GatewayClass", "HTTPRoute", "ReferenceGrant"}; !slices.Equal(kinds, want) {
		t.Errorf("kinds %v, want %v", kinds, want)
	}
}

// Install returns only once every served version's resources are
// discoverable: established CRDs whose discovery documents have not caught
// up yet (a loaded API server) made the syncer's first cache fail with "no
// matches for kind".
func TestInstallWaitsForDiscovery(t *testing.T) {
	t.Parallel()
	crds, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	var existing []runtime.Object
	var resources []*metav1.APIResourceList
	byGV := map[string]*metav1.APIResourceList{}
	for _, crd := range crds {
		crd = crd.DeepCopy()
		crd.Labels = map[string]string{ManagedByLabel: "knest"}
		crd.Status.Conditions = []apiextensionsv1.CustomResourceDefinitionCondition{{Type: apiextensionsv1.Established, Status: apiextensionsv1.ConditionTrue}}
		existing = append(existing, crd)
		for _, v := range crd.Spec.Versions {
			if !v.Served {
				continue
			}
			gv := crd.Spec.Group + "/" + v.Name
			if byGV[gv] == nil {
				byGV[gv] = &metav1.APIResourceList{GroupVersion: gv}
				resources = append(resources, byGV[gv])
			}
			byGV[gv].APIResources = append(byGV[gv].APIResources, metav1.APIResource{Name: crd.Spec.Names.Plural, Kind: crd.Spec.Names.Kind})
		}
	}

	established := fake.NewClientset(existing...)
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if err := Install(ctx, established); err == nil || !strings.Contains(err.Error(), "not discoverable") {
		t.Fatalf("established, not discoverable: Install returned %v, want a not discoverable error", err)
	}

	discoverable := fake.NewClientset(existing...)
	discoverable.Resources = resources
	if err := Install(t.Context(), discoverable); err != nil {
		t.Fatalf("established and discoverable: %v", err)
	}
}
