// Package rbac holds the host Role of a tenant's knestd. The same YAML is
// published as manifests/knestd-role.yaml (hack/verify.sh checks they match).
package rbac

import (
	_ "embed"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// RoleYAML is the Role manifest.
//
//go:embed role.yaml
var RoleYAML []byte

// RoleName is the name of the Role and of the ServiceAccount bound to it.
const RoleName = "knestd"

// Role returns the Role for a host namespace.
func Role(namespace string) (*rbacv1.Role, error) {
	var r rbacv1.Role
	if err := yaml.UnmarshalStrict(RoleYAML, &r); err != nil {
		return nil, fmt.Errorf("knestd role manifest: %w", err)
	}
	r.Namespace = namespace
	return &r, nil
}
