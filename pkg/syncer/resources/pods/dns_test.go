package pods

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestDNSConfig(t *testing.T) {
	t.Parallel()
	tenantDNS := DNS{Nameserver: "10.96.0.53", ClusterDomain: "cluster.local"}
	pod := func(policy corev1.DNSPolicy, cfg *corev1.PodDNSConfig) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "shop"},
			Spec:       corev1.PodSpec{DNSPolicy: policy, DNSConfig: cfg},
		}
	}
	clusterFirst := func(tweak func(*corev1.PodDNSConfig)) *corev1.PodDNSConfig {
		c := &corev1.PodDNSConfig{
			Nameservers: []string{"10.96.0.53"},
			Searches:    []string{"shop.svc.cluster.local", "svc.cluster.local", "cluster.local"},
			Options:     []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("5")}},
		}
		if tweak != nil {
			tweak(c)
		}
		return c
	}
	manySearches := make([]string, 40)
	for i := range manySearches {
		manySearches[i] = fmt.Sprintf("s%d.example", i)
	}
	longSearches := []string{strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 60)}
	for len(strings.Join(longSearches, " ")) < maxSearchListSize {
		longSearches = append(longSearches, fmt.Sprintf("%d%s", len(longSearches), longSearches[0][2:]))
	}

	tests := []struct {
		name       string
		pod        *corev1.Pod
		dns        DNS
		wantPolicy corev1.DNSPolicy
		wantConfig *corev1.PodDNSConfig
	}{
		{
			name: "a ClusterFirst pod uses the tenant's DNS with its namespace's search path",
			pod:  pod(corev1.DNSClusterFirst, nil), dns: tenantDNS,
			wantPolicy: corev1.DNSNone, wantConfig: clusterFirst(nil),
		},
		{
			name: "a pod without a policy is ClusterFirst",
			pod:  pod("", nil), dns: tenantDNS,
			wantPolicy: corev1.DNSNone, wantConfig: clusterFirst(nil),
		},
		{
			name: "ClusterFirstWithHostNet is ClusterFirst off the host network",
			pod:  pod(corev1.DNSClusterFirstWithHostNet, nil), dns: tenantDNS,
			wantPolicy: corev1.DNSNone, wantConfig: clusterFirst(nil),
		},
		{
			name: "the tenant domain is used as configured, a trailing dot or not",
			pod:  pod(corev1.DNSClusterFirst, nil), dns: DNS{Nameserver: "10.96.0.53", ClusterDomain: "acme.internal."},
			wantPolicy: corev1.DNSNone,
			wantConfig: clusterFirst(func(c *corev1.PodDNSConfig) {
				c.Searches = []string{"shop.svc.acme.internal", "svc.acme.internal", "acme.internal"}
			}),
		},
		{
			name: "a ClusterFirst pod's own dnsConfig is merged after the tenant's, as a kubelet does",
			pod: pod(corev1.DNSClusterFirst, &corev1.PodDNSConfig{
				Nameservers: []string{"1.1.1.1", "10.96.0.53"},
				Searches:    []string{"corp.example", "svc.cluster.local"},
				Options:     []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("2")}, {Name: "edns0"}},
			}),
			dns:        tenantDNS,
			wantPolicy: corev1.DNSNone,
			wantConfig: clusterFirst(func(c *corev1.PodDNSConfig) {
				c.Nameservers = []string{"10.96.0.53", "1.1.1.1"}
				c.Searches = append(c.Searches, "corp.example")
				c.Options = []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("2")}, {Name: "edns0"}}
			}),
		},
		{
			name: "a merged configuration is cut to the API's limits instead of being refused by the host",
			pod: pod(corev1.DNSClusterFirst, &corev1.PodDNSConfig{
				Nameservers: []string{"1.1.1.1", "8.8.8.8", "9.9.9.9"},
				Searches:    manySearches,
			}),
			dns:        tenantDNS,
			wantPolicy: corev1.DNSNone,
			wantConfig: clusterFirst(func(c *corev1.PodDNSConfig) {
				c.Nameservers = []string{"10.96.0.53", "1.1.1.1", "8.8.8.8"}
				c.Searches = append(c.Searches, manySearches[:maxSearches-3]...)
			}),
		},
		{
			name: "long search domains are cut to the API's length limit",
			pod:  pod(corev1.DNSClusterFirst, &corev1.PodDNSConfig{Searches: longSearches}),
			dns:  tenantDNS, wantPolicy: corev1.DNSNone,
			wantConfig: func() *corev1.PodDNSConfig {
				c := clusterFirst(nil)
				for _, s := range longSearches {
					if len(strings.Join(append(c.Searches, s), " ")) > maxSearchListSize {
						break
					}
					c.Searches = append(c.Searches, s)
				}
				return c
			}(),
		},
		{
			name: "a pod with policy None keeps its own configuration",
			pod:  pod(corev1.DNSNone, &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}, Searches: []string{"corp.example"}}),
			dns:  tenantDNS, wantPolicy: corev1.DNSNone,
			wantConfig: &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}, Searches: []string{"corp.example"}},
		},
		{
			name: "a pod with policy Default resolves through the tenant's DNS, never the host node's resolver, with its own configuration",
			pod:  pod(corev1.DNSDefault, &corev1.PodDNSConfig{Searches: []string{"corp.example"}}),
			dns:  tenantDNS, wantPolicy: corev1.DNSNone,
			wantConfig: &corev1.PodDNSConfig{Nameservers: []string{tenantDNS.Nameserver}, Searches: []string{"corp.example"}},
		},
		{
			name: "without a tenant DNS server a ClusterFirst pod is left to the host's DNS",
			pod:  pod(corev1.DNSClusterFirst, &corev1.PodDNSConfig{Searches: []string{"corp.example"}}),
			dns:  DNS{ClusterDomain: "cluster.local"}, wantPolicy: corev1.DNSClusterFirst,
			wantConfig: &corev1.PodDNSConfig{Searches: []string{"corp.example"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			before := tc.pod.DeepCopy()
			policy, cfg := DNSConfig(tc.pod, tc.dns)
			if policy != tc.wantPolicy {
				t.Errorf("dnsPolicy = %q, want %q", policy, tc.wantPolicy)
			}
			if diff := cmp.Diff(tc.wantConfig, cfg); diff != "" {
				t.Errorf("dnsConfig (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, tc.pod); diff != "" {
				t.Errorf("DNSConfig mutated the tenant pod:\n%s", diff)
			}
			if cfg != nil {
				if len(cfg.Nameservers) > maxNameservers || len(cfg.Searches) > maxSearches || len(strings.Join(cfg.Searches, " ")) > maxSearchListSize {
					t.Errorf("dnsConfig is over the API's limits: %d nameservers, %d searches", len(cfg.Nameservers), len(cfg.Searches))
				}
			}
		})
	}
}

func TestForwardPointsANewPodAtTheTenantsDNS(t *testing.T) {
	t.Parallel()
	env := Env{DNS: DNS{Nameserver: "10.96.0.53", ClusterDomain: "cluster.local"}}
	got := Forward(tenantPod(), nil, meta, env)
	if got.Spec.DNSPolicy != corev1.DNSNone || got.Spec.DNSConfig == nil || got.Spec.DNSConfig.Nameservers[0] != "10.96.0.53" {
		t.Errorf("host pod DNS: policy %q config %+v, want None with nameserver 10.96.0.53", got.Spec.DNSPolicy, got.Spec.DNSConfig)
	}
	// The spec of a running pod is fixed: an existing host pod keeps its DNS.
	again := Forward(tenantPod(), got, meta, Env{})
	if diff := cmp.Diff(got.Spec.DNSConfig, again.Spec.DNSConfig); diff != "" || again.Spec.DNSPolicy != got.Spec.DNSPolicy {
		t.Errorf("forwarding onto the host pod changed its DNS:\n%s", diff)
	}
}
