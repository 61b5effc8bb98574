package options

import (
	"time"

	"net"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
)

func valid(tweaks ...func(*Options)) Options {
	o := Defaults()
	o.DataDir = "/var/lib/knest"
	for _, t := range tweaks {
		t(&o)
	}
	return o
}

// validateCase is options that Validate accepts, or refuses with errors
// containing each of wantErrs.
type validateCase struct {
	name     string
	opts     Options
	wantErrs []string
}

func runValidateCases(t *testing.T, tests []validateCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.opts.Validate()
			if len(tc.wantErrs) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.wantErrs)
			}
			for _, want := range tc.wantErrs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []validateCase{
		{name: "the defaults with a data dir are valid", opts: valid()},
		{name: "an IPv6 service CIDR of /108 is valid", opts: valid(func(o *Options) { o.ServiceCIDR = "fd00:10:96::/108" })},
		{name: "SANs may be names and IPs", opts: valid(func(o *Options) { o.TLSSANs = []string{"demo.knest-demo.svc", "10.96.7.7"} })},
		{name: "a data dir is required", opts: valid(func(o *Options) { o.DataDir = "" }), wantErrs: []string{"--data-dir is required"}},
		{name: "sleeping needs knest-supervisor in front", opts: valid(func(o *Options) { o.SleepAfter = time.Minute }), wantErrs: []string{"--sleep-after needs knest-supervisor"}},
		{name: "sleeping behind knest-supervisor is valid", opts: valid(func(o *Options) { o.SleepAfter, o.SupervisorPort = time.Minute, 6443 })},
		{name: "a negative idle time is refused", opts: valid(func(o *Options) { o.SleepAfter, o.SupervisorPort = -time.Second, 6443 }), wantErrs: []string{"--sleep-after must not be negative"}},
		{name: "a name must be a DNS label", opts: valid(func(o *Options) { o.Name = "Demo_1" }), wantErrs: []string{`--name: tenant name "Demo_1" is invalid`}},
		{name: "a name is one rule everywhere: Helm's release name limit", opts: valid(func(o *Options) { o.Name = strings.Repeat("a", 54) }), wantErrs: []string{`is longer than 53 characters`}},
		{name: "a bind address must be an IP", opts: valid(func(o *Options) { o.BindAddress = "localhost" }), wantErrs: []string{`--bind-address "localhost" is not an IP address`}},
		{name: "binding all addresses needs an advertise address", opts: valid(func(o *Options) { o.BindAddress = "0.0.0.0" }), wantErrs: []string{"--advertise-address is required"}},
		{name: "a port must be in range", opts: valid(func(o *Options) { o.SecurePort = 70000 }), wantErrs: []string{"--secure-port 70000 is out of range"}},
		{name: "a service CIDR must parse", opts: valid(func(o *Options) { o.ServiceCIDR = "10.96.0.0" }), wantErrs: []string{`--service-cidr "10.96.0.0" is not a CIDR`}},
		{name: "a service CIDR must not have host bits", opts: valid(func(o *Options) { o.ServiceCIDR = "10.96.0.1/12" }), wantErrs: []string{"has host bits set; did you mean 10.96.0.0/12?"}},
		{name: "a service CIDR must have room", opts: valid(func(o *Options) { o.ServiceCIDR = "10.96.0.0/32" }), wantErrs: []string{"is too small"}},
		{name: "an IPv6 service CIDR must be /108 or smaller", opts: valid(func(o *Options) { o.ServiceCIDR = "fd00::/64" }), wantErrs: []string{"larger than /108"}},
		{name: "a SAN must be a name or an IP", opts: valid(func(o *Options) { o.TLSSANs = []string{"not a name"} }), wantErrs: []string{`--tls-san "not a name" is neither`}},
		{name: "a quota must not be negative", opts: valid(func(o *Options) { o.EtcdQuotaBytes = -5 }), wantErrs: []string{"--etcd-quota-bytes must not be negative"}},
		{name: "a kubernetes service IP inside the CIDR is valid", opts: valid(func(o *Options) { o.KubernetesServiceIP = "10.96.12.7" })},
		{name: "a kubernetes service IP must be an IP", opts: valid(func(o *Options) { o.KubernetesServiceIP = "api" }), wantErrs: []string{`--kubernetes-service-ip "api" is not an IP address`}},
		{name: "a kubernetes service IP must be in the service CIDR", opts: valid(func(o *Options) { o.KubernetesServiceIP = "10.200.0.1" }), wantErrs: []string{"--kubernetes-service-ip 10.200.0.1 is outside --service-cidr 10.96.0.0/12"}},
		{name: "a metrics address must be host:port", opts: valid(func(o *Options) { o.SyncerMetricsAddress = "9090" }), wantErrs: []string{`--syncer-metrics-address "9090" is not host:port`}},
		{name: "a profiling address must be host:port", opts: valid(func(o *Options) { o.ProfilingAddress = "localhost" }), wantErrs: []string{`--profiling-address "localhost" is not host:port`}},
		{name: "a host kubeconfig needs a host namespace", opts: valid(func(o *Options) { o.HostKubeconfig = "/h" }), wantErrs: []string{"--host-kubeconfig needs --host-namespace"}},
		{name: "a host namespace alone means the pod's ServiceAccount", opts: valid(func(o *Options) { o.HostNamespace = "knest-a" })},
		{name: "host node info needs a host namespace", opts: valid(func(o *Options) { o.HostNodeInfo = true }), wantErrs: []string{"--host-node-info shows host node info on the syncer's virtual nodes: it needs --host-namespace"}},
		{name: "host node info with a host namespace is valid", opts: valid(func(o *Options) { o.HostNamespace = "knest-a"; o.HostNodeInfo = true })},
		{name: "host objects need a host namespace", opts: valid(func(o *Options) { o.HostService = "knestd"; o.KubeconfigSecret = "kc" }),
			wantErrs: []string{"--host-service names an object in the host namespace", "--kubeconfig-secret names an object in the host namespace"}},
		{name: "host objects have valid names", opts: valid(func(o *Options) { o.HostNamespace = "knest-a"; o.EncryptionKeySecret = "Key_1" }),
			wantErrs: []string{`--encryption-key-secret "Key_1" is not a valid name`}},
		{name: "one source of the encryption key", opts: valid(func(o *Options) { o.HostNamespace = "knest-a"; o.EncryptionKeySecret = "k"; o.EncryptionKeyFile = "/k" }),
			wantErrs: []string{"--encryption-key-secret and --encryption-key-file both name the key"}},
		{name: "a kubeconfig server is an https URL", opts: valid(func(o *Options) {
			o.HostNamespace = "knest-a"
			o.KubeconfigSecret = "kc"
			o.KubeconfigServer = "http://x"
		}),
			wantErrs: []string{`--kubeconfig-server "http://x" is not an https:// URL`}},
		{name: "a kubeconfig server needs the Secret", opts: valid(func(o *Options) { o.KubeconfigServer = "https://knestd.t.svc:443" }),
			wantErrs: []string{"--kubeconfig-server needs --kubeconfig-secret"}},
		{name: "the chart's host objects are valid", opts: valid(func(o *Options) {
			o.HostNamespace, o.HostService, o.EncryptionKeySecret = "knest-a", "knestd", "knestd-encryption-key"
			o.KubeconfigSecret, o.KubeconfigServer = "knestd-kubeconfig", "https://knestd.knest-a.svc:443"
		})},
		{name: "a host namespace must be a valid name", opts: valid(func(o *Options) { o.HostKubeconfig = "/h"; o.HostNamespace = "Knest_A" }), wantErrs: []string{`--host-namespace "Knest_A" is not a valid namespace name`}},
		{name: "host kubeconfig and namespace together are valid", opts: valid(func(o *Options) { o.HostKubeconfig = "/h"; o.HostNamespace = "knest-a" })},
		{
			name:     "all errors are reported at once",
			opts:     valid(func(o *Options) { o.DataDir = ""; o.SecurePort = -1 }),
			wantErrs: []string{"--data-dir is required", "--secure-port -1 is out of range"},
		},
	}
	runValidateCases(t, tests)
}

func TestServiceIPIsTheFirstAddress(t *testing.T) {
	t.Parallel()
	for cidr, want := range map[string]string{
		"10.96.0.0/12":     "10.96.0.1",
		"172.20.0.0/16":    "172.20.0.1",
		"fd00:10:96::/108": "fd00:10:96::1",
	} {
		ip, err := valid(func(o *Options) { o.ServiceCIDR = cidr }).ServiceIP()
		if err != nil {
			t.Fatalf("%s: %v", cidr, err)
		}
		if !ip.Equal(net.ParseIP(want)) {
			t.Errorf("ServiceIP(%s) = %s, want %s", cidr, ip, want)
		}
	}
}

func TestFlagsParseIntoOptions(t *testing.T) {
	t.Parallel()
	o := Defaults()
	fs := pflag.NewFlagSet("knestd", pflag.ContinueOnError)
	o.AddFlags(fs)
	err := fs.Parse([]string{"--data-dir=/d", "--name=acme", "--secure-port=0", "--tls-san=a.example.com", "--tls-san=10.0.0.9", "--service-cidr=10.100.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	names, ips := o.SANs()
	got := map[string]any{"dir": o.DataDir, "name": o.Name, "port": o.SecurePort, "cidr": o.ServiceCIDR, "names": names, "ips": len(ips), "bind": o.BindAddress}
	want := map[string]any{"dir": "/d", "name": "acme", "port": 0, "cidr": "10.100.0.0/16", "names": []string{"a.example.com"}, "ips": 1, "bind": "127.0.0.1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parsed options (-want +got):\n%s", diff)
	}
}

func TestValidateKubeletAndDNS(t *testing.T) {
	t.Parallel()
	tests := []validateCase{
		{name: "a kubelet port of 0 picks one", opts: valid(func(o *Options) { o.KubeletPort = 0 })},
		{name: "a kubelet port must be in range", opts: valid(func(o *Options) { o.KubeletPort = 65536 }), wantErrs: []string{"--kubelet-port 65536 is out of range"}},
		{name: "an empty DNS address turns DNS off", opts: valid(func(o *Options) { o.DNSAddress = "" })},
		{name: "a DNS address may name an IP", opts: valid(func(o *Options) { o.DNSAddress = "127.0.0.1:0" })},
		{name: "a DNS address must be host:port", opts: valid(func(o *Options) { o.DNSAddress = "10053" }), wantErrs: []string{`--dns-address "10053" is not host:port`}},
		{name: "a DNS address names an IP, not a host name", opts: valid(func(o *Options) { o.DNSAddress = "localhost:53" }), wantErrs: []string{`"localhost" is not an IP address`}},
		{name: "a DNS port must be in range", opts: valid(func(o *Options) { o.DNSAddress = ":99999" }), wantErrs: []string{`port "99999" is out of range`}},
		{name: "DNS needs upstream resolvers", opts: valid(func(o *Options) { o.DNSUpstreamResolvConf = "" }), wantErrs: []string{"--dns-upstream-resolv-conf is required"}},
		{name: "a host cluster domain must be a domain", opts: valid(func(o *Options) { o.HostClusterDomain = "Host_Domain" }), wantErrs: []string{`--host-cluster-domain "Host_Domain" is not a valid domain`}},
		{name: "a DNS service IP in the service CIDR is valid", opts: valid(func(o *Options) { o.DNSServiceIP = "10.96.0.10" })},
		{name: "a DNS service IP must be an IP", opts: valid(func(o *Options) { o.DNSServiceIP = "dns" }), wantErrs: []string{`--dns-service-ip "dns" is not an IP address`}},
		{name: "a DNS service IP must be in the service CIDR", opts: valid(func(o *Options) { o.DNSServiceIP = "10.200.0.10" }), wantErrs: []string{"--dns-service-ip 10.200.0.10 is outside --service-cidr"}},
		{name: "a DNS service IP needs the DNS server", opts: valid(func(o *Options) { o.DNSServiceIP = "10.96.0.10"; o.DNSAddress = "" }), wantErrs: []string{"an empty --dns-address turns off"}},
	}
	runValidateCases(t, tests)
}

func TestDNSListenAddressDefaultsToTheBindAddress(t *testing.T) {
	t.Parallel()
	tests := map[string]string{":10053": "127.0.0.1:10053", "10.0.0.5:53": "10.0.0.5:53", "[::1]:0": "[::1]:0"}
	for in, want := range tests {
		if got := valid(func(o *Options) { o.DNSAddress = in }).DNSListenAddress(); got != want {
			t.Errorf("DNSListenAddress(%q) = %q, want %q", in, got, want)
		}
	}
}
