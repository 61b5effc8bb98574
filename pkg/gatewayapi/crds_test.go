package gatewayapi

import (
	"os"
	"slices"
	"strings"
	"testing"
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
