package controlplane

import (
	"errors"
	"fmt"

	restful "github.com/emicklei/go-restful/v3"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/kube-openapi/pkg/builder"
	"k8s.io/kube-openapi/pkg/cached"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/common/restfuladapter"
	"k8s.io/kube-openapi/pkg/handler"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// installOpenAPI serves the kube-apiserver's /openapi/v2 and /openapi/v3
// as upstream's PrepareRun does (routes.OpenAPI: the same builders on the
// same configuration and routes), except that the specs are built when a
// client first asks for them instead of before the API server serves.
//
// Upstream builds the whole v2 spec (every built-in group: about 10 % of
// the CPU of a start, 0.6 s of it on a loaded machine) before the server
// listens, on every start and restart, and keeps it resident. Nothing in a
// tenant control plane reads /openapi/v2 (the aggregator merges it on
// request; kubectl and client-go prefer /openapi/v3): a client that asks
// pays the build once. /openapi/v3 is served by openAPIV3 (openapiv3.go):
// upstream's documents and hashes, built when asked for instead of before
// the server serves, and not all kept.
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
	newOpenAPIV3(v3, webServices).register(s.Handler.NonGoRestfulMux)
	return nil
}

// keepNoOpenAPIBuilder sets GetOperationIDAndTagsFromRoute on the OpenAPI
// configurations of the server chain (the three servers share them), to
// what kube-openapi's builders would set it to, so that the builders leave
// it alone. When it is unset, the first v2 build and the first v3 build
// each set it to a closure over the builder itself, and the configuration,
// which lives as long as the server, then keeps that builder and with it
// the whole definitions map it asked GetDefinitions for: every built-in
// type's schema, ~13 MB for v2 (the apiextensions server's spec, built
// before the server serves) and ~7 MB for v3, resident in every tenant for
// nothing. The builders only read the function; this one holds the
// restful-route function alone.
func keepNoOpenAPIBuilder(v2 *common.Config, v3 *common.OpenAPIV3Config) {
	if v2 != nil && v2.GetOperationIDAndTagsFromRoute == nil {
		v2.GetOperationIDAndTagsFromRoute = operationIDFromRoute(v2.GetOperationIDAndTags)
	}
	if v3 != nil && v3.GetOperationIDAndTagsFromRoute == nil {
		v3.GetOperationIDAndTagsFromRoute = operationIDFromRoute(v3.GetOperationIDAndTags)
	}
}

// releaseOpenAPIDefinitions drops the v3 definitions upstream's default
// configuration computes once for every v3 build (DefaultOpenAPIV3Config:
// every built-in type's schema), once the servers' own specs are built
// (PrepareRun). Only kube-openapi's v3 builder reads them; a later build
// on this configuration asks GetDefinitions again, for that build alone.
func releaseOpenAPIDefinitions(v3 *common.OpenAPIV3Config) {
	if v3 != nil && v3.GetDefinitions != nil {
		v3.Definitions = nil
	}
}

// operationIDFromRoute is the builders' own mapping: the restful function
// for restful routes, the route's operation name without one.
func operationIDFromRoute(byRestful func(*restful.Route) (string, []string, error)) func(common.Route) (string, []string, error) {
	if byRestful == nil {
		return func(r common.Route) (string, []string, error) { return r.OperationName(), nil, nil }
	}
	return func(r common.Route) (string, []string, error) {
		ra, ok := r.(*restfuladapter.RouteAdapter)
		if !ok {
			return "", nil, fmt.Errorf("openapi: GetOperationIDAndTags is set but route %s %s is not a restful route", r.Method(), r.Path())
		}
		return byRestful(ra.Route)
	}
}
