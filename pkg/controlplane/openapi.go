package controlplane

import (
	"errors"

	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/routes"
	"k8s.io/kube-openapi/pkg/builder"
	"k8s.io/kube-openapi/pkg/cached"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/common/restfuladapter"
	"k8s.io/kube-openapi/pkg/handler"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// installOpenAPI serves the kube-apiserver's /openapi/v2 and /openapi/v3
// as upstream's PrepareRun does (routes.OpenAPI: the same builders on the
// same configuration and routes), except that the v2 spec is built when a
// client first asks for it instead of before the API server serves.
//
// Upstream builds the whole v2 spec (every built-in group: about 10 % of
// the CPU of a start, 0.6 s of it on a loaded machine) before the server
// listens, on every start and restart, and keeps it resident. Nothing in a
// tenant control plane reads /openapi/v2 (the aggregator merges it on
// request; kubectl and client-go prefer /openapi/v3): a client that asks
// pays the build once. The v3 specs are cheap to install (their groups are
// built by the aggregator's discovery after the server serves), so they are
// installed as upstream does.
//
// runServerChain sets SkipOpenAPIInstallation on the kube-apiserver's
// generic configuration so that PrepareRun leaves these paths to this; the
// apiextensions server keeps upstream's own handlers, which its CRD OpenAPI
// controller needs.
func installOpenAPI(delegate genericapiserver.DelegationTarget, v2 *common.Config, v3 *common.OpenAPIV3Config) error {
	s, ok := delegate.(*genericapiserver.GenericAPIServer)
	if !ok {
		return errors.New("apiserver: the aggregator's delegate is not the kube-apiserver")
	}
	if v2 == nil || v3 == nil {
		return errors.New("apiserver: the kube-apiserver has no OpenAPI configuration")
	}
	// The built-in APIs are all installed by now and do not change.
	webServices := s.Handler.GoRestfulContainer.RegisteredWebServices()
	lazy := cached.Once(cached.Func(func() (*spec.Swagger, string, error) {
		sw, err := builder.BuildOpenAPISpecFromRoutes(restfuladapter.AdaptWebServices(webServices), v2)
		if err != nil {
			return nil, "", err
		}
		sw.Definitions = handler.PruneDefaults(sw.Definitions)
		// The served ETag is the hash of the JSON; this one only tells
		// the caches that the spec never changes.
		return sw, "kube-apiserver", nil
	}))
	handler.NewOpenAPIServiceLazy(lazy).RegisterOpenAPIVersionedService("/openapi/v2", s.Handler.NonGoRestfulMux)
	routes.OpenAPI{V3Config: v3}.InstallV3(s.Handler.GoRestfulContainer, s.Handler.NonGoRestfulMux)
	return nil
}
