package install

import (
	"fmt"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli/values"
	"helm.sh/helm/v3/pkg/getter"
)

// ValuesError is chart values the chart's schema refuses: one problem per
// wrong value, each naming the value's path.
type ValuesError struct {
	Problems []string
}

func (e *ValuesError) Error() string {
	return "invalid chart values: " + strings.Join(e.Problems, "; ") + " (the chart's values.yaml documents each value)"
}

// hints add what to do to the schema's word for common mistakes.
var hints = map[string]string{
	"'/policy': additional properties 'profile'":              "set isolation: the policy's profile is always the tenant's",
	"'/policy': additional properties 'egressCIDRs'":          "set networkPolicy.egressCIDRs: the policy and the NetworkPolicies share them",
	"'/policy': additional properties 'apiServerEgressCIDRs'": "set networkPolicy.apiServerEgressCIDRs: the policy and knestd's NetworkPolicy share them",
}

// ValidateValues checks values, over the chart's defaults as Helm merges
// them, against the chart's values.schema.json.
func ValidateValues(chrt *chart.Chart, vals map[string]any) error {
	// ToRenderValues checks the schema too, after merging.
	if _, err := chartutil.ToRenderValues(chrt, vals, chartutil.ReleaseOptions{Name: "check", Namespace: "check", IsInstall: true}, nil); err != nil {
		return &ValuesError{Problems: schemaProblems(err.Error())}
	}
	return nil
}

// schemaProblems turns Helm's schema report (a preamble, the chart's name,
// then "- at '/path': problem" lines) into one problem per line.
func schemaProblems(report string) []string {
	var out []string
	for _, line := range strings.Split(report, "\n") {
		trimmed := strings.TrimSpace(line)
		if !strings.HasPrefix(trimmed, "- ") {
			continue
		}
		// Alternatives of a oneOf are indented under it: keep them with it.
		p := strings.TrimPrefix(trimmed, "- ")
		if strings.HasPrefix(line, "  ") && len(out) > 0 {
			out[len(out)-1] += " (" + p + ")"
			continue
		}
		for k, hint := range hints {
			if strings.Contains(p, k) {
				p += ": " + hint
			}
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		out = []string{strings.TrimSpace(report)}
	}
	return out
}

// LoadValues merges values files (later ones win) and then --set style
// assignments (key.sub=value,other=value), as helm -f and --set do.
func LoadValues(files, sets []string) (map[string]any, error) {
	return MergeValues(values.Options{ValueFiles: files, Values: sets})
}

// MergeValues merges values as helm install and upgrade do: -f/--values
// files (later ones win), then --set-json, --set, --set-string and
// --set-file, each over the ones before. Files are local: no getter (URL)
// is offered.
func MergeValues(opts values.Options) (map[string]any, error) {
	v, err := opts.MergeValues(getter.Providers{})
	if err != nil {
		return nil, fmt.Errorf("invalid chart values: %w", err)
	}
	return v, nil
}
