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
	// TenantLabelPrefix holds, on host objects, the tenant's labels whose
	// keys have no prefix ("app" -> "t.knest.io/app").
	TenantLabelPrefix = "t.knest.io/"
	// TenantPrefixedLabelPrefix holds the tenant's labels whose keys have a
	// prefix ("app.kubernetes.io/name" -> "tp.knest.io/app.kubernetes.io_name").
	TenantPrefixedLabelPrefix = "tp.knest.io/"
	// AnnotationTenantPrefix holds, on host pods, tenant annotations the
	// pod's downward API reads.
	AnnotationTenantPrefix = "ta.knest.io/"
)

// Object identifies a tenant object.
type Object struct {
	Kind      string
	Namespace string
	Name      string
	UID       types.UID
}

// TenantKey is the key a tenant label key has on host objects: under
// knest's own domain, so nothing on the host (container runtimes, CNI
// plugins, service meshes, autoscalers) acts on a label the tenant wrote,
// and no tenant label can pose as one of knest's marks. Keys without a
// prefix go under TenantLabelPrefix, keys with one under
// TenantPrefixedLabelPrefix with "/" turned into "_" (a prefix is a DNS
// name and has no "_", so the mapping is injective); names past 63
// characters are cut and end in a hash of the whole key.
func TenantKey(key string) string {
	prefix, name, found := strings.Cut(key, "/")
	if !found {
		return TenantLabelPrefix + fitName(key, key)
	}
	return TenantPrefixedLabelPrefix + fitName(prefix+"_"+name, key)
}

// TenantAnnotationKey is the key a tenant annotation has on a host pod
// whose downward API reads it; built like TenantKey's.
func TenantAnnotationKey(key string) string {
	return AnnotationTenantPrefix + fitName(strings.ReplaceAll(key, "/", "_"), key)
}

// fitName returns name if it fits a key's 63-character name part, else its
// start and a hash of key.
func fitName(name, key string) string {
	if len(name) <= 63 {
		return name
	}
	sum := sha256.Sum256([]byte(key))
	return strings.TrimRight(name[:46], "-_.") + "_" + hex.EncodeToString(sum[:])[:16]
}

// Passthrough decides which tenant label and annotation keys reach host
// objects as they are (the operator's allowlist); nil allows none.
type Passthrough struct {
	Label, Annotation func(key string) bool
}

// NamespaceLabelPrefix holds, on host pods, the labels of their tenant
// namespace: a tenant NetworkPolicy's namespaceSelector becomes a pod
// selector over them, since all tenant namespaces share one host namespace.
const NamespaceLabelPrefix = "ns.knest.io/"

// NamespaceLabelKey is the host pod label key carrying tenant namespace
// label key: the key with "/" turned into "_", hashed where too long.
func NamespaceLabelKey(key string) string {
	return NamespaceLabelPrefix + fitName(strings.ReplaceAll(key, "/", "_"), key)
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
// object's labels: each under TenantKey, and the allowlisted ones also as
// they are.
func TenantLabels(in map[string]string, pass Passthrough) map[string]string {
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[TenantKey(k)] = v
		if pass.Label != nil && pass.Label(k) {
			out[k] = v
		}
	}
	return out
}

// HostMeta returns the labels and annotations of the host copy of obj:
// the tenant's labels under knest's keys (and the allowlisted ones as they
// are), the tenant and namespace labels, the allowlisted tenant
// annotations, and the identity annotations. knest's own keys are set last,
// so nothing of the tenant's can replace them.
func HostMeta(tenant string, obj Object, tenantLabels, tenantAnnotations map[string]string, pass Passthrough) (labels, annotations map[string]string) {
	labels = TenantLabels(tenantLabels, pass)
	labels[LabelTenant] = tenant
	if obj.Namespace != "" {
		labels[LabelNamespace] = obj.Namespace
	}
	annotations = map[string]string{}
	if pass.Annotation != nil {
		for k, v := range tenantAnnotations {
			if pass.Annotation(k) {
				annotations[k] = v
			}
		}
	}
	annotations[AnnotationName] = obj.Name
	annotations[AnnotationNamespace] = obj.Namespace
	annotations[AnnotationKind] = obj.Kind
	annotations[AnnotationUID] = string(obj.UID)
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
// matches host objects of the same tenant and tenant namespace: keys are
// mapped as on the objects (TenantKey), and the tenant and namespace labels
// are required. A nil or empty tenant selector stays empty: a Service
// without a selector selects nothing.
func Selector(tenant, namespace string, in map[string]string) map[string]string {
	if len(in) == 0 {
		return nil
	}
	out := TenantLabels(in, Passthrough{})
	out[LabelTenant] = tenant
	out[LabelNamespace] = namespace
	return out
}

// ConfineSelector maps a tenant label selector's keys to the keys host
// objects carry them under (TenantKey) and requires the tenant's marker,
// and the tenant namespace unless namespace is nil. A nil selector is nil.
func ConfineSelector(in *metav1.LabelSelector, tenant string, namespace *string) *metav1.LabelSelector {
	if in == nil {
		return nil
	}
	out := &metav1.LabelSelector{MatchLabels: make(map[string]string, len(in.MatchLabels)+2)}
	for k, v := range in.MatchLabels {
		out.MatchLabels[TenantKey(k)] = v
	}
	for _, e := range in.MatchExpressions {
		e = *e.DeepCopy()
		e.Key = TenantKey(e.Key)
		out.MatchExpressions = append(out.MatchExpressions, e)
	}
	out.MatchLabels[LabelTenant] = tenant
	if namespace != nil {
		out.MatchLabels[LabelNamespace] = *namespace
	}
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
