package charts

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

func render(t *testing.T, values map[string]any) (map[string]string, error) {
	t.Helper()
	return renderAs(t, "acme", "knest-acme", values)
}

// renderAs renders the chart as release name in namespace.
func renderAs(t *testing.T, name, namespace string, values map[string]any) (map[string]string, error) {
	t.Helper()
	chrt, err := Knest()
	if err != nil {
		t.Fatal(err)
	}
	vals, err := chartutil.ToRenderValues(chrt, values, chartutil.ReleaseOptions{Name: name, Namespace: namespace, IsInstall: true}, nil)
	if err != nil {
		return nil, err
	}
	if err := chartutil.ValidateAgainstSchema(chrt, vals["Values"].(chartutil.Values)); err != nil {
		return nil, err
	}
	return engine.Render(chrt, vals)
}

func TestTheChartGrantsExactlyTheKnestdRole(t *testing.T) {
	t.Parallel()
	out, err := render(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.Role
	if err := yaml.UnmarshalStrict([]byte(out["knest/templates/role.yaml"]), &role); err != nil {
		t.Fatalf("rendered Role: %v\n%s", err, out["knest/templates/role.yaml"])
	}
	want, err := KnestdRole("")
	if err != nil {
		t.Fatal(err)
	}
	if role.Name != "knestd" {
		t.Errorf("Role name = %q", role.Name)
	}
	if diff := cmp.Diff(want.Rules, role.Rules); diff != "" {
		t.Errorf("the chart's Role differs from knestd's (-knestd +chart):\n%s", diff)
	}
	var binding rbacv1.RoleBinding
	if err := yaml.UnmarshalStrict([]byte(out["knest/templates/rolebinding.yaml"]), &binding); err != nil {
		t.Fatal(err)
	}
	if binding.RoleRef.Name != "knestd" || len(binding.Subjects) != 1 || binding.Subjects[0].Namespace != "knest-acme" || binding.Subjects[0].Name != "knestd" {
		t.Errorf("RoleBinding = %+v", binding)
	}
}

func TestTheSchemaRejectsBadValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		values map[string]any
		want   string
	}{
		{name: "an invalid ServiceAccount name", values: map[string]any{"serviceAccount": map[string]any{"name": "Bad_Name"}}, want: "/serviceAccount/name"},
		{name: "an unknown value", values: map[string]any{"isolaton": "hard"}, want: "isolaton"},
		{name: "an unknown profile", values: map[string]any{"isolation": "medium"}, want: "/isolation"},
		{name: "a quantity that is not one", values: map[string]any{"quota": map[string]any{"enabled": true, "hard": map[string]any{"pods": "lots"}}}, want: "/quota/hard/pods"},
		{name: "an egress network that is not a CIDR", values: map[string]any{"networkPolicy": map[string]any{"enabled": true, "egressCIDRs": []any{"example.com"}}}, want: "/networkPolicy/egressCIDRs/0"},
		{name: "the cloud metadata network as an egress network", values: map[string]any{"networkPolicy": map[string]any{"enabled": true, "egressCIDRs": []any{"169.254.169.254/32"}}}, want: "/networkPolicy/egressCIDRs/0"},
		{name: "a host API server network that is not a CIDR", values: map[string]any{"networkPolicy": map[string]any{"enabled": true, "hostAPIServerCIDR": "10.0.0.1"}}, want: "/networkPolicy/hostAPIServerCIDR"},
		{name: "no host API server port", values: map[string]any{"networkPolicy": map[string]any{"enabled": true, "hostAPIServerPorts": []any{}}}, want: "/networkPolicy/hostAPIServerPorts"},
		{name: "the cloud metadata network for the tenant API server", values: map[string]any{"networkPolicy": map[string]any{"enabled": true, "apiServerEgressCIDRs": []any{"169.254.169.254/32"}}}, want: "/networkPolicy/apiServerEgressCIDRs/0"},
		{name: "everything for the tenant API server", values: map[string]any{"networkPolicy": map[string]any{"enabled": true, "apiServerEgressCIDRs": []any{"0.0.0.0/0"}}}, want: "/networkPolicy/apiServerEgressCIDRs/0"},
		{name: "a webhook url host with a scheme", values: map[string]any{"policy": map[string]any{"webhookURLHosts": []any{"https://hooks.example.com"}}}, want: "/policy/webhookURLHosts/0"},
		{name: "no metadata networks to block", values: map[string]any{"networkPolicy": map[string]any{"enabled": true, "metadataCIDRs": []any{}}}, want: "/networkPolicy/metadataCIDRs"},
		{name: "an image tag with a space", values: map[string]any{"knestd": map[string]any{"image": map[string]any{"repository": "r", "tag": "v1 2"}}}, want: "/knestd/image/tag"},
		{name: "an unknown pull policy", values: map[string]any{"knestd": map[string]any{"image": map[string]any{"repository": "r", "pullPolicy": "Sometimes"}}}, want: "/knestd/image/pullPolicy"},
		{name: "a service CIDR that is not one", values: map[string]any{"knestd": map[string]any{"serviceCIDR": "10.96.0.0"}}, want: "/knestd/serviceCIDR"},
		{name: "a storage size that is not a quantity", values: map[string]any{"knestd": map[string]any{"storage": map[string]any{"size": "big"}}}, want: "/knestd/storage/size"},
		{name: "a resource that is not a quantity", values: map[string]any{"knestd": map[string]any{"resources": map[string]any{"limits": map[string]any{"memory": "2 GB"}}}}, want: "/knestd/resources/limits/memory"},
		{name: "an unknown knestd value", values: map[string]any{"knestd": map[string]any{"replicas": 3}}, want: "replicas"},
		{name: "an invalid host cluster domain", values: map[string]any{"knestd": map[string]any{"hostClusterDomain": "Cluster_Local"}}, want: "/knestd/hostClusterDomain"},
		{name: "an exposed hostname that is not a DNS name", values: map[string]any{"expose": map[string]any{"enabled": true, "hostname": "api tenant"}}, want: "/expose/hostname"},
		{name: "a policy that sets its own profile", values: map[string]any{"policy": map[string]any{"profile": "soft"}}, want: "profile"},
		{name: "an unknown policy field", values: map[string]any{"policy": map[string]any{"runtimeClass": "kata"}}, want: "runtimeClass"},
		{name: "a service type tenants cannot be given", values: map[string]any{"policy": map[string]any{"serviceTypes": []any{"ClusterIP"}}}, want: "/policy/serviceTypes/0"},
		{name: "an exposed hostname that is not a DNS name", values: map[string]any{"exposure": map[string]any{"hostnames": []any{"shop example"}}}, want: "/exposure/hostnames/0"},
		{name: "a bare wildcard hostname", values: map[string]any{"exposure": map[string]any{"hostnames": []any{"*"}}}, want: "/exposure/hostnames/0"},
		{name: "an unknown log format", values: map[string]any{"logging": map[string]any{"format": "xml"}}, want: "/logging/format"},
		{name: "host node info that is not a boolean", values: map[string]any{"hostNodeInfo": "yes"}, want: "/hostNodeInfo"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := render(t, tc.values)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one naming %q", err, tc.want)
			}
		})
	}
}

var update = flag.Bool("update", false, "rewrite the golden files")

// TestGolden renders the chart with its defaults and with a loosened
// configuration and compares with testdata/*.golden.yaml (-update rewrites).
func TestGolden(t *testing.T) {
	t.Parallel()
	cases := map[string]map[string]any{
		"default": nil,
		// knest dev: knestd runs as a local process.
		"dev": {"knestd": map[string]any{"enabled": false}},
		// Virtual Nodes show host node info: a cluster-scoped grant.
		"nodeinfo": {"hostNodeInfo": true},
		// knest-supervisor in front of knestd, probes on its health port.
		"sleep": {"sleep": map[string]any{"enabled": true, "after": "30m", "wakeTimeout": "1m", "healthPort": 8444}, "networkPolicy": map[string]any{"enabled": true}},
		"egress": {
			"isolation": "soft",
			"expose":    map[string]any{"enabled": true, "hostname": "acme.tenants.example.com", "loadBalancerSourceRanges": []any{"198.51.100.0/24"}},
			"policy":    map[string]any{"serviceTypes": []any{"LoadBalancer"}, "webhookURLHosts": []any{"hooks.example.com"}},
			"networkPolicy": map[string]any{"enabled": true, "internetEgress": true, "egressCIDRs": []any{"203.0.113.0/24", "2001:db8::/32"},
				"hostAPIServerCIDR": "192.0.2.0/28", "hostAPIServerPorts": []any{6443}, "apiServerEgressCIDRs": []any{"198.51.100.0/28"}},
			"quota": map[string]any{"enabled": true, "priorityClasses": map[string]any{"tenant-high": map[string]any{"pods": "10"}}},
			"exposure": map[string]any{"hostnames": []any{"*.acme.apps.example.com", "shop.example.com"}, "ingressClasses": map[string]any{"web": "nginx-shared"},
				"defaultIngressClass": "web", "controllerNamespace": "ingress-nginx",
				"gateway": map[string]any{"namespace": "gateway-system", "name": "shared", "sectionName": "https"}},
		},
	}
	for name, values := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			out, err := render(t, values)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for n, s := range out {
				// NOTES.txt is shown to the user, not applied.
				if strings.TrimSpace(s) != "" && !strings.HasSuffix(n, "NOTES.txt") {
					names = append(names, n)
				}
			}
			sort.Strings(names)
			var b strings.Builder
			for _, n := range names {
				fmt.Fprintf(&b, "# Source: %s\n%s\n---\n", n, strings.TrimSpace(out[n]))
			}
			path := filepath.Join("testdata", name+".golden.yaml")
			if *update {
				if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), b.String()); diff != "" {
				t.Errorf("rendered chart differs from %s (-want +got; run go test ./charts -update):\n%s", path, diff)
			}
			// Every document must be a valid Kubernetes object.
			for _, doc := range strings.Split(b.String(), "\n---\n") {
				var obj map[string]any
				if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
					t.Errorf("invalid YAML: %v\n%s", err, doc)
				}
			}
		})
	}
}

func TestNetworkPoliciesSelectOnlyReservedLabels(t *testing.T) {
	t.Parallel()
	out, err := render(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	var sel []string
	for _, doc := range strings.Split(out["knest/templates/networkpolicies.yaml"], "\n---\n") {
		var np networkingv1.NetworkPolicy
		if err := yaml.UnmarshalStrict([]byte(doc), &np); err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		collect := func(s *metav1.LabelSelector) {
			if s != nil {
				for k := range s.MatchLabels {
					sel = append(sel, k)
				}
			}
		}
		collect(&np.Spec.PodSelector)
		for _, r := range np.Spec.Ingress {
			for _, p := range r.From {
				collect(p.PodSelector)
				collect(p.NamespaceSelector)
			}
		}
		for _, r := range np.Spec.Egress {
			for _, p := range r.To {
				collect(p.PodSelector)
				collect(p.NamespaceSelector)
				if p.IPBlock != nil && (p.IPBlock.CIDR == "0.0.0.0/0" || p.IPBlock.CIDR == "::/0") && np.Name == "knest-tenant-pods" {
					t.Errorf("tenant pods reach the internet by default")
				}
			}
		}
	}
	if len(sel) == 0 {
		t.Fatal("no selectors found")
	}
	for _, k := range sel {
		if !strings.HasPrefix(k, "knest.io/") {
			t.Errorf("a NetworkPolicy selects on %q, a label tenants could set on their pods", k)
		}
	}
}

func TestNodeGrantsReadNodesAndNothingMore(t *testing.T) {
	t.Parallel()
	const file = "knest/templates/clusterrole.yaml"
	grant := func(t *testing.T, name, namespace string, values map[string]any) (rbacv1.ClusterRole, rbacv1.ClusterRoleBinding) {
		t.Helper()
		out, err := renderAs(t, name, namespace, values)
		if err != nil {
			t.Fatal(err)
		}
		docs := strings.Split(out[file], "\n---\n")
		if len(docs) != 2 {
			t.Fatalf("want a ClusterRole and a ClusterRoleBinding, got:\n%s", out[file])
		}
		var role rbacv1.ClusterRole
		var binding rbacv1.ClusterRoleBinding
		if err := yaml.UnmarshalStrict([]byte(docs[0]), &role); err != nil || role.Kind != "ClusterRole" {
			t.Fatalf("ClusterRole: %v\n%s", err, docs[0])
		}
		if err := yaml.UnmarshalStrict([]byte(docs[1]), &binding); err != nil || binding.Kind != "ClusterRoleBinding" {
			t.Fatalf("ClusterRoleBinding: %v\n%s", err, docs[1])
		}
		return role, binding
	}

	t.Run("by default: list and watch on nodes for pool nodes, and only the pool-nodes flag", func(t *testing.T) {
		t.Parallel()
		role, _ := grant(t, "acme", "knest-acme", nil)
		want := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"list", "watch"}}}
		if diff := cmp.Diff(want, role.Rules); diff != "" {
			t.Errorf("ClusterRole rules (-want +got):\n%s", diff)
		}
		out, err := render(t, nil)
		if err != nil {
			t.Fatal(err)
		}
		if sts := out["knest/templates/statefulset.yaml"]; strings.Contains(sts, "--host-node-info") || !strings.Contains(sts, "- --pool-nodes\n") {
			t.Errorf("knestd runs with --host-node-info, or without --pool-nodes, by default")
		}
	})

	t.Run("both off: nothing cluster-scoped, no flag", func(t *testing.T) {
		t.Parallel()
		out, err := render(t, map[string]any{"poolNodes": false})
		if err != nil {
			t.Fatal(err)
		}
		if s := strings.TrimSpace(out[file]); s != "" {
			t.Errorf("an install without pool nodes grants something cluster-wide:\n%s", s)
		}
		if sts := out["knest/templates/statefulset.yaml"]; strings.Contains(sts, "--host-node-info") || strings.Contains(sts, "--pool-nodes") {
			t.Errorf("knestd runs with a node flag")
		}
	})

	t.Run("host node info alone: get on nodes, bound to the knestd ServiceAccount, and the flag", func(t *testing.T) {
		t.Parallel()
		role, binding := grant(t, "acme", "knest-acme", map[string]any{"hostNodeInfo": true, "poolNodes": false})
		want := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get"}}}
		if diff := cmp.Diff(want, role.Rules); diff != "" {
			t.Errorf("ClusterRole rules (-want +got):\n%s", diff)
		}
		wantRef := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name}
		wantSubjects := []rbacv1.Subject{{Kind: "ServiceAccount", Name: "knestd", Namespace: "knest-acme"}}
		if diff := cmp.Diff(wantRef, binding.RoleRef); diff != "" {
			t.Errorf("roleRef (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(wantSubjects, binding.Subjects); diff != "" {
			t.Errorf("subjects (-want +got):\n%s", diff)
		}
		out, err := render(t, map[string]any{"hostNodeInfo": true})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out["knest/templates/statefulset.yaml"], "- --host-node-info\n") {
			t.Errorf("knestd does not get --host-node-info")
		}
	})

	t.Run("on for knest dev too, where knestd runs outside the chart", func(t *testing.T) {
		t.Parallel()
		grant(t, "acme", "knest-acme", map[string]any{"hostNodeInfo": true, "knestd": map[string]any{"enabled": false}})
	})

	t.Run("tenants never share the cluster-scoped names", func(t *testing.T) {
		t.Parallel()
		on := map[string]any{"hostNodeInfo": true}
		seen := map[string]string{}
		for _, r := range []struct{ name, namespace string }{
			{"acme", "knest-acme"}, {"acme", "knest-acme-2"}, {"b-c", "a"}, {"c", "a-b"}, {"acme", "team-a"},
		} {
			role, binding := grant(t, r.name, r.namespace, on)
			if role.Name != binding.Name {
				t.Errorf("%s/%s: ClusterRole %q, ClusterRoleBinding %q", r.namespace, r.name, role.Name, binding.Name)
			}
			if other, ok := seen[role.Name]; ok {
				t.Errorf("releases %s and %s/%s both name their grant %q", other, r.namespace, r.name, role.Name)
			}
			seen[role.Name] = r.namespace + "/" + r.name
		}
	})
}
