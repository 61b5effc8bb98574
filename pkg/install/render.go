package install

import (
	"context"
	"fmt"

	"helm.sh/helm/v3/pkg/action"

	"github.com/knest-dev/knest/charts"
)

// Render renders the chart as release name in namespace with vals, as
// `helm template` does: no cluster, the chart's defaults under vals, the
// schema checked, documents in Helm's install order, each after a
// "# Source:" line. manifests/knest.yaml is made with it.
func Render(ctx context.Context, name, namespace string, vals map[string]any) (string, error) {
	chrt, err := charts.Knest()
	if err != nil {
		return "", fmt.Errorf("failed to load the knest chart: %w", err)
	}
	if err := ValidateValues(chrt, vals); err != nil {
		return "", err
	}
	act := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	act.ReleaseName, act.Namespace = name, namespace
	act.DryRun, act.ClientOnly, act.Replace = true, true, true
	rel, err := act.RunWithContext(ctx, chrt, vals)
	if err != nil {
		return "", fmt.Errorf("failed to render the knest chart: %w", err)
	}
	return rel.Manifest, nil
}
