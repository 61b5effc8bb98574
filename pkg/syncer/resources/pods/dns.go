package pods

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// The API's limits on a pod's dnsConfig, which a merged configuration must
// stay within or the host refuses the pod.
const (
	maxNameservers    = 3
	maxSearches       = 32
	maxSearchListSize = 2048
	// ndots is what the kubelet gives ClusterFirst pods, so that
	// "svc.ns" and "svc.ns.svc" are tried with the search path first.
	ndots = "5"
)

// DNS is the tenant's DNS server as host pods reach it.
type DNS struct {
	// Nameserver is the host ClusterIP of the Service in front of knestd's
	// DNS server; "" leaves host pods' DNS to the host.
	Nameserver string
	// ClusterDomain is the tenant's cluster domain.
	ClusterDomain string
}

// DNSConfig returns the host pod's dnsPolicy and dnsConfig for tenant pod
// p. A ClusterFirst pod (the default) gets what a kubelet would give it with
// the tenant's DNS server as the cluster DNS: policy None, the nameserver,
// the tenant's search path for the pod's namespace and ndots 5, merged with
// the pod's own dnsConfig as a kubelet merges them. A Default pod, which
// upstream gives the node's resolver, gets the tenant's DNS server without
// the cluster search path: it resolves outside names as before (knestd's
// server forwards them) but never through the host node's resolver, which
// may answer for host-internal names. None, and every policy when there is
// no nameserver, are forwarded as they are.
func DNSConfig(p *corev1.Pod, dns DNS) (corev1.DNSPolicy, *corev1.PodDNSConfig) {
	policy := p.Spec.DNSPolicy
	if policy == "" {
		policy = corev1.DNSClusterFirst
	}
	own := p.Spec.DNSConfig.DeepCopy()
	// A pod off the host network treats ClusterFirstWithHostNet as
	// ClusterFirst, and host pods never are on it.
	clusterFirst := policy == corev1.DNSClusterFirst || policy == corev1.DNSClusterFirstWithHostNet
	if (!clusterFirst && policy != corev1.DNSDefault) || dns.Nameserver == "" {
		return policy, own
	}
	out := &corev1.PodDNSConfig{Nameservers: []string{dns.Nameserver}}
	if clusterFirst {
		domain := strings.TrimSuffix(dns.ClusterDomain, ".")
		out.Searches = []string{p.Namespace + ".svc." + domain, "svc." + domain, domain}
		out.Options = []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To(ndots)}}
	}
	if own != nil {
		out.Nameservers = appendNew(out.Nameservers, own.Nameservers)
		out.Searches = appendNew(out.Searches, own.Searches)
		for _, o := range own.Options {
			// The pod's own option wins over the default of that name.
			if i := slices.IndexFunc(out.Options, func(d corev1.PodDNSConfigOption) bool { return d.Name == o.Name }); i >= 0 {
				out.Options[i] = o
			} else {
				out.Options = append(out.Options, o)
			}
		}
	}
	// Past the limits the kubelet drops the last entries; the host API
	// server would refuse the pod instead.
	if len(out.Nameservers) > maxNameservers {
		out.Nameservers = out.Nameservers[:maxNameservers]
	}
	if len(out.Searches) > maxSearches {
		out.Searches = out.Searches[:maxSearches]
	}
	for len(strings.Join(out.Searches, " ")) > maxSearchListSize {
		out.Searches = out.Searches[:len(out.Searches)-1]
	}
	return corev1.DNSNone, out
}

// appendNew appends the entries of more that list does not hold yet.
func appendNew(list, more []string) []string {
	for _, s := range more {
		if !slices.Contains(list, s) {
			list = append(list, s)
		}
	}
	return list
}
