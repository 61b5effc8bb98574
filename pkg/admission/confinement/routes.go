package confinement

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/knest-dev/knest/pkg/policy"
)

var (
	httpRoutesResource = gatewayv1.Resource("httproutes")
	grpcRoutesResource = gatewayv1.Resource("grpcroutes")
)

// checkRoute checks a Gateway API route (a custom resource, so unstructured
// here) against the policy when the policy syncs routes to the host's
// shared Gateway. Without a host Gateway nothing syncs them: a tenant that
// installs the Gateway API for a controller of its own may use it freely.
// ns is the request's namespace: the object's may still be empty when a
// client left it out (the API server fills it in after mutating
// admission).
func (p *Plugin) checkRoute(gr schema.GroupResource, ns string, obj *unstructured.Unstructured) field.ErrorList {
	if p.policy.Exposure.Gateway == nil {
		return nil
	}
	switch gr {
	case httpRoutesResource:
		var r gatewayv1.HTTPRoute
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &r); err != nil {
			return field.ErrorList{field.Invalid(field.NewPath("spec"), nil, "not an HTTPRoute knest can read: "+err.Error())}
		}
		return policy.CheckHTTPRoute(&r.Spec, ns, p.policy)
	case grpcRoutesResource:
		var r gatewayv1.GRPCRoute
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &r); err != nil {
			return field.ErrorList{field.Invalid(field.NewPath("spec"), nil, "not a GRPCRoute knest can read: "+err.Error())}
		}
		return policy.CheckGRPCRoute(&r.Spec, ns, p.policy)
	}
	return nil
}
