package syncer

import (
	"context"
	"fmt"
	"maps"
	"slices"

	networkingv1 "k8s.io/api/networking/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/knest-dev/knest/pkg/policy"
)

// TenantIngressController is the controller of the IngressClasses knestd
// shows the tenant: the host's, through the syncer.
const TenantIngressController = "knest.io/host-ingress"

// ensureTenantIngressClasses gives the tenant an IngressClass for each
// class the policy lets its Ingresses name, so its tools list them and its
// API server fills the default class (marked as such) into Ingresses that
// name none. A class the tenant already has is left as it is: classes are
// the tenant's objects, and what reaches the host is the policy's mapping,
// whatever they say.
func ensureTenantIngressClasses(ctx context.Context, c client.Client, ex policy.Exposure) error {
	for _, name := range slices.Sorted(maps.Keys(ex.IngressClasses)) {
		ic := &networkingv1.IngressClass{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app.kubernetes.io/managed-by": "knest"}},
			Spec:       networkingv1.IngressClassSpec{Controller: TenantIngressController},
		}
		if name == ex.DefaultIngressClass {
			ic.Annotations = map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"}
		}
		if err := c.Create(ctx, ic); err != nil && !kerrors.IsAlreadyExists(err) {
			return fmt.Errorf("failed to create IngressClass %s in tenant cluster: %w", name, err)
		}
	}
	return nil
}
