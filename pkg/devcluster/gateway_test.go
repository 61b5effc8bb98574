package devcluster

import (
	"testing"

	"github.com/knest-dev/knest/pkg/devenv"
)

// Dev tenants' policy (devenv.DevPolicy) names the Gateway a dev host has.
func TestDevTenantsNameTheDevGateway(t *testing.T) {
	t.Parallel()
	if devenv.DevGatewayNamespace != GatewayNamespace || devenv.DevGatewayName != GatewayName {
		t.Errorf("dev tenants attach routes to %s/%s, the dev host's Gateway is %s/%s",
			devenv.DevGatewayNamespace, devenv.DevGatewayName, GatewayNamespace, GatewayName)
	}
}
