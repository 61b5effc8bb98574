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
	// ProfileHard is for untrusted tenants: a sandboxed runtime class on
	// every pod (the VM is the boundary), the tenant's node pool, images
	// always pulled; Pod Security baseline inside the sandbox. It is the
	// default.
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

// PodSecurityLevel is the profile's default floor: the Pod Security level
// every tenant pod is held to, whatever the labels of its namespace say,
// unless the operator's policy raises it (Policy.PodSecurityLevel). Both
// profiles default to baseline. In hard the sandbox, not the user ID, is
// the boundary: root inside the VM is allowed, as in sandboxed KaaS
// offerings, so root images run unchanged. Privileged containers, host
// namespaces, host ports, hostPath and added capabilities beyond the
// default set stay refused in both.
func (p Profile) PodSecurityLevel() psapi.Level {
	return psapi.LevelBaseline
}

// forcesImagePull reports whether the profile forces imagePullPolicy Always
// on host pods: nodes cache images, and an untrusted tenant must not run an
// image another tenant pulled with credentials it does not hold. Anything
// but soft, including an invalid profile, forces it: a mistake must not
// loosen the policy.
func (p Profile) forcesImagePull() bool {
	return p != ProfileSoft
}
