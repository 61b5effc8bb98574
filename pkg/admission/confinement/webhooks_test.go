package confinement

import (
	"strings"
	"testing"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/kubernetes/pkg/apis/admissionregistration"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/pkg/policy"
)

func TestWebhookURLs(t *testing.T) {
	t.Parallel()
	allowing := policy.Default(policy.ProfileHard)
	allowing.WebhookURLHosts = []string{"webhooks.example.com"}
	byURL := func(u string) admissionregistration.WebhookClientConfig {
		return admissionregistration.WebhookClientConfig{URL: ptr.To(u)}
	}
	byService := admissionregistration.WebhookClientConfig{Service: &admissionregistration.ServiceReference{Namespace: "shop", Name: "webhook"}}
	crd := func(cc *apiextensions.WebhookClientConfig) *apiextensions.CustomResourceDefinition {
		return &apiextensions.CustomResourceDefinition{Spec: apiextensions.CustomResourceDefinitionSpec{
			Conversion: &apiextensions.CustomResourceConversion{Strategy: apiextensions.WebhookConverter, WebhookClientConfig: cc},
		}}
	}
	vwcs := admissionregistration.Resource("validatingwebhookconfigurations").WithVersion("v1")
	mwcs := admissionregistration.Resource("mutatingwebhookconfigurations").WithVersion("v1")
	crds := apiextensions.Resource("customresourcedefinitions").WithVersion("v1")
	tests := []struct {
		name   string
		policy *policy.Policy
		req    request
		want   string // in the refusal; "" means admitted
	}{
		{name: "a validating webhook calling the host API server by url is refused, naming the field and the way out",
			req: request{resource: vwcs, obj: &admissionregistration.ValidatingWebhookConfiguration{Webhooks: []admissionregistration.ValidatingWebhook{
				{ClientConfig: byService}, {ClientConfig: byURL("https://10.96.0.1/")},
			}}},
			want: "webhooks[1].clientConfig.url: Forbidden: host 10.96.0.1 is not in the operator's webhookURLHosts"},
		{name: "a mutating webhook with a url is refused", req: request{resource: mwcs, obj: &admissionregistration.MutatingWebhookConfiguration{Webhooks: []admissionregistration.MutatingWebhook{
			{ClientConfig: byURL("https://metadata.internal/")},
		}}}, want: "webhooks[0].clientConfig.url"},
		{name: "a webhook calling a tenant Service is admitted", req: request{resource: vwcs, obj: &admissionregistration.ValidatingWebhookConfiguration{Webhooks: []admissionregistration.ValidatingWebhook{
			{ClientConfig: byService},
		}}}},
		{name: "a webhook url on the operator's list is admitted", policy: allowing, req: request{resource: vwcs, obj: &admissionregistration.ValidatingWebhookConfiguration{Webhooks: []admissionregistration.ValidatingWebhook{
			{ClientConfig: byURL("https://webhooks.example.com/validate")},
		}}}},
		{name: "a CRD whose conversion webhook has a url is refused, with the v1 field path",
			req:  request{resource: crds, obj: crd(&apiextensions.WebhookClientConfig{URL: ptr.To("https://192.0.2.2:6443/")})},
			want: "spec.conversion.webhook.clientConfig.url: Forbidden: host 192.0.2.2"},
		{name: "a CRD whose conversion webhook calls a tenant Service is admitted",
			req: request{resource: crds, obj: crd(&apiextensions.WebhookClientConfig{Service: &apiextensions.ServiceReference{Namespace: "shop", Name: "convert"}})}},
		{name: "a CRD updated to a conversion url is refused",
			req: request{resource: crds, op: admission.Update, obj: crd(&apiextensions.WebhookClientConfig{URL: ptr.To("https://127.0.0.1:2379/")}),
				old: crd(&apiextensions.WebhookClientConfig{Service: &apiextensions.ServiceReference{Namespace: "shop", Name: "convert"}})},
			want: "host 127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := tt.policy
			if p == nil {
				p = policy.Default(policy.ProfileHard)
			}
			err := admit(t, p, tt.req)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want a refusal saying %q", err, tt.want)
			}
		})
	}
}
