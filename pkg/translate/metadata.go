package translate

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Keys knest sets on host objects.
const (
	// LabelTenant marks every host object the syncer manages.
	LabelTenant = "knest.io/tenant"
	// LabelNamespace carries the tenant namespace, for selectors.
	LabelNamespace = "knest.io/namespace"
	// AnnotationName, AnnotationNamespace, AnnotationKind and AnnotationUID
	// identify the tenant object a host object stands for.
	AnnotationName      = "knest.io/name"
	AnnotationNamespace = "knest.io/namespace"
	AnnotationKind      = "knest.io/kind"
	AnnotationUID       = "knest.io/uid"
	// AnnotationOwnerKind carries the kind of a tenant pod's controller
	// (host pods have no owner references).
	AnnotationOwnerKind = "knest.io/owner-kind"
	// RewrittenPrefix holds tenant label and annotation keys that fall in
	// a reserved domain.
	RewrittenPrefix = "tenant.knest.io/"
)

// Object identifies a tenant object.
type Object struct {
	Kind      string
	Namespace string
	Name      string
	UID       types.UID
}

// Reserved reports whether a label or annotation key belongs to knest or to
// the host's policy machinery, so a tenant may not set it on a host object.
func Reserved(key string) bool {
	prefix, _, found := strings.Cut(key, "/")
	if !found {
		return false
	}
	switch {
	case prefix == "knest.io", strings.HasSuffix(prefix, ".knest.io"):
		return true
	case prefix == "pod-security.kubernetes.io":
		return true
	case key == "kubernetes.io/metadata.name":
		return true
	}
	return false
}

// RewriteKey maps a reserved key to one under RewrittenPrefix; other keys
// are returned as they are. The name part keeps the original key readable
// where it fits the 63-character limit and is hashed where it does not.
func RewriteKey(key string) string {
	if !Reserved(key) {
		return key
	}
	name := strings.ReplaceAll(key, "/", "_")
	if len(name) > 63 {
		sum := sha256.Sum256([]byte(key))
		name = strings.TrimRight(name[:46], "-_.") + "_" + hex.EncodeToString(sum[:])[:16]
	}
	return RewrittenPrefix + name
}

// NamespaceLabelPrefix holds, on host pods, the labels of their tenant
// namespace: a tenant NetworkPolicy's namespaceSelector becomes a pod
// selector over them, since all tenant namespaces share one host namespace.
const NamespaceLabelPrefix = "ns.knest.io/"

// NamespaceLabelKey is the host pod label key carrying tenant namespace
// label key: the key with "/" turned into "_", hashed where too long.
func NamespaceLabelKey(key string) string {
	name := strings.ReplaceAll(key, "/", "_")
	if len(name) > 63 {
		sum := sha256.Sum256([]byte(key))
		name = strings.TrimRight(name[:46], "-_.") + "_" + hex.EncodeToString(sum[:])[:16]
	}
	return NamespaceLabelPrefix + name
}

// NamespaceLabels returns the host pod labels carrying the labels of the
// pod's tenant namespace.
func NamespaceLabels(nsLabels map[string]string) map[string]string {
	out := make(map[string]string, len(nsLabels))
	for k, v := range nsLabels {
		out[NamespaceLabelKey(k)] = v
	}
	return out
}

// TenantLabels returns the labels a host object gets from the tenant
// object's labels: reserved keys rewritten, nothing dropped.
func TenantLabels(in map[string]string) map[string]string {
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[RewriteKey(k)] = v
	}
	return out
}

// HostMeta returns the labels and annotations of the host copy of obj: the
// tenant's labels (rewritten where reserved), the tenant and namespace
// labels, and the identity annotations. Tenant annotations are not copied
// here; kinds that forward annotations add them with TenantLabels' rules.
func HostMeta(tenant string, obj Object, tenantLabels map[string]string) (labels, annotations map[string]string) {
	labels = TenantLabels(tenantLabels)
	labels[LabelTenant] = tenant
	if obj.Namespace != "" {
		labels[LabelNamespace] = obj.Namespace
	}
	annotations = map[string]string{
		AnnotationName:      obj.Name,
		AnnotationNamespace: obj.Namespace,
		AnnotationKind:      obj.Kind,
		AnnotationUID:       string(obj.UID),
	}
	return labels, annotations
}

// Ownership is how a host object relates to a tenant object.
type Ownership int

const (
	// NotOurs: not a copy of this tenant object; never modify or delete it.
	NotOurs Ownership = iota
	// Ours: the host copy of this tenant object.
	Ours
	// Stale: a copy of an earlier tenant object of the same kind,
	// namespace and name (a different UID): delete it and create anew.
	Stale
)

// Owns decides whether host is the syncer's copy of obj. Marker label,
// tenant, kind, namespace and name must all match; the UID then tells a
// current copy from a stale one. An empty obj.UID (the tenant object is
// gone) accepts any UID, so the copy can be removed; a copy without a UID
// (made in admission, before the tenant object had one) is ours to adopt.
func Owns(tenant string, obj Object, host metav1.Object) Ownership {
	if host.GetLabels()[LabelTenant] != tenant {
		return NotOurs
	}
	a := host.GetAnnotations()
	if a[AnnotationKind] != obj.Kind || a[AnnotationNamespace] != obj.Namespace || a[AnnotationName] != obj.Name {
		return NotOurs
	}
	if obj.UID != "" && a[AnnotationUID] != "" && a[AnnotationUID] != string(obj.UID) {
		return Stale
	}
	return Ours
}

// IdentityOf reads the tenant identity a host object claims; ok is false
// for objects without the tenant marker.
func IdentityOf(tenant string, host metav1.Object) (obj Object, ok bool) {
	if host.GetLabels()[LabelTenant] != tenant {
		return Object{}, false
	}
	a := host.GetAnnotations()
	if a[AnnotationKind] == "" || a[AnnotationName] == "" {
		return Object{}, false
	}
	return Object{Kind: a[AnnotationKind], Namespace: a[AnnotationNamespace], Name: a[AnnotationName], UID: types.UID(a[AnnotationUID])}, true
}

// Selector rewrites a tenant label selector (a Service's, say) so it only
// matches host objects of the same tenant and tenant namespace: reserved
// keys are rewritten as on the objects, and the tenant and namespace labels
// are required. A nil or empty tenant selector stays empty: a Service
// without a selector selects nothing.
func Selector(tenant, namespace string, in map[string]string) map[string]string {
	if len(in) == 0 {
		return nil
	}
	out := TenantLabels(in)
	out[LabelTenant] = tenant
	out[LabelNamespace] = namespace
	return out
}

// Meta is the metadata the syncer owns on a host object, and whose it is.
type Meta struct {
	Name, Namespace     string
	Labels, Annotations map[string]string
	// Tenant and TenantNamespace say whose object this is, for selectors.
	Tenant, TenantNamespace string
}

// ApplyTo sets the owned metadata on a host object: name and namespace,
// exactly the owned labels, and the owned annotations (other annotations,
// which host admission may add, are kept).
func (m Meta) ApplyTo(obj metav1.Object) {
	obj.SetName(m.Name)
	obj.SetNamespace(m.Namespace)
	labels := make(map[string]string, len(m.Labels))
	for k, v := range m.Labels {
		labels[k] = v
	}
	obj.SetLabels(labels)
	annotations := obj.GetAnnotations()
	if annotations == nil {
		annotations = make(map[string]string, len(m.Annotations))
	}
	for k, v := range m.Annotations {
		annotations[k] = v
	}
	obj.SetAnnotations(annotations)
}

// IsAPIServerService reports whether a tenant Service is the tenant's own
// "kubernetes" Service, which the tenant API server manages itself and which
// must never get a host copy.
func IsAPIServerService(namespace, name string) bool {
	return namespace == metav1.NamespaceDefault && name == "kubernetes"
}
