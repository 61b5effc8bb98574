package create

import (
	"testing"

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
