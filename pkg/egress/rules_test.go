package egress

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeResolver answers from a table; unknown names do not resolve.
type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	ips, ok := f[host]
	if !ok {
		return nil, errors.New("no such host")
	}
	var out []netip.Addr
	for _, ip := range ips {
		out = append(out, netip.MustParseAddr(ip))
	}
	return out, nil
}

// fakeTenant owns the addresses of its table.
type fakeTenant map[string]string

func (f fakeTenant) TenantAddress(_ context.Context, ip netip.Addr) (string, error) {
	if owner, ok := f["error"]; ok {
		return "", errors.New(owner)
	}
	return f[ip.String()], nil
}

const tenantPodIP, tenantPodIPv6, tenantServiceIP = "10.244.1.5", "fd00:10:244::5", "10.96.40.7"

func newRules(t *testing.T, tweaks ...func(*Rules)) *Rules {
	t.Helper()
	r := &Rules{Tenant: "acme", CIDRs: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}}
	r.SetKubelet(netip.MustParseAddrPort("192.0.2.10:10250"))
	r.SetTenantAddresses(fakeTenant{tenantPodIP: "pod default/web", tenantPodIPv6: "pod default/web", tenantServiceIP: "service default/web"})
	for _, tweak := range tweaks {
		tweak(r)
	}
	return r
}

func unsynced(r *Rules) { r.tenant.Store(nil) }

func TestCheck(t *testing.T) {
	t.Parallel()
	resolver := fakeResolver{
		"web.acme.example":   {tenantPodIP, tenantServiceIP},
		"mixed.acme.example": {tenantPodIP, "10.96.0.1"},
		"v6.acme.example":    {tenantPodIPv6},
		"empty.example":      {},
	}
	tests := []struct {
		name   string
		rules  []func(*Rules)
		target string
		want   []string
		// wantReason and wantMessage describe a refusal; every string of
		// wantMessage must be in it.
		wantReason  string
		wantMessage []string
	}{
		{name: "a tenant pod's IP is allowed, on any port", target: tenantPodIP + ":8080", want: []string{tenantPodIP + ":8080"}},
		{name: "a tenant Service's ClusterIP is allowed", target: tenantServiceIP + ":443", want: []string{tenantServiceIP + ":443"}},
		{name: "a tenant pod's IPv6 address is allowed", target: "[" + tenantPodIPv6 + "]:80", want: []string{"[" + tenantPodIPv6 + "]:80"}},
		{name: "a tenant pod's IPv4 address written as IPv4-mapped IPv6 is allowed, and dialled as IPv4", target: "[::ffff:" + tenantPodIP + "]:80", want: []string{tenantPodIP + ":80"}},
		{name: "knestd's kubelet listener is allowed", target: "192.0.2.10:10250", want: []string{"192.0.2.10:10250"}},
		{name: "an address in the operator's networks is allowed", target: "203.0.113.9:443", want: []string{"203.0.113.9:443"}},
		{name: "a name resolving to tenant addresses only is allowed, and its addresses are dialled in order", target: "web.acme.example:80", want: []string{tenantPodIP + ":80", tenantServiceIP + ":80"}},
		{name: "a name resolving to a tenant IPv6 address is allowed", target: "v6.acme.example:80", want: []string{"[" + tenantPodIPv6 + "]:80"}},

		{name: "the host API server's Service IP is refused, naming the target and the rule", target: "10.96.0.1:443",
			wantReason: ReasonNotAllowed, wantMessage: []string{"10.96.0.1:443", "not a running pod or a Service of tenant acme"}},
		{name: "loopback is refused", target: "127.0.0.1:2379",
			wantReason: ReasonNotAllowed, wantMessage: []string{"127.0.0.1"}},
		{name: "an IPv6 address outside the tenant is refused", target: "[fd00:10:244::99]:80",
			wantReason: ReasonNotAllowed, wantMessage: []string{"fd00:10:244::99"}},
		{name: "a name resolving to a tenant pod and the host API server is refused whole, naming the other address", target: "mixed.acme.example:443",
			wantReason: ReasonNotAllowed, wantMessage: []string{"mixed.acme.example resolves to 10.96.0.1"}},
		{name: "the kubelet listener's address on another port is refused, naming both ports", target: "192.0.2.10:22",
			wantReason: ReasonNotAllowed, wantMessage: []string{"kubelet API address, whose port is 10250, not 22"}},
		{name: "the unspecified address is refused even when an operator network holds everything", target: "0.0.0.0:10250",
			rules:      []func(*Rules){func(r *Rules) { r.CIDRs = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")} }},
			wantReason: ReasonNotAllowed, wantMessage: []string{"0.0.0.0"}},
		{name: "before the host caches have synced a tenant pod's IP is refused, saying so", target: tenantPodIP + ":8080", rules: []func(*Rules){unsynced},
			wantReason: ReasonNotAllowed, wantMessage: []string{"not yet synced"}},
		{name: "before the host caches have synced the kubelet listener is allowed", target: "192.0.2.10:10250", rules: []func(*Rules){unsynced},
			want: []string{"192.0.2.10:10250"}},
		{name: "before the host caches have synced an operator network is allowed", target: "203.0.113.9:443", rules: []func(*Rules){unsynced},
			want: []string{"203.0.113.9:443"}},
		{name: "without a kubelet listener (knestd without a host) its former address is refused", target: "192.0.2.10:10250",
			rules:      []func(*Rules){unsynced, func(r *Rules) { r.kubelet.Store(nil) }},
			wantReason: ReasonNotAllowed},
		{name: "a failed lookup of the tenant's addresses refuses", target: "10.1.2.3:80",
			rules:      []func(*Rules){func(r *Rules) { r.SetTenantAddresses(fakeTenant{"error": "cache gone"}) }},
			wantReason: ReasonLookupFailed, wantMessage: []string{"cache gone"}},

		{name: "a name that does not resolve is refused", target: "nowhere.example:443", wantReason: ReasonUnresolved, wantMessage: []string{"nowhere.example does not resolve"}},
		{name: "a name that resolves to nothing is refused", target: "empty.example:443", wantReason: ReasonUnresolved},
		{name: "a target without a port is malformed", target: tenantPodIP, wantReason: ReasonMalformed, wantMessage: []string{"host:port"}},
		{name: "port 0 is malformed", target: tenantPodIP + ":0", wantReason: ReasonMalformed},
		{name: "a named port is malformed", target: tenantPodIP + ":https", wantReason: ReasonMalformed},
		{name: "a port beyond 65535 is malformed", target: tenantPodIP + ":65536", wantReason: ReasonMalformed},
		{name: "an empty host is malformed", target: ":80", wantReason: ReasonMalformed},
		{name: "an IPv6 zone is malformed", target: "[fe80::1%eth0]:80", wantReason: ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := newRules(t, tt.rules...).Check(t.Context(), resolver, tt.target)
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("Check(%s) refused: %v", tt.target, err)
				}
				var gotText []string
				for _, a := range got {
					gotText = append(gotText, a.String())
				}
				if diff := cmp.Diff(tt.want, gotText); diff != "" {
					t.Errorf("Check(%s) addresses (-want +got):\n%s", tt.target, diff)
				}
				return
			}
			var r *Refusal
			if !errors.As(err, &r) {
				t.Fatalf("Check(%s) = %v, %v; want a refusal (%s)", tt.target, got, err, tt.wantReason)
			}
			if r.Reason != tt.wantReason || r.Target != tt.target {
				t.Errorf("Check(%s) refused %q for %q, want %q", tt.target, r.Target, r.Reason, tt.wantReason)
			}
			for _, m := range append(tt.wantMessage, tt.target) {
				if !strings.Contains(r.Error(), m) {
					t.Errorf("Check(%s) refusal %q does not say %q", tt.target, r.Error(), m)
				}
			}
		})
	}
}

func TestParseCIDRs(t *testing.T) {
	t.Parallel()
	got, err := ParseCIDRs([]string{"10.0.0.0/8", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("ParseCIDRs (-want +got):\n%s", diff)
	}
	if _, err := ParseCIDRs([]string{"example.com"}); err == nil {
		t.Errorf("ParseCIDRs accepted a name")
	}
}
