package confinement

import (
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/kubernetes/pkg/apis/admissionregistration"

	"github.com/knest-dev/knest/pkg/policy"
)

// checkWebhookURLs checks the clientConfig.url of admission webhooks and of
// CRD conversion webhooks (policy.CheckWebhookURL). The objects are the
// API server's internal types: admissionregistration's from
// k8s.io/kubernetes, and the CRD's from apiextensions-apiserver, which
// serves CRDs with internal types of its own (there the conversion
// webhook's clientConfig sits directly in spec.conversion). Paths are the
// v1 API's, as the tenant wrote them.
func (p *Plugin) checkWebhookURLs(obj runtime.Object) field.ErrorList {
	var errs field.ErrorList
	switch o := obj.(type) {
	case *admissionregistration.ValidatingWebhookConfiguration:
		for i := range o.Webhooks {
			path := field.NewPath("webhooks").Index(i).Child("clientConfig", "url")
			errs = append(errs, policy.CheckWebhookURL(o.Webhooks[i].ClientConfig.URL, path, p.policy)...)
		}
	case *admissionregistration.MutatingWebhookConfiguration:
		for i := range o.Webhooks {
			path := field.NewPath("webhooks").Index(i).Child("clientConfig", "url")
			errs = append(errs, policy.CheckWebhookURL(o.Webhooks[i].ClientConfig.URL, path, p.policy)...)
		}
	case *apiextensions.CustomResourceDefinition:
		if c := o.Spec.Conversion; c != nil && c.WebhookClientConfig != nil {
			path := field.NewPath("spec", "conversion", "webhook", "clientConfig", "url")
			errs = append(errs, policy.CheckWebhookURL(c.WebhookClientConfig.URL, path, p.policy)...)
		}
	}
	return errs
}
