package create

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/knest-dev/knest/charts"
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
