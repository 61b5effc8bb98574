package install

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/chartutil"
	"k8s.io/client-go/rest"

	"github.com/knest-dev/knest/charts"
)

func TestValidateValuesNamesTheWrongValue(t *testing.T) {
	t.Parallel()
	chrt, err := charts.Knest()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		values map[string]any
		want   []string
	}{
		{name: "the defaults are valid", values: nil},
		{name: "an unknown profile", values: map[string]any{"isolation": "medium"}, want: []string{"at '/isolation'"}},
		{name: "two wrong values are both named", values: map[string]any{"isolation": "medium", "knestd": map[string]any{"apiPort": 0}},
			want: []string{"at '/isolation'", "at '/knestd/apiPort'"}},
		{name: "a profile in the policy says to set isolation", values: map[string]any{"policy": map[string]any{"profile": "soft"}},
			want: []string{"at '/policy'", "set isolation"}},
		{name: "egress networks in the policy say where they go", values: map[string]any{"policy": map[string]any{"egressCIDRs": []any{"10.0.0.0/8"}}},
			want: []string{"set networkPolicy.egressCIDRs"}},
		{name: "API server egress networks in the policy say where they go", values: map[string]any{"policy": map[string]any{"apiServerEgressCIDRs": []any{"10.0.0.0/8"}}},
			want: []string{"set networkPolicy.apiServerEgressCIDRs"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := ValidateValues(chrt, tc.values)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var verr *ValuesError
			if !errors.As(err, &verr) {
				t.Fatalf("error = %v, want a *ValuesError", err)
			}
			if n := strings.Count(strings.Join(tc.want, " "), "at '"); n > 1 && len(verr.Problems) != n {
				t.Errorf("problems = %q, want %d", verr.Problems, n)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

func TestLoadValuesLaterWins(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := filepath.Join(dir, "a.yaml")
	b := filepath.Join(dir, "b.yaml")
	if err := os.WriteFile(a, []byte("isolation: soft\nknestd:\n  logLevel: 2\n  image: {repository: r}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, []byte("knestd:\n  logLevel: 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := LoadValues([]string{a, b}, []string{"knestd.image.tag=e2e,isolation=hard"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"isolation": "hard",
		"knestd":    map[string]any{"logLevel": float64(3), "image": map[string]any{"repository": "r", "tag": "e2e"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	if _, err := LoadValues([]string{filepath.Join(dir, "missing.yaml")}, nil); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("a missing file: error = %v", err)
	}
}

func TestRenderIsTheInstall(t *testing.T) {
	t.Parallel()
	out, err := Render(t.Context(), "acme", "knest-acme", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: StatefulSet", "--host-namespace=knest-acme", "--name=acme", "kind: RoleBinding"} {
		if !strings.Contains(out, want) {
			t.Errorf("the default render lacks %q", want)
		}
	}
	dev, err := Render(t.Context(), "acme", "knest-acme", map[string]any{"knestd": map[string]any{"enabled": false}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(dev, "kind: StatefulSet") || !strings.Contains(dev, "kind: Service\n") {
		t.Errorf("without knestd the render must keep the Service and drop the StatefulSet:\n%s", dev)
	}
	var verr *ValuesError
	if _, err := Render(t.Context(), "acme", "knest-acme", map[string]any{"isolation": "x"}); !errors.As(err, &verr) {
		t.Errorf("bad values: error = %v, want a *ValuesError", err)
	}
}

func TestReleaseReadsItsValues(t *testing.T) {
	t.Parallel()
	r := &Release{Name: "acme", Values: chartutil.Values{"isolation": "soft", "tenant": "", "knestd": map[string]any{"enabled": false}}}
	if r.Tenant() != "acme" || r.Isolation() != "soft" || r.KnestdEnabled() {
		t.Errorf("tenant %q isolation %q knestd %v", r.Tenant(), r.Isolation(), r.KnestdEnabled())
	}
	// Helm writes the manifest in install order; Resources keeps it.
	r.Manifest = "---\n# Source: knest/templates/service.yaml\napiVersion: v1\nkind: Service\nmetadata:\n  name: knestd\n" +
		"---\n# Source: knest/templates/serviceaccount.yaml\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: knestd\n"
	if diff := cmp.Diff([]string{"Service/knestd", "ServiceAccount/knestd"}, r.Resources()); diff != "" {
		t.Errorf("resources in the manifest's order (-want +got):\n%s", diff)
	}
}

func TestTheGetterHandsHelmTheNamespaceAndACopy(t *testing.T) {
	t.Parallel()
	cfg := &rest.Config{Host: "https://host.example:6443", QPS: 5}
	g := newRESTClientGetter(cfg, "knest-acme")
	ns, explicit, err := g.ToRawKubeConfigLoader().Namespace()
	if err != nil || ns != "knest-acme" || !explicit {
		t.Errorf("namespace = %q, %v, %v", ns, explicit, err)
	}
	got, err := g.ToRESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	got.Host = "changed"
	again, _ := g.ToRESTConfig()
	if again.Host != cfg.Host || cfg.Host != "https://host.example:6443" {
		t.Errorf("a caller's change leaked: %q / %q", again.Host, cfg.Host)
	}
}
