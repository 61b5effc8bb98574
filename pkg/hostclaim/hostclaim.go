package hostclaim

import (
	_ "embed"
	"strings"
)

// Namespace is the shared host namespace of hostname claims.
const Namespace = "knest-hostnames"

// AnnotationHostname names the hostname a claim is for.
const AnnotationHostname = "knest.io/hostname"

// LabelClaim marks claims.
const LabelClaim = "knest.io/hostname-claim"

// Manifest is the operator's install of the claims: namespace, ClusterRole
// and ValidatingAdmissionPolicy with its binding.
//
//go:embed operator.yaml
var Manifest []byte

// Name is the name of the claim of hostname: "e." and the name for an
// exact name, "w." and the domain for a wildcard "*.domain", so an exact
// name never collides with a wildcard. The admission policy checks the same
// mapping. "" if the result is not a valid object name.
func Name(hostname string) string {
	h := strings.ToLower(hostname)
	var name string
	if d, ok := strings.CutPrefix(h, "*."); ok {
		name = "w." + d
	} else {
		name = "e." + h
	}
	if len(name) > 253 || strings.Contains(name, "*") {
		return ""
	}
	return name
}
