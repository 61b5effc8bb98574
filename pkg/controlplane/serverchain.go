package controlplane

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/group"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	"k8s.io/apiserver/pkg/authentication/request/union"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/generic"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	apiserverapp "k8s.io/kubernetes/cmd/kube-apiserver/app"
	apiserveroptions "k8s.io/kubernetes/cmd/kube-apiserver/app/options"

	"github.com/knest-dev/knest/pkg/controlplane/inprocess"
	"github.com/knest-dev/knest/pkg/identity"
)

// runServerChain is what apiserverapp.Run does, one level lower, so that
// knestd's guards on reserved identities and its bootstrap hooks are in
// place before any server of the chain is built from its configuration,
// and its readyz checks are added before /readyz is installed.
func runServerChain(ctx context.Context, opts apiserveroptions.CompletedOptions, a APIServer) error {
	handlers, readyz, wrap, local := a.Handlers, a.ReadyzChecks, a.WrapHandler, a.InProcess
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
	if err := guardIdentities(config, a.PKI.InternalCACert, a.TokenAuthenticator, local != nil); err != nil {
		return err
	}
	serving := a.ServingCert
	if serving == nil {
		if serving, err = NewServingCert(a.PKI.ServingCert, a.PKI.ServingKey); err != nil {
			return err
		}
	}
	if err := useCertificates(config, serving); err != nil {
		return err
	}
	if err := replaceBootstrapHooks(config.KubeAPIs.ControlPlane.Generic, klog.FromContext(ctx)); err != nil {
		return err
	}
	if err := addKubernetesServiceHook(config.KubeAPIs, klog.FromContext(ctx)); err != nil {
		return err
	}
	longRunning(config, handlers)
	shareStorage(config)
	// The kube-apiserver's OpenAPI handlers are installed lazily below.
	config.KubeAPIs.ControlPlane.Generic.SkipOpenAPIInstallation = true
	for _, g := range chainGenericConfigs(config) {
		keepNoOpenAPIBuilder(g.OpenAPIConfig, g.OpenAPIV3Config)
	}
	if wrap != nil {
		// The aggregator fronts the chain: requests it does not serve go
		// to the delegates' unfiltered handlers, so wrapping its inner
		// handler sees each request once, with its user.
		g := &config.Aggregator.GenericConfig.Config
		build := g.BuildHandlerChainFunc
		if build == nil {
			build = genericapiserver.DefaultBuildHandlerChain
		}
		g.BuildHandlerChainFunc = func(h http.Handler, c *genericapiserver.Config) http.Handler {
			return build(wrap(h), c)
		}
	}
	completed, err := config.Complete()
	if err != nil {
		return fmt.Errorf("apiserver config: %w", err)
	}
	server, err := apiserverapp.CreateServerChain(completed)
	if err != nil {
		return fmt.Errorf("apiserver: %w", err)
	}
	generic := config.KubeAPIs.ControlPlane.Generic
	if err := installOpenAPI(server.GenericAPIServer.NextDelegate(), generic.OpenAPIConfig, generic.OpenAPIV3Config); err != nil {
		return err
	}
	// The aggregator is the front of the chain: its mux sits inside its
	// filters, and paths it does not serve go on down the chain; its
	// /readyz is the one served.
	for path, h := range handlers {
		server.GenericAPIServer.Handler.NonGoRestfulMux.Handle(path, h)
	}
	if err := server.GenericAPIServer.AddReadyzChecks(readyz...); err != nil {
		return fmt.Errorf("apiserver: %w", err)
	}
	prepared, err := server.PrepareRun()
	if err != nil {
		return fmt.Errorf("apiserver: %w", err)
	}
	for _, g := range chainGenericConfigs(config) {
		releaseOpenAPIDefinitions(g.OpenAPIV3Config)
	}
	if local != nil {
		// The front server's whole handler, filters included: what its
		// listener serves.
		local.Serve(server.GenericAPIServer.Handler)
		defer local.Serve(nil)
	}
	return prepared.Run(ctx)
}

// chainGenericConfigs are the generic configurations of the chain's three
// servers (shallow copies of one, so their OpenAPI configurations are
// usually the same).
func chainGenericConfigs(c *apiserverapp.Config) []*genericapiserver.Config {
	out := []*genericapiserver.Config{c.KubeAPIs.ControlPlane.Generic}
	for _, g := range []*genericapiserver.RecommendedConfig{c.ApiExtensions.GenericConfig, c.Aggregator.GenericConfig} {
		if g != nil {
			out = append(out, &g.Config)
		}
	}
	return out
}

// shareStorage puts the etcd storage of every server of the chain on one
// etcd client (etcdclients.go) and their watch caches on one timer grid
// (watchcache.go).
func shareStorage(c *apiserverapp.Config) {
	for _, g := range []*generic.RESTOptionsGetter{
		&c.KubeAPIs.ControlPlane.Generic.RESTOptionsGetter,
		&c.ApiExtensions.GenericConfig.RESTOptionsGetter,
		&c.ApiExtensions.ExtraConfig.CRDRESTOptionsGetter,
		&c.Aggregator.GenericConfig.RESTOptionsGetter,
	} {
		if *g != nil {
			*g = storageOptions{*g}
		}
	}
}

// guardIdentities wraps the authenticator and authorizer of every server of
// the chain with pkg/identity's guards. NewConfig copies the kube-apiserver's
// generic configuration into the apiextensions and aggregator
// configurations, and the aggregator, the front of the chain, serves every
// request with its own copy: wrapping one would leave the others open.
// Completing the configurations afterwards puts the loopback token
// authenticator in front of the guarded authenticator. tokens, if set, goes
// in front of the API server's own authenticators, inside the guard; it
// only accepts the tenant API's audiences (TokenReview for another audience
// is not its business) and adds system:authenticated, as the built-in chain
// does for its members. With inProcess, the requests of knestd's in-process
// clients (pkg/controlplane/inprocess) are authenticated in front of the
// guard: they carry knestd's identity in their context, not in a
// certificate, and cannot come from the network.
func guardIdentities(c *apiserverapp.Config, internalCAFile string, tokens authenticator.Token, inProcess bool) error {
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
		authn := s.config.Authentication.Authenticator
		if tokens != nil {
			front := authenticator.WrapAudienceAgnosticToken(s.config.Authentication.APIAudiences, tokens)
			authn = union.New(group.NewAuthenticatedGroupAdder(bearertoken.New(front)), authn)
		}
		guarded := identity.NewAuthenticator(authn, internalCAs)
		if inProcess {
			guarded = union.New(inprocess.Authenticator(), guarded)
		}
		s.config.Authentication.Authenticator = guarded
		s.config.Authorization.Authorizer = identity.NewAuthorizer(s.config.Authorization.Authorizer)
	}
	return nil
}

// longRunning exempts the extra handlers' paths from the request timeout
// (60 s): a snapshot streams for as long as its size takes.
func longRunning(c *apiserverapp.Config, handlers map[string]http.Handler) {
	if len(handlers) == 0 {
		return
	}
	for _, g := range []*genericapiserver.Config{c.KubeAPIs.ControlPlane.Generic, &c.ApiExtensions.GenericConfig.Config, &c.Aggregator.GenericConfig.Config} {
		next := g.LongRunningFunc
		g.LongRunningFunc = func(r *http.Request, info *apirequest.RequestInfo) bool {
			if _, ok := handlers[r.URL.Path]; ok {
				return true
			}
			return next != nil && next(r, info)
		}
	}
}
