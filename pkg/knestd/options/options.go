// Package options holds knestd's configuration: its flags, their defaults and
// their validation. It is kept apart from the daemon itself so that checking a
// configuration does not link the whole control plane.
package options

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/featuregate"
	logsapi "k8s.io/component-base/logs/api/v1"
	// The json log format, for --logging-format=json.
	_ "k8s.io/component-base/logs/json/register"

	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/servicecidr"
	"github.com/knest-dev/knest/pkg/tenant"
)

// Options configure one knestd process: one tenant control plane.
type Options struct {
	// DataDir holds etcd, the PKI and the kubeconfigs. Required.
	DataDir string
	// Name is the tenant's name; it names the CA and the kubeconfig context.
	Name string
	// BindAddress is the address the API server listens on.
	BindAddress string
	// AdvertiseAddress is the address the API server advertises; defaults to
	// BindAddress unless that is unspecified (0.0.0.0 or ::).
	AdvertiseAddress string
	// SecurePort is the API server port; 0 picks a free one.
	SecurePort int
	// ServiceCIDR is the tenant's service IP range. It is set to the host's
	// service CIDR so tenant Services can carry host ClusterIPs.
	ServiceCIDR string
	// ClusterDomain is the DNS domain of in-cluster names.
	ClusterDomain string
	// TLSSANs are extra DNS names and IP addresses for the serving certificate.
	TLSSANs []string
	// EncryptionKeyFile is the secrets encryption key; empty means a key
	// generated into the data directory.
	EncryptionKeyFile string
	// EtcdQuotaBytes caps the tenant's etcd database size.
	EtcdQuotaBytes int64
	// KubernetesServiceIP is the ClusterIP the tenant's "kubernetes" Service
	// gets: the host Service in front of this knestd. Empty means the first
	// IP of the service CIDR, which on a shared CIDR is the host API server.
	KubernetesServiceIP string
	// HostKubeconfig reaches the host cluster; with HostNamespace it turns
	// the syncer on. The identity needs only the knestd Role in that
	// namespace.
	HostKubeconfig string
	// HostNamespace is the host namespace the tenant's objects go to.
	// Without HostKubeconfig knestd reaches the host with its pod's
	// ServiceAccount (in-cluster configuration).
	HostNamespace string
	// HostService names the host Service in front of this knestd, in
	// HostNamespace: its ClusterIP, read at start, is the serving
	// certificate's and stands in for an empty KubernetesServiceIP and
	// DNSServiceIP.
	HostService string
	// EncryptionKeySecret names the host Secret, in HostNamespace, that
	// holds the secrets-encryption key; knestd creates it at its first
	// start. It keeps the key off the data volume.
	EncryptionKeySecret string
	// KubeconfigSecret names the host Secret, in HostNamespace, the admin
	// kubeconfig is published in once the control plane is ready, with
	// KubeconfigServer (default: the API server's own URL) as its server.
	KubeconfigSecret string
	KubeconfigServer string
	// SyncerMetricsAddress serves the syncer's Prometheus metrics
	// (knest_syncer_*) over plain HTTP; empty means not served.
	SyncerMetricsAddress string
	// ProfilingAddress serves Go's pprof handlers (/debug/pprof/) for the
	// whole process over plain HTTP, syncing or not; empty means not
	// served. For operators and benchmarks: bind it to loopback.
	ProfilingAddress string
	// KubeletPort is the port of the virtual Nodes' kubelet API (logs,
	// exec, attach, port-forward), on BindAddress; 0 picks a free one.
	KubeletPort int
	// DNSAddress is where the tenant's DNS server listens (UDP and TCP),
	// host:port; an empty host means BindAddress, "" turns it off.
	DNSAddress string
	// HostClusterDomain is the host cluster's DNS domain: the tenant's DNS
	// server never forwards names under it.
	HostClusterDomain string
	// DNSUpstreamResolvConf names the resolvers the DNS server forwards
	// other names to.
	DNSUpstreamResolvConf string
	// DNSServiceIP is the host ClusterIP of the Service in front of the DNS
	// server (port 53); host pods of ClusterFirst tenant pods use it. ""
	// leaves their DNS to the host.
	DNSServiceIP string
	// Isolation is the tenant's isolation profile.
	Isolation policy.Profile
	// PolicyFile holds the operator's allowlists and forced placement;
	// empty means the profile's defaults.
	PolicyFile string
	// HostQPS and HostBurst limit the syncer's requests to the host API
	// server: one tenant must not be able to flood it.
	HostQPS   float32
	HostBurst int
	// HostNodeInfo lets virtual Nodes show their host node's zone, region,
	// architecture, OS, instance type and capacity. The host identity then
	// needs get on nodes (chart value hostNodeInfo); off by default.
	HostNodeInfo bool
	// PoolNodes shows the tenant one virtual Node per Ready, schedulable
	// host node of its pool, always, schedulable: DaemonSets run and pods
	// may name a node. The host identity then needs list and watch on
	// nodes (chart value poolNodes, on by default).
	PoolNodes bool
	// Frozen freezes the tenant: its API is read-only for every tenant
	// user, its host pods are deleted while its tenant pods stay (chart
	// value frozen, knest freeze).
	Frozen bool
	// SleepAfter, if set, puts the tenant to sleep after that long without
	// a request from a user (pkg/idle): knestd stops its host pods and
	// exits with supervisor.ExitAsleep for knest-supervisor to wake it.
	// Needs SupervisorPort.
	SleepAfter time.Duration
	// SupervisorPort is set by knest-supervisor: the port it serves the
	// tenant API at on BindAddress (the --secure-port it was given). The
	// API server then listens on 127.0.0.1:SecurePort behind it, the admin
	// kubeconfig names the supervisor's address, and knestd can sleep
	// (SleepAfter, knest sleep).
	SupervisorPort int
	// SnapshotKeyFile seals and opens the tenant's snapshots; empty means
	// snapshot.key in the data directory.
	SnapshotKeyFile string
	// SnapshotKeySecret names the host Secret, in HostNamespace, holding
	// the snapshot key (the chart's); knestd creates it at the first start.
	SnapshotKeySecret string
	// RestoreFrom is a snapshot file a fresh data directory starts from.
	RestoreFrom string
	// CertValidity is how long issued leaf certificates are valid; 0 means
	// pki.LeafValidity (a year).
	CertValidity time.Duration
	// HostMintedTokens gives a tenant pod's default API token from the host
	// kubelet (a token of knest's workload ServiceAccount for a knest-only
	// audience, pkg/hosttoken) instead of a host Secret: one host write per
	// pod instead of two. Its claims name the host node and host pod, which
	// the tenant pod can read; off, no host name reaches the tenant.
	HostMintedTokens bool
	// Logging is knestd's log format (text or json) and verbosity, the
	// component-base logging configuration every Kubernetes component
	// has; embedded etcd logs in the same format.
	Logging *logsapi.LoggingConfiguration
}

// Defaults of the kubelet API and the DNS server: the kubelet's usual port,
// and an unprivileged DNS port that a host Service maps port 53 to.
const (
	DefaultKubeletPort = 10250
	DefaultDNSPort     = 10053
)

// Defaults returns the default options.
func Defaults() Options {
	return Options{
		Name:          "knest",
		BindAddress:   "127.0.0.1",
		SecurePort:    6443,
		ServiceCIDR:   "10.96.0.0/12",
		ClusterDomain: "cluster.local",
		Isolation:     policy.DefaultProfile,
		HostQPS:       50,
		HostBurst:     100,

		HostMintedTokens: true,

		KubeletPort:           DefaultKubeletPort,
		DNSAddress:            net.JoinHostPort("", strconv.Itoa(DefaultDNSPort)),
		HostClusterDomain:     "cluster.local",
		DNSUpstreamResolvConf: "/etc/resolv.conf",

		Logging: logsapi.NewLoggingConfiguration(),
	}
}

// Sections of knestd's --help, in order.
const (
	FlagsGeneric       = "generic"
	FlagsServing       = "serving"
	FlagsCluster       = "tenant cluster"
	FlagsHost          = "host cluster"
	FlagsIsolation     = "isolation"
	FlagsKubeletAndDNS = "kubelet API and DNS"
	FlagsObservability = "metrics and profiling"
	FlagsLogging       = "logging"
)

// FlagSets returns the options' flags in named sections, as kube-apiserver
// groups its own.
func (o *Options) FlagSets() cliflag.NamedFlagSets {
	var fss cliflag.NamedFlagSets
	fs := fss.FlagSet(FlagsGeneric)
	fs.StringVar(&o.DataDir, "data-dir", o.DataDir, "Directory for etcd data, certificates and kubeconfigs (required).")
	fs.StringVar(&o.Name, "name", o.Name, "Name of the tenant cluster.")
	o.addSnapshotFlags(fs)
	o.addCertFlags(fs)
	fs = fss.FlagSet(FlagsServing)
	fs.StringVar(&o.BindAddress, "bind-address", o.BindAddress, "Address the API server listens on.")
	fs.StringVar(&o.AdvertiseAddress, "advertise-address", o.AdvertiseAddress, "Address the API server advertises (default: the bind address).")
	fs.IntVar(&o.SecurePort, "secure-port", o.SecurePort, "Port of the API server; 0 picks a free port.")
	fs.StringSliceVar(&o.TLSSANs, "tls-san", o.TLSSANs, "Extra DNS names or IP addresses for the API serving certificate (repeatable).")
	fs = fss.FlagSet(FlagsCluster)
	fs.StringVar(&o.ServiceCIDR, "service-cidr", o.ServiceCIDR, "Service IP range; set it to the host cluster's service CIDR.")
	fs.StringVar(&o.ClusterDomain, "cluster-domain", o.ClusterDomain, "DNS domain of the tenant cluster.")
	fs.StringVar(&o.KubernetesServiceIP, "kubernetes-service-ip", o.KubernetesServiceIP, "ClusterIP of the tenant's default/kubernetes Service: the host Service in front of this knestd (default: the first IP of --service-cidr).")
	fs.StringVar(&o.EncryptionKeyFile, "encryption-key-file", o.EncryptionKeyFile, "File holding the base64 32-byte key that encrypts Secrets at rest (default: generated into the data directory).")
	fs.Int64Var(&o.EtcdQuotaBytes, "etcd-quota-bytes", o.EtcdQuotaBytes, "The tenant's datastore limit in bytes (default 2 GiB): read-only from 90% until below 80%; etcd's own quota is twice it.")
	fs = fss.FlagSet(FlagsHost)
	fs.StringVar(&o.HostKubeconfig, "host-kubeconfig", o.HostKubeconfig, "Kubeconfig of the host cluster (default: the pod's ServiceAccount, when knestd runs in a pod).")
	fs.StringVar(&o.HostNamespace, "host-namespace", o.HostNamespace, "Host namespace the tenant's objects are synced into; it starts the syncer.")
	o.addHostObjectFlags(fs)
	fs.Float32Var(&o.HostQPS, "host-qps", o.HostQPS, "Sustained requests per second the syncer may send to the host API server.")
	fs.IntVar(&o.HostBurst, "host-burst", o.HostBurst, "Requests the syncer may send to the host API server in a burst.")
	fs.BoolVar(&o.HostMintedTokens, "host-minted-tokens", o.HostMintedTokens, "Give each tenant pod's default API token from the host kubelet (a token of the host ServiceAccount knest-workload for an audience only this knestd accepts) instead of a host Secret knestd writes: one host write per pod instead of two. The token's claims, which the pod can read, name its host node and host pod. Needs the host's service-account issuer discovery (any host ServiceAccount may read it by default); without it knestd logs why and uses Secrets.")
	fs.BoolVar(&o.Frozen, "frozen", o.Frozen, "Freeze the tenant: its API is read-only for every tenant user (admins included), its host pods are deleted while its tenant pods and data stay (chart value frozen). Without it, host pods of frozen tenant pods are made again.")
	fs.DurationVar(&o.SleepAfter, "sleep-after", o.SleepAfter, "Put the tenant to sleep after this long without an API request from a user (knestd's own, the controllers' and anonymous probes do not count): its host pods are stopped and knestd exits for knest-supervisor, which wakes it at the next connection. 0: only knest sleep does. Needs knest-supervisor in front.")
	fs.IntVar(&o.SupervisorPort, "supervisor-port", o.SupervisorPort, "Set by knest-supervisor: the port it serves the tenant API at on the bind address. The API server then listens on 127.0.0.1:--secure-port behind it, and the tenant can sleep.")
	fs.BoolVar(&o.PoolNodes, "pool-nodes", o.PoolNodes, "Show the tenant one virtual node per Ready, schedulable host node of its pool (the policy's placement node selector), always and schedulable, so that DaemonSets run and pods may name a node (placed on its host node through the host scheduler). The host identity needs list and watch on nodes (chart value poolNodes). Off: virtual nodes exist only while pods are bound to them.")
	fs.BoolVar(&o.HostNodeInfo, "host-node-info", o.HostNodeInfo, "Show on each virtual node its host node's region, zone, architecture, OS, instance type and capacity (never its name, addresses, images or other labels). The host identity needs get on nodes (chart value hostNodeInfo).")
	fs = fss.FlagSet(FlagsIsolation)
	fs.Var(&o.Isolation, "isolation", "Isolation profile: hard (sandboxed RuntimeClass, Pod Security restricted) or soft (shared kernel, Pod Security baseline).")
	fs.StringVar(&o.PolicyFile, "policy-file", o.PolicyFile, "YAML file of the operator's allowlists and forced placement (see pkg/policy); empty: the profile's defaults.")
	fs = fss.FlagSet(FlagsKubeletAndDNS)
	fs.IntVar(&o.KubeletPort, "kubelet-port", o.KubeletPort, "Port of the virtual nodes' kubelet API (logs, exec, attach, port-forward) on the bind address; 0 picks a free port. Served with the syncer.")
	fs.StringVar(&o.DNSAddress, "dns-address", o.DNSAddress, "Address (host:port, UDP and TCP) of the tenant's DNS server; an empty host means the bind address, an empty value turns it off. Served with the syncer.")
	fs.StringVar(&o.HostClusterDomain, "host-cluster-domain", o.HostClusterDomain, "DNS domain of the host cluster: the tenant's DNS server never forwards names under it.")
	fs.StringVar(&o.DNSUpstreamResolvConf, "dns-upstream-resolv-conf", o.DNSUpstreamResolvConf, "resolv.conf naming the resolvers the tenant's DNS server forwards other names to.")
	fs.StringVar(&o.DNSServiceIP, "dns-service-ip", o.DNSServiceIP, "Host ClusterIP of the Service (port 53) in front of the tenant's DNS server; host pods resolve with it. Empty: host pods use the host's DNS.")
	fs = fss.FlagSet(FlagsObservability)
	fs.StringVar(&o.SyncerMetricsAddress, "syncer-metrics-address", o.SyncerMetricsAddress, "Address (host:port) serving the syncer's Prometheus metrics; empty: not served.")
	fs.StringVar(&o.ProfilingAddress, "profiling-address", o.ProfilingAddress, "Address (host:port, plain HTTP: use loopback) serving the process's pprof profiles under /debug/pprof/ (the whole process); empty: not served.")
	logsapi.AddFlags(o.Logging, fss.FlagSet(FlagsLogging))
	return fss
}

// AddFlags registers the options' flags, every section, on one flag set.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	for _, f := range o.FlagSets().FlagSets {
		fs.AddFlagSet(f)
	}
}

// Validate reports every configuration error at once.
func (o Options) Validate() error {
	var errs []error
	if o.DataDir == "" {
		errs = append(errs, errors.New("--data-dir is required"))
	}
	if err := tenant.ValidateName(o.Name); err != nil {
		errs = append(errs, fmt.Errorf("--name: %w", err))
	}
	if net.ParseIP(o.BindAddress) == nil {
		errs = append(errs, fmt.Errorf("--bind-address %q is not an IP address", o.BindAddress))
	}
	if o.AdvertiseAddress != "" && net.ParseIP(o.AdvertiseAddress) == nil {
		errs = append(errs, fmt.Errorf("--advertise-address %q is not an IP address", o.AdvertiseAddress))
	}
	if o.AdvertiseAddress == "" {
		if ip := net.ParseIP(o.BindAddress); ip != nil && ip.IsUnspecified() {
			errs = append(errs, fmt.Errorf("--advertise-address is required when --bind-address is %s", o.BindAddress))
		}
	}
	if o.SecurePort < 0 || o.SecurePort > 65535 {
		errs = append(errs, fmt.Errorf("--secure-port %d is out of range 0-65535", o.SecurePort))
	}
	if _, err := o.ServiceIP(); err != nil {
		errs = append(errs, err)
	}
	if msgs := validation.IsDNS1123Subdomain(o.ClusterDomain); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--cluster-domain %q is not a valid domain: %s", o.ClusterDomain, strings.Join(msgs, "; ")))
	}
	for _, san := range o.TLSSANs {
		if net.ParseIP(san) == nil && len(validation.IsDNS1123Subdomain(san)) > 0 {
			errs = append(errs, fmt.Errorf("--tls-san %q is neither an IP address nor a DNS name", san))
		}
	}
	if o.SleepAfter < 0 {
		errs = append(errs, fmt.Errorf("--sleep-after must not be negative, got %s", o.SleepAfter))
	}
	if o.SleepAfter > 0 && o.SupervisorPort == 0 {
		errs = append(errs, errors.New("--sleep-after needs knest-supervisor in front of knestd (knest-supervisor -- KNESTD_FLAGS): it keeps the tenant's address open while knestd sleeps and wakes it"))
	}
	if o.SupervisorPort < 0 || o.SupervisorPort > 65535 {
		errs = append(errs, fmt.Errorf("--supervisor-port %d is out of range 0-65535", o.SupervisorPort))
	}
	if o.EtcdQuotaBytes < 0 {
		errs = append(errs, fmt.Errorf("--etcd-quota-bytes must not be negative, got %d", o.EtcdQuotaBytes))
	}
	if o.KubernetesServiceIP != "" {
		ip := net.ParseIP(o.KubernetesServiceIP)
		_, cidr, err := net.ParseCIDR(o.ServiceCIDR)
		switch {
		case ip == nil:
			errs = append(errs, fmt.Errorf("--kubernetes-service-ip %q is not an IP address", o.KubernetesServiceIP))
		case err == nil && !cidr.Contains(ip):
			errs = append(errs, fmt.Errorf("--kubernetes-service-ip %s is outside --service-cidr %s", ip, o.ServiceCIDR))
		}
	}
	if _, err := o.Policy(); err != nil {
		errs = append(errs, err)
	}
	if o.HostQPS <= 0 || o.HostBurst <= 0 {
		errs = append(errs, fmt.Errorf("--host-qps and --host-burst must be positive, got %v and %d", o.HostQPS, o.HostBurst))
	}
	errs = append(errs, o.validateKubeletAndDNS()...)
	for _, a := range []struct{ flag, addr string }{{"--syncer-metrics-address", o.SyncerMetricsAddress}, {"--profiling-address", o.ProfilingAddress}} {
		if a.addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q is not host:port", a.flag, a.addr))
		}
	}
	errs = append(errs, o.validateHostObjects()...)
	errs = append(errs, o.validateCerts()...)
	errs = append(errs, o.validateSnapshot()...)
	errs = append(errs, o.validateLogging()...)
	if o.HostNamespace != "" {
		if msgs := validation.IsDNS1123Label(o.HostNamespace); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--host-namespace %q is not a valid namespace name: %s", o.HostNamespace, strings.Join(msgs, "; ")))
		}
	}
	return errors.Join(errs...)
}

// ServiceIP returns the first usable address of the service CIDR: the IP of
// the "kubernetes" Service.
func (o Options) ServiceIP() (net.IP, error) {
	ip, err := servicecidr.FirstIP(o.ServiceCIDR)
	if err != nil {
		return nil, fmt.Errorf("--service-cidr %w", err)
	}
	return ip, nil
}

// validateKubeletAndDNS checks the kubelet API and DNS flags.
func (o Options) validateKubeletAndDNS() []error {
	var errs []error
	if o.KubeletPort < 0 || o.KubeletPort > 65535 {
		errs = append(errs, fmt.Errorf("--kubelet-port %d is out of range 0-65535", o.KubeletPort))
	}
	if o.DNSAddress != "" {
		host, port, err := net.SplitHostPort(o.DNSAddress)
		n, perr := strconv.Atoi(port)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("--dns-address %q is not host:port", o.DNSAddress))
		case host != "" && net.ParseIP(host) == nil:
			errs = append(errs, fmt.Errorf("--dns-address %q: %q is not an IP address", o.DNSAddress, host))
		case perr != nil || n < 0 || n > 65535:
			errs = append(errs, fmt.Errorf("--dns-address %q: port %q is out of range 0-65535", o.DNSAddress, port))
		}
	}
	if msgs := validation.IsDNS1123Subdomain(o.HostClusterDomain); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--host-cluster-domain %q is not a valid domain: %s", o.HostClusterDomain, strings.Join(msgs, "; ")))
	}
	if o.DNSAddress != "" && o.DNSUpstreamResolvConf == "" {
		errs = append(errs, errors.New("--dns-upstream-resolv-conf is required with --dns-address"))
	}
	if o.DNSServiceIP != "" {
		ip := net.ParseIP(o.DNSServiceIP)
		_, cidr, err := net.ParseCIDR(o.ServiceCIDR)
		switch {
		case ip == nil:
			errs = append(errs, fmt.Errorf("--dns-service-ip %q is not an IP address", o.DNSServiceIP))
		case err == nil && !cidr.Contains(ip):
			errs = append(errs, fmt.Errorf("--dns-service-ip %s is outside --service-cidr %s", ip, o.ServiceCIDR))
		case o.DNSAddress == "":
			errs = append(errs, errors.New("--dns-service-ip points host pods at the tenant's DNS server, which an empty --dns-address turns off"))
		}
	}
	return errs
}

// DNSListenAddress is where the DNS server listens: DNSAddress, on
// BindAddress when it names no host.
func (o Options) DNSListenAddress() string {
	host, port, err := net.SplitHostPort(o.DNSAddress)
	if err != nil || host != "" {
		return o.DNSAddress
	}
	return net.JoinHostPort(o.BindAddress, port)
}

// Advertise returns the address the API server advertises.
func (o Options) Advertise() net.IP {
	if o.AdvertiseAddress != "" {
		return net.ParseIP(o.AdvertiseAddress)
	}
	return net.ParseIP(o.BindAddress)
}

// SANs splits TLSSANs into DNS names and IP addresses.
func (o Options) SANs() (names []string, ips []net.IP) {
	for _, san := range o.TLSSANs {
		if ip := net.ParseIP(san); ip != nil {
			ips = append(ips, ip)
		} else {
			names = append(names, san)
		}
	}
	return names, ips
}

// Policy returns the isolation policy: the policy file's, which must be
// written for --isolation, or the profile's defaults.
func (o Options) Policy() (*policy.Policy, error) {
	p, err := o.policyFile()
	if err != nil {
		return nil, err
	}
	p.PoolNodes = o.PoolNodes
	p.Exposure.Tenant = o.Name
	return p, nil
}

func (o Options) policyFile() (*policy.Policy, error) {
	if o.PolicyFile == "" {
		return policy.Default(o.Isolation), nil
	}
	p, err := policy.Load(o.PolicyFile)
	if err != nil {
		return nil, fmt.Errorf("--policy-file: %w", err)
	}
	if p.Profile != o.Isolation {
		return nil, fmt.Errorf("--policy-file %s is written for the %s profile, but --isolation is %s: a policy cannot change the profile", o.PolicyFile, p.Profile, o.Isolation)
	}
	return p, nil
}

// LoggingFeatureGate holds the logging features (the json format, beta,
// is on by default) that --logging-format is checked against.
func LoggingFeatureGate() featuregate.FeatureGate {
	fg := featuregate.NewFeatureGate()
	if err := logsapi.AddFeatureGates(fg); err != nil {
		// Only a feature registered twice fails, and this gate is new.
		panic(err)
	}
	return fg
}

func (o Options) validateLogging() []error {
	if o.Logging == nil {
		return []error{errors.New("no logging configuration")}
	}
	var errs []error
	for _, e := range logsapi.Validate(o.Logging, LoggingFeatureGate(), field.NewPath("logging")) {
		errs = append(errs, errors.New(strings.Replace(e.Error(), "logging.format", "--logging-format", 1)))
	}
	return errs
}

// EtcdLogFormat is embedded etcd's log encoding for the logging format:
// json for json, console (a line of text) for text.
func (o Options) EtcdLogFormat() string {
	if o.Logging != nil && o.Logging.Format == logsapi.JSONLogFormat {
		return "json"
	}
	return "console"
}
