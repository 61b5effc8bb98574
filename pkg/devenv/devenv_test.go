package devenv

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/tenant"
)

func TestParseTenants(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		list    string
		want    []Tenant
		wantErr string
	}{
		{name: "one tenant", list: "demo", want: []Tenant{{"demo", policy.ProfileHard}}},
		{name: "several, with spaces", list: "a, b-2 ,c", want: []Tenant{{"a", policy.ProfileHard}, {"b-2", policy.ProfileHard}, {"c", policy.ProfileHard}}},
		{name: "a profile per tenant", list: "a:soft,b:hard,c", want: []Tenant{{"a", policy.ProfileSoft}, {"b", policy.ProfileHard}, {"c", policy.ProfileHard}}},
		{name: "an unknown profile is refused", list: "a:medium", wantErr: `tenant "a": unknown isolation profile "medium"`},
		{name: "the longest allowed name", list: strings.Repeat("a", tenant.MaxNameLength), want: []Tenant{{strings.Repeat("a", tenant.MaxNameLength), policy.ProfileHard}}},
		{name: "upper case is refused", list: "Demo", wantErr: `tenant name "Demo" is invalid`},
		{name: "underscores are refused", list: "my_team", wantErr: `tenant name "my_team" is invalid`},
		{name: "a leading dash is refused", list: "-x", wantErr: `tenant name "-x" is invalid`},
		{name: "a name too long for its host namespace", list: strings.Repeat("a", tenant.MaxNameLength+1), wantErr: "is longer than 53 characters"},
		{name: "duplicates are refused", list: "a,a", wantErr: `tenant "a" is listed twice`},
		{name: "an empty list is refused", list: " , ", wantErr: "at least one tenant is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseTenants(tc.list, policy.ProfileHard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("tenants (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHostNamespaceIsAValidName(t *testing.T) {
	t.Parallel()
	if got := HostNamespace("demo"); got != "knest-demo" {
		t.Errorf("HostNamespace(demo) = %q", got)
	}
	if n := len(HostNamespace(strings.Repeat("a", tenant.MaxNameLength))); n > 63 {
		t.Errorf("the longest tenant gives a %d-character namespace, more than 63", n)
	}
}

func TestKnestdArgs(t *testing.T) {
	t.Parallel()
	// The dev policy file is passed only once Up has written it.
	dir := t.TempDir()
	e := &Env{Layout: Layout{Dir: dir}, opts: Options{Host: DefaultHost()}}
	for _, name := range []string{"a", "b", "c"} {
		if err := os.MkdirAll(filepath.Dir(e.Layout.TenantPolicy(name)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(e.Layout.TenantPolicy(name), []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		tenant TenantEnv
		want   []string
	}{
		{
			name:   "a tenant syncs with its namespaced identity and the host's service CIDR",
			tenant: TenantEnv{TenantOptions: TenantOptions{Tenant: Tenant{"a", policy.ProfileHard}}, Namespace: "knest-a", APIServiceIP: "10.96.0.20"},
			want: []string{
				"--data-dir=/d/tenants/a", "--name=a", "--secure-port=0",
				"--host-kubeconfig=/d/tenants/a-host.kubeconfig", "--host-namespace=knest-a",
				"--kubernetes-service-ip=10.96.0.20", "--kubelet-port=0", "--dns-address=:0", "--dns-service-ip=10.96.0.20",
				"--isolation=hard", "--service-cidr=10.96.0.0/16", "--pool-nodes", "--policy-file=/d/tenants/a-policy.yaml",
			},
		},
		{
			name: "pool nodes follow the chart value: off, knestd gets no node access flag",
			tenant: TenantEnv{TenantOptions: TenantOptions{Tenant: Tenant{"c", policy.ProfileHard}, Values: map[string]any{"poolNodes": false}},
				Namespace: "knest-c", APIServiceIP: "10.96.0.22"},
			want: []string{
				"--data-dir=/d/tenants/c", "--name=c", "--secure-port=0",
				"--host-kubeconfig=/d/tenants/c-host.kubeconfig", "--host-namespace=knest-c",
				"--kubernetes-service-ip=10.96.0.22", "--kubelet-port=0", "--dns-address=:0", "--dns-service-ip=10.96.0.22",
				"--isolation=hard", "--service-cidr=10.96.0.0/16", "--policy-file=/d/tenants/c-policy.yaml",
			},
		},
		{
			name: "host node info and the caller's flags come last, so the caller's win; a caller's profile replaces the dev policy",
			tenant: TenantEnv{TenantOptions: TenantOptions{Tenant: Tenant{"b", policy.ProfileSoft}, HostNodeInfo: true, KnestdArgs: []string{"--isolation=hard"}},
				Namespace: "knest-b", APIServiceIP: "10.96.0.21"},
			want: []string{
				"--data-dir=/d/tenants/b", "--name=b", "--secure-port=0",
				"--host-kubeconfig=/d/tenants/b-host.kubeconfig", "--host-namespace=knest-b",
				"--kubernetes-service-ip=10.96.0.21", "--kubelet-port=0", "--dns-address=:0", "--dns-service-ip=10.96.0.21",
				"--isolation=soft", "--service-cidr=10.96.0.0/16", "--host-node-info", "--pool-nodes", "--isolation=hard",
			},
		},
		{
			name:   "without a written dev policy (knestd started by hand from these flags) there is no policy flag",
			tenant: TenantEnv{TenantOptions: TenantOptions{Tenant: Tenant{"e", policy.ProfileHard}}, Namespace: "knest-e", APIServiceIP: "10.96.0.23"},
			want: []string{
				"--data-dir=/d/tenants/e", "--name=e", "--secure-port=0",
				"--host-kubeconfig=/d/tenants/e-host.kubeconfig", "--host-namespace=knest-e",
				"--kubernetes-service-ip=10.96.0.23", "--kubelet-port=0", "--dns-address=:0", "--dns-service-ip=10.96.0.23",
				"--isolation=hard", "--service-cidr=10.96.0.0/16", "--pool-nodes",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			for _, a := range e.KnestdArgs(&tc.tenant) {
				got = append(got, strings.ReplaceAll(a, dir, "/d"))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("knestd flags (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDevPolicy(t *testing.T) {
	t.Parallel()
	for _, profile := range []policy.Profile{policy.ProfileHard, policy.ProfileSoft} {
		data, err := DevPolicy(profile)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "policy.yaml")
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := policy.Load(file)
		if err != nil {
			t.Fatalf("knestd would refuse the dev policy: %v", err)
		}
		p.Exposure.Tenant = "demo"
		if p.Profile != profile || !p.Exposure.AllowsHostname("web.demo.apps.example.com") || p.Exposure.AllowsHostname("web.other.apps.example.com") {
			t.Errorf("dev policy %+v", p)
		}
		if host, ok := p.Exposure.HostIngressClass(nil); !ok || host != DevIngressClass {
			t.Errorf("Ingresses naming no class get %q (%v), want %s", host, ok, DevIngressClass)
		}
		if gw := p.Exposure.Gateway; gw == nil || gw.Namespace != DevGatewayNamespace || gw.Name != DevGatewayName {
			t.Errorf("routes attach to %v, want the dev host's Gateway %s/%s", gw, DevGatewayNamespace, DevGatewayName)
		}
	}
}

func TestKnestdRunsBehindTheSupervisorWhenOneIsGiven(t *testing.T) {
	t.Parallel()
	args := []string{"--data-dir=/d/tenants/a", "--secure-port=0"}
	e := &Env{opts: Options{Knestd: "/bin/knestd"}}
	if bin, got := e.knestdCommand(args); bin != "/bin/knestd" || !slices.Equal(got, args) {
		t.Errorf("without a supervisor: %s %v, want knestd with its flags", bin, got)
	}
	e.opts.Supervisor = "/bin/knest-supervisor"
	bin, got := e.knestdCommand(args)
	want := []string{"--knestd", "/bin/knestd", "--wake-timeout", "3m", "--", "--data-dir=/d/tenants/a", "--secure-port=0"}
	if bin != "/bin/knest-supervisor" || !slices.Equal(got, want) {
		t.Errorf("with a supervisor: %s %v, want knest-supervisor %v", bin, got, want)
	}
	e.opts.SleepAfter = 5 * time.Minute
	if _, got := e.knestdCommand(args); !slices.Equal(got, append(want, "--sleep-after=5m0s")) {
		t.Errorf("with --sleep-after: %v", got)
	}
}

// The chart makes the tenant's API Service; EnsureAPIService must not POST
// over it, which makes the host allocate (and later repair away) a
// ClusterIP per tenant start. It creates the Service only where none is,
// and adds the DNS ports to one an earlier version made.
func TestEnsureAPIServiceCreatesOnlyWhatIsMissing(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	existing := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: APIServiceName, Namespace: "with-chart"},
		Spec:       corev1.ServiceSpec{ClusterIP: "10.96.0.20", Ports: slices.Clone(apiServicePorts)},
	}
	old := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: APIServiceName, Namespace: "old"},
		Spec:       corev1.ServiceSpec{ClusterIP: "10.96.0.30", Ports: apiServicePorts[:1]},
	}
	client := fake.NewClientset(existing, old)
	client.PrependReactor("create", "services", func(action k8stesting.Action) (bool, runtime.Object, error) {
		svc := action.(k8stesting.CreateAction).GetObject().(*corev1.Service)
		svc.Spec.ClusterIP = "10.96.0.40"
		return false, nil, nil
	})

	for _, tc := range []struct {
		namespace, wantIP, wantVerb string
	}{
		{"with-chart", "10.96.0.20", ""},
		{"old", "10.96.0.30", "update"},
		{"fresh", "10.96.0.40", "create"},
	} {
		client.ClearActions()
		ip, err := EnsureAPIService(ctx, client, tc.namespace)
		if err != nil {
			t.Fatalf("%s: %v", tc.namespace, err)
		}
		if ip != tc.wantIP {
			t.Errorf("%s: ClusterIP %q, want %q", tc.namespace, ip, tc.wantIP)
		}
		var writes []string
		for _, a := range client.Actions() {
			if a.GetVerb() != "get" {
				writes = append(writes, a.GetVerb())
			}
		}
		want := []string{}
		if tc.wantVerb != "" {
			want = []string{tc.wantVerb}
		}
		if !slices.Equal(writes, want) {
			t.Errorf("%s: writes %v, want %v", tc.namespace, writes, want)
		}
	}
	got, err := client.CoreV1().Services("old").Get(ctx, APIServiceName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !hasPort(got, "dns") {
		t.Errorf("the old Service did not get the DNS ports: %v", got.Spec.Ports)
	}
}
