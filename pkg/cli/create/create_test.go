package create

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/knest-dev/knest/charts"
	"github.com/knest-dev/knest/pkg/cli"
	"github.com/knest-dev/knest/pkg/install"
	"github.com/knest-dev/knest/pkg/policy"
)

func TestEffectiveValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		values      map[string]any
		wantProfile policy.Profile
		wantKnestd  bool
		wantErr     bool
	}{
		{name: "the defaults are hard with knestd", values: map[string]any{}, wantProfile: policy.ProfileHard, wantKnestd: true},
		{name: "soft from the values", values: map[string]any{"isolation": "soft"}, wantProfile: policy.ProfileSoft, wantKnestd: true},
		{name: "knestd turned off", values: map[string]any{"knestd": map[string]any{"enabled": false}}, wantProfile: policy.ProfileHard},
		{name: "knestd values without enabled keep it on", values: map[string]any{"knestd": map[string]any{"logLevel": 2}}, wantProfile: policy.ProfileHard, wantKnestd: true},
		{name: "an unknown profile", values: map[string]any{"isolation": "medium"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			profile, knestd, err := effective(tc.values)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error = %v", err)
			}
			if profile != tc.wantProfile || knestd != tc.wantKnestd {
				t.Errorf("profile %q knestd %v, want %q %v", profile, knestd, tc.wantProfile, tc.wantKnestd)
			}
		})
	}
}

func TestHostnameFlag(t *testing.T) {
	t.Parallel()
	chrt, err := charts.Knest()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]any{"exposure": map[string]any{"baseDomain": "apps.corp.example"}}
	setHostnames(values, []string{"*.shop.example.com", "api.example.com"})
	want := map[string]any{"exposure": map[string]any{"baseDomain": "apps.corp.example", "hostnames": []any{"*.shop.example.com", "api.example.com"}}}
	if diff := cmp.Diff(want, values); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	if err := install.ValidateValues(chrt, values); err != nil {
		t.Errorf("the chart refuses --hostname values: %v", err)
	}
	bad := map[string]any{}
	setHostnames(bad, []string{"shop example.com"})
	if err := install.ValidateValues(chrt, bad); err == nil || !strings.Contains(err.Error(), "/exposure/hostnames/0") {
		t.Errorf("a hostname that is not one: %v, want a refusal naming /exposure/hostnames/0", err)
	}
	none := map[string]any{}
	setHostnames(none, nil)
	if len(none) != 0 {
		t.Errorf("no --hostname changed the values: %v", none)
	}
}

func TestReuseValuesKeepsEarlierValues(t *testing.T) {
	t.Parallel()
	earlier := map[string]any{
		"isolation": "soft",
		"knestd":    map[string]any{"logLevel": float64(4), "image": map[string]any{"repository": "r", "tag": "old"}},
		"metrics":   map[string]any{"enabled": true},
	}
	got, err := ReuseValues(map[string]any{
		"knestd":  map[string]any{"image": map[string]any{"tag": "new"}},
		"metrics": nil, // a null removes an earlier value, as in Helm
	}, earlier)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"isolation": "soft",
		"knestd":    map[string]any{"logLevel": float64(4), "image": map[string]any{"repository": "r", "tag": "new"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	if tag := earlier["knestd"].(map[string]any)["image"].(map[string]any)["tag"]; tag != "old" {
		t.Errorf("the release's own values were changed: tag %v", tag)
	}
}

func TestDryRunRendersWithoutAHost(t *testing.T) {
	// No kubeconfig anywhere: a dry run must not need one.
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	run := func(output string, extra ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		cmd := NewCommand(cli.Streams{Out: &out, ErrOut: &errOut})
		cmd.SetArgs(append([]string{"acme", "--dry-run", "-o", output, "--isolation", "soft",
			"--set", "knestd.serviceCIDR=10.0.0.0/16", "--set-json", `knestd.resources={"requests":{"cpu":"250m"}}`}, extra...))
		if err := cmd.Execute(); err != nil {
			t.Fatalf("-o %s: %v\n%s", output, err, errOut.String())
		}
		return out.String()
	}
	out := run("yaml")
	for _, want := range []string{"kind: Namespace", "name: knest-acme", "knest.io/tenant: acme", "kind: StatefulSet", "cpu: 250m", "--service-cidr=10.0.0.0/16"} {
		if !strings.Contains(out, want) {
			t.Errorf("-o yaml lacks %q", want)
		}
	}
	var list struct {
		Kind  string           `json:"kind"`
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal([]byte(run("json")), &list); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, it := range list.Items {
		kinds[it["kind"].(string)] = true
	}
	if list.Kind != "List" || !kinds["Namespace"] || !kinds["StatefulSet"] || !kinds["Role"] {
		t.Errorf("-o json: a %s of %v", list.Kind, kinds)
	}
	// Bad values are refused before anything is printed.
	var out2, errOut bytes.Buffer
	cmd := NewCommand(cli.Streams{Out: &out2, ErrOut: &errOut})
	cmd.SetArgs([]string{"acme", "--dry-run", "--set-string", "knestd.enabled=yes"})
	if err := cmd.Execute(); err == nil || out2.Len() > 0 {
		t.Errorf("a string for a boolean: error %v, output %q", err, out2.String())
	}
}
