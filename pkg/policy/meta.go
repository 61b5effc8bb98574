package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	psapi "k8s.io/pod-security-admission/api"
)

// podSecurityPrefix is the domain of the Pod Security namespace labels.
const podSecurityPrefix = "pod-security.kubernetes.io"

// CheckMeta refuses label and annotation keys in the knest.io domain and
// its subdomains: the syncer's marks of ownership. Nothing else in a tenant
// object's metadata is refused: it reaches the host only on the operator's
// allowlist, and other labels only under knest's own keys. path is the path
// of meta itself: field.NewPath("metadata") for a top-level object,
// field.NewPath("spec", "template", "metadata") for a pod template.
//
// On an update old is the stored object's metadata (nil on a create): a
// knest key it already carries, which only knest can have set (its virtual
// Nodes carry knest.io/virtual-node), may stay as it is, so that a tenant
// can label its Nodes as any cluster admin does; adding, changing or
// removing one is refused.
func CheckMeta(meta, old *metav1.ObjectMeta, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if old == nil {
		old = &metav1.ObjectMeta{}
	}
	for _, m := range []struct {
		name     string
		items    map[string]string
		oldItems map[string]string
	}{{"labels", meta.Labels, old.Labels}, {"annotations", meta.Annotations, old.Annotations}} {
		for _, k := range slices.Sorted(maps.Keys(m.items)) {
			if was, ok := m.oldItems[k]; isKnestKey(k) && (!ok || was != m.items[k]) {
				errs = append(errs, field.Invalid(path.Child(m.name).Key(k), m.items[k],
					"the knest.io domain and its subdomains are reserved for knest; use a key of your own"))
			}
		}
		for _, k := range slices.Sorted(maps.Keys(m.oldItems)) {
			if _, kept := m.items[k]; isKnestKey(k) && !kept {
				errs = append(errs, field.Forbidden(path.Child(m.name).Key(k),
					"knest set this key and keeps it; the knest.io domain and its subdomains are reserved for knest"))
			}
		}
	}
	return errs
}

// NamespaceWarnings returns admission warnings for a tenant Namespace's Pod
// Security labels that ask for less than the floor. Such labels are the
// tenant's own business and are never refused (Kubernetes' conformance
// suite labels every test namespace privileged), but they have no effect
// below the floor, and the tenant should know. Labels stricter than the
// floor apply as upstream Pod Security applies them. None of them reaches
// the host.
func NamespaceWarnings(meta *metav1.ObjectMeta, p *Policy) []string {
	var out []string
	floor := p.level()
	for _, k := range slices.Sorted(maps.Keys(meta.Labels)) {
		prefix, mode, _ := strings.Cut(k, "/")
		if strings.ToLower(prefix) != podSecurityPrefix {
			continue
		}
		switch mode {
		case "enforce", "audit", "warn":
		default:
			continue
		}
		got, err := psapi.ParseLevel(meta.Labels[k])
		if err != nil || psapi.CompareLevels(got, floor) >= 0 {
			continue
		}
		out = append(out, fmt.Sprintf("%s=%s has no effect below the floor: every pod of this tenant is held to Pod Security %s (%s)",
			k, meta.Labels[k], floor, p.Describe()))
	}
	return out
}
