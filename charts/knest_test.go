package charts

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/knest-dev/knest/pkg/syncer/rbac"
)

func render(t *testing.T, values map[string]any) (map[string]string, error) {
	t.Helper()
	chrt, err := Knest()
	if err != nil {
		t.Fatal(err)
	}
	vals, err := chartutil.ToRenderValues(chrt, values, chartutil.ReleaseOptions{Name: "acme", Namespace: "knest-acme", IsInstall: true}, nil)
	if err != nil {
		return nil, err
	}
	if err := chartutil.ValidateAgainstSchema(chrt, vals["Values"].(chartutil.Values)); err != nil {
		return nil, err
	}
	return engine.Render(chrt, vals)
}

func TestTheChartGrantsExactlyTheKnestdRole(t *testing.T) {
	t.Parallel()
	out, err := render(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.Role
	if err := yaml.UnmarshalStrict([]byte(out["knest/templates/role.yaml"]), &role); err != nil {
		t.Fatalf("rendered Role: %v\n%s", err, out["knest/templates/role.yaml"])
	}
	want, err := rbac.Role("")
	if err != nil {
		t.Fatal(err)
	}
	if role.Name != "knestd" {
		t.Errorf("Role name = %q", role.Name)
	}
	if diff := cmp.Diff(want.Rules, role.Rules); diff != "" {
		t.Errorf("the chart's Role differs from knestd's (-knestd +chart):\n%s", diff)
	}
	var binding rbacv1.RoleBinding
	if err := yaml.UnmarshalStrict([]byte(out["knest/templates/rolebinding.yaml"]), &binding); err != nil {
		t.Fatal(err)
	}
	if binding.RoleRef.Name != "knestd" || len(binding.Subjects) != 1 || binding.Subjects[0].Namespace != "knest-acme" || binding.Subjects[0].Name != "knestd" {
		t.Errorf("RoleBinding = %+v", binding)
	}
}

func TestTheSchemaRejectsBadValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		values map[string]any
		want   string
	}{
		{name: "an invalid ServiceAccount name", values: map[string]any{"serviceAccount": map[string]any{"name": "Bad_Name"}}, want: "/serviceAccount/name"},
		{name: "an unknown value", values: map[string]any{"isolaton": "hard"}, want: "isolaton"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := render(t, tc.values)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one naming %q", err, tc.want)
			}
		})
	}
}
