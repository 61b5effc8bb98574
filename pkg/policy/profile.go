package policy

import (
	"fmt"

	psapi "k8s.io/pod-security-admission/api"
)

// Profile is a tenant's isolation profile: how far the host trusts the
// tenant's workloads. It is fixed for the life of a tenant (knestd
// --isolation).
type Profile string

const (
	// ProfileSoft is for teams of one organisation sharing a host: Pod
	// Security baseline, pods share the host kernel.
	ProfileSoft Profile = "soft"
	// ProfileHard is for untrusted tenants: Pod Security restricted and a
	// sandboxed runtime class on every pod. It is the default.
	ProfileHard Profile = "hard"
)

// DefaultProfile is the profile of a tenant that names none.
const DefaultProfile = ProfileHard

// profiles lists the valid profiles, for messages.
var profiles = []Profile{ProfileHard, ProfileSoft}

// ParseProfile returns the profile named s.
func ParseProfile(s string) (Profile, error) {
	switch p := Profile(s); p {
	case ProfileSoft, ProfileHard:
		return p, nil
	}
	return "", fmt.Errorf("unknown isolation profile %q: must be %q or %q", s, ProfileSoft, ProfileHard)
}

// String returns the profile's name.
func (p Profile) String() string { return string(p) }

// Set parses s into p, so a Profile can be a command-line flag
// (pflag.Value).
func (p *Profile) Set(s string) error {
	parsed, err := ParseProfile(s)
	if err != nil {
		return err
	}
	*p = parsed
	return nil
}

// Type names the flag's value type in help text (pflag.Value).
func (p *Profile) Type() string { return "soft|hard" }

// PodSecurityLevel is the Pod Security level every tenant pod is held to,
// whatever the labels of its namespace say.
func (p Profile) PodSecurityLevel() psapi.Level {
	if p == ProfileSoft {
		return psapi.LevelBaseline
	}
	// Anything else, including an invalid profile, gets the strictest
	// level: a mistake must not loosen the policy.
	return psapi.LevelRestricted
}

// describe names the profile and its Pod Security level for messages:
// "the hard profile (Pod Security restricted)".
func (p Profile) describe() string {
	return fmt.Sprintf("the %s profile (Pod Security %s)", p, p.PodSecurityLevel())
}
