package dns

import (
	"context"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Source is what the server answers from: the tenant's Services and
// EndpointSlices. It is read on every query, so answers follow the tenant's
// objects as fast as the Source does; nothing is cached here.
type Source interface {
	// Service returns the Service namespace/name, or nil if there is none.
	Service(ctx context.Context, namespace, name string) (*corev1.Service, error)
	// Services lists the Services of a namespace.
	Services(ctx context.Context, namespace string) ([]corev1.Service, error)
	// EndpointSlices lists the EndpointSlices of a Service (those labelled
	// kubernetes.io/service-name=service in its namespace).
	EndpointSlices(ctx context.Context, namespace, service string) ([]discoveryv1.EndpointSlice, error)
	// ServicesByIP lists the Services, in any namespace, that have ip among
	// their spec.clusterIPs. ip is in netip.Addr.String form.
	ServicesByIP(ctx context.Context, ip string) ([]corev1.Service, error)
	// EndpointSlicesByIP lists the EndpointSlices, in any namespace, that
	// have an endpoint with address ip. ip is in netip.Addr.String form.
	EndpointSlicesByIP(ctx context.Context, ip string) ([]discoveryv1.EndpointSlice, error)
}

// Field indexes that ClientSource needs on its cache; RegisterIndexes adds
// them. Their values are IPs in netip.Addr.String form, so that an IPv6
// address written another way in an object still matches a reverse lookup.
const (
	// IndexServiceClusterIP indexes Services by each of spec.clusterIPs.
	IndexServiceClusterIP = "knest.io/dns-service-cluster-ip"
	// IndexEndpointIP indexes EndpointSlices by each endpoint address.
	IndexEndpointIP = "knest.io/dns-endpoint-ip"
)

// RegisterIndexes adds the field indexes ClientSource needs to the indexer
// of the cache it will read (a cache.Cache, or a manager's or cluster's
// GetFieldIndexer()). Call it before the cache starts.
func RegisterIndexes(ctx context.Context, indexer client.FieldIndexer) error {
	if err := indexer.IndexField(ctx, &corev1.Service{}, IndexServiceClusterIP, func(o client.Object) []string {
		return serviceClusterIPs(o.(*corev1.Service))
	}); err != nil {
		return fmt.Errorf("failed to index Services by cluster IP: %w", err)
	}
	if err := indexer.IndexField(ctx, &discoveryv1.EndpointSlice{}, IndexEndpointIP, func(o client.Object) []string {
		return endpointIPs(o.(*discoveryv1.EndpointSlice))
	}); err != nil {
		return fmt.Errorf("failed to index EndpointSlices by endpoint IP: %w", err)
	}
	return nil
}

// serviceClusterIPs returns the cluster IPs of a Service in canonical form;
// none for headless and ExternalName Services.
func serviceClusterIPs(svc *corev1.Service) []string {
	var out []string
	for _, a := range clusterAddrs(svc) {
		out = append(out, a.String())
	}
	return out
}

// endpointIPs returns every endpoint address of an IP-typed slice in
// canonical form.
func endpointIPs(slice *discoveryv1.EndpointSlice) []string {
	if slice.AddressType == discoveryv1.AddressTypeFQDN {
		return nil
	}
	var out []string
	for _, ep := range slice.Endpoints {
		for _, s := range ep.Addresses {
			if a, err := netip.ParseAddr(s); err == nil {
				out = append(out, a.String())
			}
		}
	}
	return out
}

// ClientSource is a Source over a controller-runtime client.Reader. Give it
// a cache (informers) on the tenant API server that watches Services and
// EndpointSlices and has the indexes of RegisterIndexes; a direct API client
// would work too but turns every query into API requests.
type ClientSource struct {
	Reader client.Reader
}

var _ Source = ClientSource{}

// Service implements Source.
func (s ClientSource) Service(ctx context.Context, namespace, name string) (*corev1.Service, error) {
	var svc corev1.Service
	err := s.Reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &svc)
	if kerrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to get Service %s/%s in tenant cluster: %w", namespace, name, err)
	}
	return &svc, nil
}

// Services implements Source.
func (s ClientSource) Services(ctx context.Context, namespace string) ([]corev1.Service, error) {
	var list corev1.ServiceList
	if err := s.Reader.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("failed to list Services in namespace %s of tenant cluster: %w", namespace, err)
	}
	return list.Items, nil
}

// EndpointSlices implements Source.
func (s ClientSource) EndpointSlices(ctx context.Context, namespace, service string) ([]discoveryv1.EndpointSlice, error) {
	var list discoveryv1.EndpointSliceList
	if err := s.Reader.List(ctx, &list, client.InNamespace(namespace),
		client.MatchingLabels{discoveryv1.LabelServiceName: service}); err != nil {
		return nil, fmt.Errorf("failed to list EndpointSlices of Service %s/%s in tenant cluster: %w", namespace, service, err)
	}
	return list.Items, nil
}

// ServicesByIP implements Source.
func (s ClientSource) ServicesByIP(ctx context.Context, ip string) ([]corev1.Service, error) {
	var list corev1.ServiceList
	if err := s.Reader.List(ctx, &list, client.MatchingFields{IndexServiceClusterIP: ip}); err != nil {
		return nil, fmt.Errorf("failed to list Services with cluster IP %s in tenant cluster: %w", ip, err)
	}
	return list.Items, nil
}

// EndpointSlicesByIP implements Source.
func (s ClientSource) EndpointSlicesByIP(ctx context.Context, ip string) ([]discoveryv1.EndpointSlice, error) {
	var list discoveryv1.EndpointSliceList
	if err := s.Reader.List(ctx, &list, client.MatchingFields{IndexEndpointIP: ip}); err != nil {
		return nil, fmt.Errorf("failed to list EndpointSlices with endpoint IP %s in tenant cluster: %w", ip, err)
	}
	return list.Items, nil
}
