// Package devenv starts a local development environment: one devcluster
// process for the host and one knestd process per tenant, all children of
// the calling process, with their data, logs and kubeconfigs under one
// directory (Layout). Up is the one way to start a host and its tenants:
// `knest dev up`, the syncer integration tests and the sync benchmark call
// it with their own sizes, chart values and extra knestd flags.
package devenv

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/tenant"
)

// HostNamespacePrefix starts the host namespace of each tenant.
const HostNamespacePrefix = "knest-"

// Layout is where a dev environment keeps its files.
type Layout struct {
	Dir string
}

// Lock is held by the `knest dev up` process; it holds that process's PID.
func (l Layout) Lock() string { return filepath.Join(l.Dir, "knest-dev.lock") }

// HostDir is the devcluster's data directory.
func (l Layout) HostDir() string { return filepath.Join(l.Dir, "host") }

// HostKubeconfig is the host cluster's admin kubeconfig.
func (l Layout) HostKubeconfig() string { return filepath.Join(l.Dir, "host.kubeconfig") }

// TenantDir is a tenant's knestd data directory.
func (l Layout) TenantDir(tenant string) string { return filepath.Join(l.Dir, "tenants", tenant) }

// TenantPolicy is the policy file of a tenant's knestd (DevPolicy).
func (l Layout) TenantPolicy(tenant string) string {
	return filepath.Join(l.Dir, "tenants", tenant+"-policy.yaml")
}

// TenantKubeconfig is a tenant's admin kubeconfig.
func (l Layout) TenantKubeconfig(tenant string) string {
	return filepath.Join(l.Dir, "tenants", tenant+".kubeconfig")
}

// TenantHostKubeconfig is the kubeconfig of a tenant's namespaced host
// identity, which its knestd syncs with.
func (l Layout) TenantHostKubeconfig(tenant string) string {
	return filepath.Join(l.Dir, "tenants", tenant+"-host.kubeconfig")
}

// Log is the log file of a child process.
func (l Layout) Log(name string) string { return filepath.Join(l.Dir, "logs", name+".log") }

// HostNamespace is the host namespace a tenant syncs into.
func HostNamespace(tenant string) string { return HostNamespacePrefix + tenant }

// Tenant is a tenant of the dev environment and its isolation profile.
type Tenant struct {
	Name    string
	Profile policy.Profile
}

// ParseTenants splits and validates a comma-separated tenant list; each
// entry is NAME or NAME:PROFILE, and NAME alone gets profile def.
func ParseTenants(list string, def policy.Profile) ([]Tenant, error) {
	var tenants []Tenant
	seen := map[string]bool{}
	for _, entry := range strings.Split(list, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		t := Tenant{Name: entry, Profile: def}
		if name, profile, found := strings.Cut(entry, ":"); found {
			p, err := policy.ParseProfile(profile)
			if err != nil {
				return nil, fmt.Errorf("tenant %q: %w", name, err)
			}
			t = Tenant{Name: name, Profile: p}
		}
		if err := tenant.ValidateName(t.Name); err != nil {
			return nil, err
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("tenant %q is listed twice", t.Name)
		}
		seen[t.Name] = true
		tenants = append(tenants, t)
	}
	if len(tenants) == 0 {
		return nil, errors.New("at least one tenant is required")
	}
	return tenants, nil
}
