package egress

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiserverv1beta1 "k8s.io/apiserver/pkg/apis/apiserver/v1beta1"
	"sigs.k8s.io/yaml"
)

// SelectorConfiguration is the tenant API server's
// EgressSelectorConfiguration (--egress-selector-config-file): its
// "cluster" and "controlplane" egress go through the Server on socket as
// HTTP CONNECT, its "etcd" egress (knestd's embedded etcd) directly. The
// doc says which connections each egress carries.
func SelectorConfiguration(socket string) ([]byte, error) {
	through := apiserverv1beta1.Connection{
		ProxyProtocol: apiserverv1beta1.ProtocolHTTPConnect,
		Transport:     &apiserverv1beta1.Transport{UDS: &apiserverv1beta1.UDSTransport{UDSName: socket}},
	}
	cfg := apiserverv1beta1.EgressSelectorConfiguration{
		TypeMeta: metav1.TypeMeta{APIVersion: apiserverv1beta1.SchemeGroupVersion.String(), Kind: "EgressSelectorConfiguration"},
		EgressSelections: []apiserverv1beta1.EgressSelection{
			{Name: "cluster", Connection: through},
			{Name: "controlplane", Connection: through},
			{Name: "etcd", Connection: apiserverv1beta1.Connection{ProxyProtocol: apiserverv1beta1.ProtocolDirect}},
		},
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to render the egress selector configuration: %w", err)
	}
	return data, nil
}
