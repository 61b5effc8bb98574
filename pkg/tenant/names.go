package tenant

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/knest-dev/knest/pkg/translate"
)

// Names of the control plane's objects in the host namespace; the chart
// (charts/knest) uses the same, and its tests check that it does.
const (
	// StatefulSetName runs knestd; PodName is its only pod.
	StatefulSetName = "knestd"
	PodName         = StatefulSetName + "-0"
	// ContainerName is knestd's container in that pod.
	ContainerName = "knestd"
	// ServiceName is the host Service in front of knestd: the tenant API
	// on port 443 and DNS on port 53. Its ClusterIP is the tenant's
	// default/kubernetes Service and its pods' nameserver.
	ServiceName = "knestd"
	// ExternalServiceName is the optional LoadBalancer Service for the
	// tenant API (chart value expose.enabled).
	ExternalServiceName = "knestd-external"
	// APIPortName names the API port of the Services and of the container.
	APIPortName = "https"
	// KubeconfigSecretName holds the tenant's admin kubeconfig, published
	// by knestd once it is ready, under KubeconfigSecretKey. Its server is
	// the Service's in-cluster name.
	KubeconfigSecretName = "knestd-kubeconfig"
	KubeconfigSecretKey  = "kubeconfig"
	// EncryptionKeySecretName holds the key that encrypts the tenant's
	// Secrets at rest (base64, under EncryptionKeySecretKey), kept apart
	// from the data volume. knestd creates it at its first start.
	EncryptionKeySecretName = "knestd-encryption-key"
	EncryptionKeySecretKey  = "key"
)

// Labels of the control plane's objects. Both keys are in the reserved
// knest.io/ domain: no tenant object reaches the host with them.
const (
	// LabelComponent is "knestd" on the control plane's objects.
	LabelComponent = "knest.io/component"
	// LabelControlPlane names the tenant whose control plane an object
	// belongs to. Together with LabelComponent it selects the knestd pod.
	LabelControlPlane = "knest.io/control-plane"
	// LabelNamespaceTenant, on a host namespace, names the tenant it holds.
	LabelNamespaceTenant = "knest.io/tenant"
	// LabelCreatedBy is "knest" on a host namespace `knest create` made,
	// which `knest delete` then removes with the tenant.
	LabelCreatedBy = "knest.io/created-by"
)

// ComponentKnestd is LabelComponent's value on the control plane.
const ComponentKnestd = "knestd"

// ControlPlaneLabels are the labels of a tenant's control-plane objects.
func ControlPlaneLabels(tenant string) map[string]string {
	return map[string]string{LabelComponent: ComponentKnestd, LabelControlPlane: tenant}
}

// NamespacePrefix starts the default host namespace of a tenant.
const NamespacePrefix = "knest-"

// DefaultNamespace is the host namespace of a tenant when none is named.
func DefaultNamespace(tenant string) string { return NamespacePrefix + tenant }

// ServiceHost is the in-cluster DNS name of the Service in front of knestd,
// which its serving certificate covers.
func ServiceHost(namespace string) string { return fmt.Sprintf("%s.%s.svc", ServiceName, namespace) }

// InClusterServer is the tenant API's URL inside the host cluster: the
// server of the published kubeconfig.
func InClusterServer(namespace string) string { return "https://" + ServiceHost(namespace) + ":443" }

// OwnedSelectors select what a tenant left in its host namespace besides
// its Helm release: the objects its knestd made (control-plane label) and
// those it synced (the syncer's marker label).
func OwnedSelectors(tenant string) []string {
	return []string{
		LabelControlPlane + "=" + tenant,
		translate.LabelTenant + "=" + tenant,
	}
}

// MaxNameLength is the longest tenant name: Helm's limit on release names
// (a tenant is the release of its name), which also keeps
// DefaultNamespace within a namespace name's 63 characters.
const MaxNameLength = 53

// ValidateName checks a tenant name: a DNS label of at most MaxNameLength
// characters.
func ValidateName(name string) error {
	if len(name) > MaxNameLength {
		return fmt.Errorf("tenant name %q is longer than %d characters", name, MaxNameLength)
	}
	if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
		return fmt.Errorf("tenant name %q is invalid: use lower-case letters, digits and '-', starting and ending with a letter or digit", name)
	}
	return nil
}
