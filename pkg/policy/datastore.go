package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// DatastoreLimits caps the tenant's own datastore.
type DatastoreLimits struct {
	// ObjectCounts caps how many objects of a resource the tenant may keep,
	// keyed by resource as in DatastoreResources ("configmaps",
	// "deployments.apps"). ConfigMaps and Secrets are capped at
	// DefaultDatastoreObjects unless set here; other resources only when
	// listed. Generous on purpose: in ordinary use the byte limit acts
	// first, and a count cap only stops a runaway controller that creates
	// small objects without end.
	ObjectCounts map[string]int `json:"objectCounts,omitempty"`
}

// DefaultDatastoreObjects is the default cap on ConfigMaps and on Secrets.
const DefaultDatastoreObjects = 5000

// DatastoreResourcePrefix is the etcd key prefix the tenant API server
// stores a resource under (how knestd counts objects without listing them),
// for the resources whose count the policy can cap ("configmaps",
// "deployments.apps"); ok is false for any other.
func DatastoreResourcePrefix(resource string) (prefix string, ok bool) {
	switch resource {
	case "services":
		return "/registry/services/specs/", true
	case "configmaps", "secrets", "serviceaccounts", "namespaces", "pods", "persistentvolumeclaims",
		"deployments.apps", "replicasets.apps", "statefulsets.apps", "jobs.batch", "cronjobs.batch",
		"roles.rbac.authorization.k8s.io", "rolebindings.rbac.authorization.k8s.io":
		name, _, _ := strings.Cut(resource, ".")
		return "/registry/" + name + "/", true
	}
	return "", false
}

// datastoreResources lists what DatastoreResourcePrefix knows, for messages.
func datastoreResources() []string {
	return []string{"configmaps", "cronjobs.batch", "deployments.apps", "jobs.batch", "namespaces", "persistentvolumeclaims",
		"pods", "replicasets.apps", "rolebindings.rbac.authorization.k8s.io", "roles.rbac.authorization.k8s.io",
		"secrets", "serviceaccounts", "services", "statefulsets.apps"}
}

func (d *DatastoreLimits) applyDefaults() {
	if d.ObjectCounts == nil {
		d.ObjectCounts = map[string]int{}
	}
	for _, r := range []string{"configmaps", "secrets"} {
		if _, set := d.ObjectCounts[r]; !set {
			d.ObjectCounts[r] = DefaultDatastoreObjects
		}
	}
}

func (d DatastoreLimits) validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, r := range slices.Sorted(maps.Keys(d.ObjectCounts)) {
		at := path.Child("objectCounts").Key(r)
		if _, ok := DatastoreResourcePrefix(r); !ok {
			errs = append(errs, field.NotSupported(at, r, datastoreResources()))
		}
		if d.ObjectCounts[r] <= 0 {
			errs = append(errs, field.Invalid(at, d.ObjectCounts[r], "must be positive"))
		}
	}
	return errs
}

// CheckDatastoreCount refuses one more object of a resource whose count the
// policy caps in the tenant's datastore: have is how many the tenant has.
func CheckDatastoreCount(resource string, have int, p *Policy) field.ErrorList {
	max, capped := p.Datastore.ObjectCounts[resource]
	if !capped || have < max {
		return nil
	}
	return field.ErrorList{field.Forbidden(field.NewPath("metadata"), fmt.Sprintf(
		"the tenant's datastore holds %d %s, the most %s allows; delete some, or ask the operator to raise datastore.objectCounts.%s",
		have, resource, p.Describe(), resource))}
}
