// Package hostservices is an admission plugin compiled into the tenant
// kube-apiserver. It makes tenant Services carry host ClusterIPs: when a
// tenant creates a ClusterIP Service, the plugin first creates the host copy
// (the host allocates its IP), then writes that IP into the tenant Service,
// so that addresses handed out to tenant pods route on the host. A Service's
// ClusterIP is immutable and the tenant's allocator runs at create time,
// which is why this happens in admission rather than in the syncer. The
// tenant's service CIDR is the host's, so the host's IP is always valid in
// the tenant.
//
// It also refuses what the host would not run for a tenant: NodePort,
// LoadBalancer and ExternalName Services, externalIPs, ClusterIPs chosen by
// the tenant, and ServiceCIDR or IPAddress objects created by anyone but the
// tenant API server itself. The plugin is registered in-process and enabled in every
// configuration, last among the mutating plugins so that no tenant webhook can
// change the IP or the type after it; tenants cannot remove it.
//
// A host copy whose tenant create fails afterwards is an orphan; the syncer
// removes it once it is older than its grace period.
package hostservices

import (
	"context"
	"errors"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/storage/names"
	"k8s.io/client-go/kubernetes"
	core "k8s.io/kubernetes/pkg/apis/core"

	"github.com/knest-dev/knest/pkg/translate"
)

// PluginName is the admission plugin's name.
const PluginName = "KnestHostServices"

// Plugin creates host Services for tenant Services.
type Plugin struct {
	*admission.Handler
	host          kubernetes.Interface
	tenant        string
	hostNamespace string
}

var _ admission.MutationInterface = &Plugin{}

// NewFactory returns the plugin factory for a tenant syncing into
// hostNamespace through host.
func NewFactory(host kubernetes.Interface, tenant, hostNamespace string) admission.Factory {
	return func(io.Reader) (admission.Interface, error) {
		return &Plugin{Handler: admission.NewHandler(admission.Create), host: host, tenant: tenant, hostNamespace: hostNamespace}, nil
	}
}

// Check says what the host would refuse about a tenant Service, or nil.
func Check(namespace string, svc *core.Service) error {
	if translate.IsAPIServerService(namespace, svc.Name) {
		return nil
	}
	switch svc.Spec.Type {
	case core.ServiceTypeClusterIP, "":
	default:
		return fmt.Errorf("spec.type %s is not allowed for tenant Services: only ClusterIP (including headless) Services run on the host", svc.Spec.Type)
	}
	if len(svc.Spec.ExternalIPs) > 0 {
		return fmt.Errorf("spec.externalIPs %v is not allowed for tenant Services: it would claim host addresses", svc.Spec.ExternalIPs)
	}
	if svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != core.ClusterIPNone {
		return fmt.Errorf("spec.clusterIP %s cannot be chosen: tenant Services get their ClusterIP from the host cluster; leave it empty", svc.Spec.ClusterIP)
	}
	return nil
}

// serviceIPResources are the objects that define or claim service IPs.
// Only the tenant API server itself (its allocator and default-CIDR
// controller, through its loopback client) may create them: the tenant's
// service network is the host's, and its addresses are handed out by the
// host.
var serviceIPResources = map[schema.GroupResource]bool{
	{Group: "networking.k8s.io", Resource: "servicecidrs"}: true,
	{Group: "networking.k8s.io", Resource: "ipaddresses"}:  true,
}

// Admit refuses what the host would not run and gives ClusterIP Services
// their host IP.
func (p *Plugin) Admit(ctx context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	if serviceIPResources[a.GetResource().GroupResource()] {
		if a.GetUserInfo() == nil || a.GetUserInfo().GetName() != user.APIServerUser {
			return admission.NewForbidden(a, fmt.Errorf("%s are managed by the host cluster: tenant Services get their ClusterIPs from the host", a.GetResource().Resource))
		}
		return nil
	}
	if a.GetResource().GroupResource() != core.Resource("services") || a.GetSubresource() != "" {
		return nil
	}
	svc, ok := a.GetObject().(*core.Service)
	if !ok {
		return apierrors.NewBadRequest("resource was marked with kind Service but was unable to be converted")
	}
	if err := Check(a.GetNamespace(), svc); err != nil {
		return admission.NewForbidden(a, err)
	}
	if translate.IsAPIServerService(a.GetNamespace(), svc.Name) || svc.Spec.ClusterIP == core.ClusterIPNone || a.IsDryRun() {
		return nil
	}
	if svc.Name == "" {
		if svc.GenerateName == "" {
			// Validation refuses it after admission, with its own message.
			return nil
		}
		// The registry generates a name only after mutating admission, but
		// the host copy is named after the tenant Service: generate it now,
		// as the registry would, or every generated Service would share one
		// host copy (and its IP).
		svc.Name = names.SimpleNameGenerator.GenerateName(svc.GenerateName)
	}
	host, err := p.ensureHostService(ctx, a.GetNamespace(), svc)
	if err != nil {
		return admission.NewForbidden(a, err)
	}
	svc.Spec.ClusterIP = host.Spec.ClusterIP
	svc.Spec.ClusterIPs = append([]string(nil), host.Spec.ClusterIPs...)
	return nil
}

// ensureHostService creates the host copy, or adopts one this plugin made
// for an earlier attempt at the same Service that failed after admission.
func (p *Plugin) ensureHostService(ctx context.Context, namespace string, svc *core.Service) (*corev1.Service, error) {
	desired := HostService(p.tenant, p.hostNamespace, namespace, svc)
	created, err := p.host.CoreV1().Services(p.hostNamespace).Create(ctx, desired, metav1.CreateOptions{})
	if err == nil {
		return created, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("failed to create the host Service: %w", err)
	}
	existing, err := p.host.CoreV1().Services(p.hostNamespace).Get(ctx, desired.Name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("failed to read the host Service: %w", err)
	}
	id := translate.Object{Kind: "Service", Namespace: namespace, Name: svc.Name}
	if translate.Owns(p.tenant, id, existing) == translate.NotOurs {
		return nil, fmt.Errorf("host Service %s/%s exists and is not managed by knest", p.hostNamespace, desired.Name)
	}
	if existing.Annotations[translate.AnnotationUID] != "" {
		// The copy of an earlier, stored Service of this name that the
		// syncer has not removed yet: it must not lend its IP to a new one.
		return nil, errors.New("the host copy of an earlier Service of this name is still being removed; retry in a few seconds")
	}
	return existing, nil
}

// HostService returns the host copy of a tenant Service at creation: ports
// and session affinity as the tenant set them, the selector confined to the
// tenant namespace's pods, type ClusterIP, and no UID yet (the tenant object
// has none before it is stored; the syncer fills it in).
func HostService(tenant, hostNamespace, namespace string, svc *core.Service) *corev1.Service {
	id := translate.Object{Kind: "Service", Namespace: namespace, Name: svc.Name}
	// The syncer adds the operator's allowlisted metadata once the Service
	// is stored; the copy made here only needs to exist.
	labels, annotations := translate.HostMeta(tenant, id, svc.Labels, nil, translate.Passthrough{})
	out := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name:        translate.HostName(tenant, namespace, svc.Name, translate.MaxLabelLength),
			Namespace:   hostNamespace,
			Labels:      labels,
			Annotations: annotations,
		},
		Spec: corev1.ServiceSpec{
			Type:                     corev1.ServiceTypeClusterIP,
			Selector:                 translate.Selector(tenant, namespace, svc.Spec.Selector),
			SessionAffinity:          corev1.ServiceAffinity(svc.Spec.SessionAffinity),
			PublishNotReadyAddresses: svc.Spec.PublishNotReadyAddresses,
		},
	}
	for _, port := range svc.Spec.Ports {
		out.Spec.Ports = append(out.Spec.Ports, corev1.ServicePort{
			Name:        port.Name,
			Protocol:    corev1.Protocol(port.Protocol),
			AppProtocol: port.AppProtocol,
			Port:        port.Port,
			TargetPort:  intstr.IntOrString(port.TargetPort),
		})
	}
	return out
}
