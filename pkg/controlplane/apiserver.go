package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"

	"github.com/spf13/pflag"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/client-go/rest"
	apiserveroptions "k8s.io/kubernetes/cmd/kube-apiserver/app/options"

	"github.com/knest-dev/knest/pkg/controlplane/inprocess"
	"github.com/knest-dev/knest/pkg/pki"
)

// AuthenticationConfig is the structured authentication configuration of a
// tenant API server: anonymous requests are allowed on the health endpoints
// only, so probes work without credentials and everything else answers 401.
const AuthenticationConfig = `apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
anonymous:
  enabled: true
  conditions:
  - path: /livez
  - path: /readyz
  - path: /healthz
`

// AdmissionPlugin is an in-process admission plugin.
type AdmissionPlugin struct {
	Name    string
	Factory admission.Factory
}

// APIServer configures a kube-apiserver.
type APIServer struct {
	// Listener is bound by the caller, so "port in use" is reported before
	// anything starts and port 0 works.
	Listener net.Listener
	// AdvertiseAddress is the address the "kubernetes" Service would point at.
	AdvertiseAddress net.IP
	// ServiceCIDR is the service IP range, e.g. 10.96.0.0/12.
	ServiceCIDR string
	// ClusterDomain is the cluster's DNS domain, e.g. cluster.local.
	ClusterDomain string
	// EtcdURL is the embedded etcd's client URL.
	EtcdURL string
	// PKI are the certificates and keys.
	PKI pki.Files
	// EncryptionConfigFile is the EncryptionConfiguration for data at rest.
	EncryptionConfigFile string
	// AuthenticationConfigFile holds AuthenticationConfig.
	AuthenticationConfigFile string
	// KubernetesServiceIP, if set, is the ClusterIP of the "kubernetes"
	// Service instead of the first IP of ServiceCIDR. A tenant shares the
	// host's service CIDR, whose first IP is the host API server's Service:
	// the tenant's must be the host Service in front of the tenant API
	// server.
	KubernetesServiceIP net.IP
	// AdmissionPlugins are compiled-in plugins registered and enabled in
	// this API server, after every built-in mutating plugin and webhook.
	AdmissionPlugins []AdmissionPlugin
	// EgressSelectorConfigFile, if set, is the EgressSelectorConfiguration
	// that routes the API server's outgoing connections (knestd's: through
	// pkg/egress). Unset, it dials directly, as the devcluster's host does.
	EgressSelectorConfigFile string
	// TokenAuthenticator: see Spec.TokenAuthenticator.
	TokenAuthenticator authenticator.Token
	// ExtraFlags are appended last, so they win; for the devcluster, which
	// needs a host's admission plugins, and for tuning.
	ExtraFlags []string
	// Handlers are served at their paths (non-resource URLs) behind the
	// API server's whole filter chain: authentication, the identity guards,
	// authorization (RBAC on the path and the HTTP verb), audit and
	// priority and fairness. A handler reads the caller with
	// k8s.io/apiserver/pkg/endpoints/request.UserFrom.
	Handlers map[string]http.Handler
	// ReadyzChecks are added to the API server's /readyz: the parts of
	// knestd outside the API server that a ready tenant needs.
	ReadyzChecks []healthz.HealthChecker
	// WrapHandler, if set, wraps the front server's (the aggregator's)
	// handler inside its filter chain, so it sees every request once,
	// authenticated (request.UserFrom), whichever server of the chain
	// serves it. knestd counts user requests with it (pkg/idle).
	WrapHandler func(http.Handler) http.Handler
	// InProcess, if set, serves the front server's handler to knestd's
	// in-process clients while the server runs, and its requests are
	// authenticated as its user.
	InProcess *inprocess.Server
	// ServingCert, if set, is the serving certificate, reloaded by its
	// owner (see certfiles.go); unset, it is read from PKI once.
	ServingCert *ServingCert
}

// Validate reports configuration errors.
func (a APIServer) Validate() error {
	var errs []error
	if a.Listener == nil {
		errs = append(errs, errors.New("apiserver: a listener is required"))
	}
	if a.AdvertiseAddress == nil {
		errs = append(errs, errors.New("apiserver: an advertise address is required"))
	}
	if _, _, err := net.ParseCIDR(a.ServiceCIDR); err != nil {
		errs = append(errs, fmt.Errorf("apiserver: service CIDR %q: %w", a.ServiceCIDR, err))
	}
	if a.EtcdURL == "" {
		errs = append(errs, errors.New("apiserver: an etcd URL is required"))
	}
	if a.EncryptionConfigFile == "" {
		errs = append(errs, errors.New("apiserver: an encryption config is required: secrets are always encrypted at rest"))
	}
	if a.AuthenticationConfigFile == "" {
		errs = append(errs, errors.New("apiserver: an authentication config is required"))
	}
	return errors.Join(errs...)
}

// Flags renders the kube-apiserver flags.
func (a APIServer) Flags() []string {
	issuer := "https://kubernetes.default.svc." + a.ClusterDomain
	flags := []string{
		"--advertise-address=" + a.AdvertiseAddress.String(),
		"--secure-port=" + strconv.Itoa(a.Listener.Addr().(*net.TCPAddr).Port),
		"--etcd-servers=" + a.EtcdURL,
		"--service-cluster-ip-range=" + a.ServiceCIDR,
		"--tls-cert-file=" + a.PKI.ServingCert,
		"--tls-private-key-file=" + a.PKI.ServingKey,
		// The tenant's certificates (cluster CA) and knestd's own
		// (internal CA); reserved identities are only taken from the
		// latter (guardIdentities).
		"--client-ca-file=" + a.PKI.ClientCABundle,
		"--authentication-config=" + a.AuthenticationConfigFile,
		"--authorization-mode=RBAC",
		"--encryption-provider-config=" + a.EncryptionConfigFile,
		"--service-account-issuer=" + issuer,
		"--service-account-key-file=" + a.PKI.ServiceAccountPub,
		"--service-account-signing-key-file=" + a.PKI.ServiceAccountKey,
		"--api-audiences=" + issuer,
		"--kubelet-client-certificate=" + a.PKI.KubeletClientCert,
		"--kubelet-client-key=" + a.PKI.KubeletClientKey,
		// A node's kubelet API is reached at its InternalIP (a virtual
		// Node's is knestd's, a name would not resolve) and must present a
		// certificate from the internal CA: logs and exec never go to an
		// unverified endpoint, nor to one with a kubelet-serving
		// certificate the tenant's CSR signer issued.
		"--kubelet-preferred-address-types=InternalIP",
		"--kubelet-certificate-authority=" + a.PKI.InternalCACert,
		"--requestheader-client-ca-file=" + a.PKI.FrontProxyCACert,
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + a.PKI.FrontProxyClientCert,
		"--proxy-client-key-file=" + a.PKI.FrontProxyClientKey,
		"--enable-aggregator-routing=false",
		"--profiling=false",
		// A tenant API server has one client per controller and a handful of
		// users; the defaults are sized for thousands of nodes.
		"--max-requests-inflight=200",
		"--max-mutating-requests-inflight=100",
	}
	if a.AdvertiseAddress.IsLoopback() {
		flags = append(flags, "--endpoint-reconciler-type=none")
	}
	if a.EgressSelectorConfigFile != "" {
		flags = append(flags, "--egress-selector-config-file="+a.EgressSelectorConfigFile)
	}
	return append(flags, a.ExtraFlags...)
}

// RunAPIServer runs kube-apiserver until ctx ends. It returns an error if the
// server could not start or failed.
func RunAPIServer(ctx context.Context, a APIServer) error {
	if err := a.Validate(); err != nil {
		return err
	}
	s := apiserveroptions.NewServerRunOptions()
	for _, p := range a.AdmissionPlugins {
		s.Admission.GenericAdmission.Plugins.Register(p.Name, p.Factory)
		// Last in the recommended order: on by default, and after every
		// other mutating plugin, webhooks included.
		s.Admission.GenericAdmission.RecommendedPluginOrder = append(s.Admission.GenericAdmission.RecommendedPluginOrder, p.Name)
	}
	fs := pflag.NewFlagSet("kube-apiserver", pflag.ContinueOnError)
	for _, f := range s.Flags().FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(a.Flags()); err != nil {
		return fmt.Errorf("apiserver flags: %w", err)
	}
	if err := s.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return fmt.Errorf("apiserver feature gates: %w", err)
	}
	s.SecureServing.Listener = a.Listener
	// The API server's loopback clients must not log warnings they issue to
	// themselves.
	rest.SetDefaultWarningHandler(rest.NoWarnings{})

	completed, err := s.Complete(ctx)
	if err != nil {
		return fmt.Errorf("apiserver options: %w", err)
	}
	if errs := completed.Validate(); len(errs) > 0 {
		return fmt.Errorf("apiserver options: %w", utilerrors.NewAggregate(errs))
	}
	if a.KubernetesServiceIP != nil {
		completed.APIServerServiceIP = a.KubernetesServiceIP
	}
	return runServerChain(ctx, completed, a)
}
