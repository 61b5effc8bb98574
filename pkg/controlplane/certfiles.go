package controlplane

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	apiserverapp "k8s.io/kubernetes/cmd/kube-apiserver/app"
)

// The kube-apiserver watches each certificate file it reads with an inotify
// instance of its own, and reads the client CA and the request-header CA
// twice (authentication, and the extension-apiserver-authentication
// ConfigMap): seven instances per API server. The kernel allows 128 per
// user by default (fs.inotify.max_user_instances), shared by every process
// of that user on the node, so a node running knestds as one user ran out
// at about eleven tenants, after which the watchers log an error and poll
// every minute, and other workloads of that user get no inotify at all.
// knestd writes these files itself and knows when they change, so it needs
// no watcher for them:
//
//   - the client CA bundle and the front-proxy CA change only in a cluster
//     CA rotation step, after which knestd restarts (pkg/knestd/certs.go),
//     and the front-proxy CA never rotates: the bundles the API server's
//     configuration read at start stay in use;
//   - the serving certificate is renewed while knestd runs: it is read at
//     start and again by ServingCert.Reload, which Instance.RenewCertificates
//     calls after writing the files.
//
// What still watches: the aggregator's proxy client certificate (upstream
// builds it from its file names with no way to hand it a provider), the
// authentication configuration and the controller-manager's four CSR
// signers.

// ServingCert is the API server's serving certificate and key, read from
// their files when built and again on Reload. It is not a
// dynamiccertificates.ControllerRunner, so the API server never starts a
// file watcher for it.
type ServingCert struct {
	content *dynamiccertificates.DynamicCertKeyPairContent
}

var (
	_ dynamiccertificates.CertKeyContentProvider = (*ServingCert)(nil)
	_ dynamiccertificates.Notifier               = (*ServingCert)(nil)
)

// NewServingCert reads the serving certificate and key.
func NewServingCert(certFile, keyFile string) (*ServingCert, error) {
	c, err := dynamiccertificates.NewDynamicServingContentFromFiles("serving-cert", certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	return &ServingCert{content: c}, nil
}

// Name names the certificate in the API server's logs and metrics.
func (s *ServingCert) Name() string { return s.content.Name() }

// CurrentCertKeyContent is the pair last read.
func (s *ServingCert) CurrentCertKeyContent() ([]byte, []byte) {
	return s.content.CurrentCertKeyContent()
}

// AddListener registers a listener (the API server's TLS configuration)
// told when Reload read a different pair.
func (s *ServingCert) AddListener(l dynamiccertificates.Listener) { s.content.AddListener(l) }

// Reload reads the files again; a changed pair is served from the next TLS
// handshake on. A pair that does not match (one file written, not yet the
// other) is an error and leaves the pair in use.
func (s *ServingCert) Reload(ctx context.Context) error {
	if err := s.content.RunOnce(ctx); err != nil {
		return fmt.Errorf("reloading the serving certificate: %w", err)
	}
	return nil
}

// useCertificates puts static copies of the CAs NewConfig read, and the
// serving certificate, where NewConfig put providers that watch their
// files: the TLS configuration of the chain's servers and the published
// extension-apiserver-authentication ConfigMap. The authenticators keep
// the providers NewConfig built; nothing runs their watchers.
func useCertificates(c *apiserverapp.Config, serving *ServingCert) error {
	info := &c.KubeAPIs.ControlPlane.Extra.ClusterAuthenticationInfo
	clientCA, err := staticCopy(info.ClientCA)
	if err != nil {
		return err
	}
	requestHeaderCA, err := staticCopy(info.RequestHeaderCA)
	if err != nil {
		return err
	}
	info.ClientCA, info.RequestHeaderCA = clientCA, requestHeaderCA
	for _, g := range chainGenericConfigs(c) {
		if g.SecureServing == nil {
			continue
		}
		g.SecureServing.ClientCA = dynamiccertificates.NewUnionCAContentProvider(clientCA, requestHeaderCA)
		g.SecureServing.Cert = serving
	}
	return nil
}

// staticCopy is p's current bundle, never reloaded.
func staticCopy(p dynamiccertificates.CAContentProvider) (dynamiccertificates.CAContentProvider, error) {
	if p == nil {
		return nil, errors.New("apiserver: a client CA or request-header CA is not configured")
	}
	ca, err := dynamiccertificates.NewStaticCAContent(p.Name(), p.CurrentCABundleContent())
	if err != nil {
		return nil, fmt.Errorf("apiserver: %s: %w", p.Name(), err)
	}
	return ca, nil
}
