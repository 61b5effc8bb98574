package controlplane

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"

	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/client-go/tools/cache"
	apiserverapp "k8s.io/kubernetes/cmd/kube-apiserver/app"
	apiserveroptions "k8s.io/kubernetes/cmd/kube-apiserver/app/options"

	"github.com/knest-dev/knest/pkg/identity"
)

// runServerChain is what apiserverapp.Run does, one level lower, so that
// knestd's guards on reserved identities are in place before any server of
// the chain is built from its configuration, and its readyz checks are
// added before /readyz is installed.
func runServerChain(ctx context.Context, opts apiserveroptions.CompletedOptions, internalCAFile string, readyz []healthz.HealthChecker) error {
	if opts.InformerName == nil {
		name, err := cache.NewInformerName("kube-apiserver")
		if err != nil {
			return fmt.Errorf("apiserver informers: %w", err)
		}
		opts.InformerName = name
	}
	config, err := apiserverapp.NewConfig(opts)
	if err != nil {
		return fmt.Errorf("apiserver config: %w", err)
	}
	if err := guardIdentities(config, internalCAFile); err != nil {
		return err
	}
	completed, err := config.Complete()
	if err != nil {
		return fmt.Errorf("apiserver config: %w", err)
	}
	server, err := apiserverapp.CreateServerChain(completed)
	if err != nil {
		return fmt.Errorf("apiserver: %w", err)
	}
	// The aggregator is the front of the chain: its /readyz is the one
	// served.
	if err := server.GenericAPIServer.AddReadyzChecks(readyz...); err != nil {
		return fmt.Errorf("apiserver: %w", err)
	}
	prepared, err := server.PrepareRun()
	if err != nil {
		return fmt.Errorf("apiserver: %w", err)
	}
	return prepared.Run(ctx)
}

// guardIdentities wraps the authenticator and authorizer of every server of
// the chain with pkg/identity's guards. NewConfig copies the kube-apiserver's
// generic configuration into the apiextensions and aggregator
// configurations, and the aggregator, the front of the chain, serves every
// request with its own copy: wrapping one would leave the others open.
// Completing the configurations afterwards puts the loopback token
// authenticator in front of the guarded authenticator.
func guardIdentities(c *apiserverapp.Config, internalCAFile string) error {
	pem, err := os.ReadFile(internalCAFile)
	if err != nil {
		return fmt.Errorf("failed to read the internal CA: %w", err)
	}
	internalCAs := x509.NewCertPool()
	if !internalCAs.AppendCertsFromPEM(pem) {
		return fmt.Errorf("%s holds no certificate", internalCAFile)
	}
	servers := []struct {
		name   string
		config *genericapiserver.Config
	}{
		{"kube-apiserver", c.KubeAPIs.ControlPlane.Generic},
		{"apiextensions-apiserver", &c.ApiExtensions.GenericConfig.Config},
		{"kube-aggregator", &c.Aggregator.GenericConfig.Config},
	}
	for _, s := range servers {
		if s.config.Authentication.Authenticator == nil || s.config.Authorization.Authorizer == nil {
			return fmt.Errorf("apiserver: the %s has no authenticator or authorizer to guard", s.name)
		}
		s.config.Authentication.Authenticator = identity.NewAuthenticator(s.config.Authentication.Authenticator, internalCAs)
		s.config.Authorization.Authorizer = identity.NewAuthorizer(s.config.Authorization.Authorizer)
	}
	return nil
}
