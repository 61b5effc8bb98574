package policy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseProfile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Profile
		wantErr string
	}{
		{in: "soft", want: ProfileSoft},
		{in: "hard", want: ProfileHard},
		{in: "Hard", wantErr: `unknown isolation profile "Hard": must be "soft" or "hard"`},
		{in: "", wantErr: `unknown isolation profile "": must be "soft" or "hard"`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseProfile(tc.in)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if diff := cmp.Diff(tc.wantErr, gotErr); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if got != tc.want {
				t.Errorf("ParseProfile(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestProfileIsAFlagValue(t *testing.T) {
	t.Parallel()
	p := DefaultProfile
	if err := p.Set("soft"); err != nil || p != ProfileSoft {
		t.Errorf("Set(soft) = %v, profile %q; want no error and soft", err, p)
	}
	if err := p.Set("medium"); err == nil || p != ProfileSoft {
		t.Errorf("Set(medium) = %v, profile %q; want an error and the profile unchanged", err, p)
	}
}
