package devenv

import (
	"context"

	"helm.sh/helm/v3/pkg/chartutil"
	"k8s.io/client-go/rest"

	"github.com/knest-dev/knest/pkg/install"
	"github.com/knest-dev/knest/pkg/policy"
)

// InstallPolicies installs the knest chart as release tenant into the
// tenant's host namespace, or upgrades it, without the control-plane
// workload: a dev environment runs knestd as a local process. The rest is
// what a real host gets: the knestd ServiceAccount and Role, the
// ServiceAccount tenant pods run as, ResourceQuota, LimitRange,
// NetworkPolicies and the Service in front of knestd. values, when not
// nil, go over these (tests and benchmarks loosen the quota with them).
// Objects of the same names made before the chart managed them are adopted.
func InstallPolicies(ctx context.Context, host *rest.Config, tenant, namespace string, profile policy.Profile, values map[string]any) error {
	vals := map[string]any{
		"isolation": profile.String(),
		"knestd":    map[string]any{"enabled": false},
	}
	if values != nil {
		// CoalesceTables keeps what its first argument sets.
		vals = chartutil.CoalesceTables(deepCopy(values), vals)
	}
	releases, err := install.New(host, namespace, nil)
	if err != nil {
		return err
	}
	_, err = releases.InstallOrUpgrade(ctx, tenant, vals, install.Options{Adopt: true})
	return err
}

// deepCopy copies nested value maps, which CoalesceTables changes.
func deepCopy(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			v = deepCopy(sub)
		}
		out[k] = v
	}
	return out
}
