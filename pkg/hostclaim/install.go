package hostclaim

import (
	"bytes"
	"context"
	"fmt"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
)

// Objects decodes Manifest.
func Objects() ([]runtime.Object, error) {
	var out []runtime.Object
	for _, doc := range bytes.Split(Manifest, []byte("\n---\n")) {
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("failed to decode the hostname claims manifest: %w", err)
		}
		out = append(out, obj)
	}
	return out, nil
}

// Install creates Manifest's objects that do not exist yet (a development
// host; operators apply the published manifest) and waits until the API
// server enforces the admission policy, which it loads a moment after it
// is created.
func Install(ctx context.Context, c kubernetes.Interface) error {
	if err := create(ctx, c); err != nil {
		return err
	}
	// A dry run of a claim under another hostname's name: refused once
	// the policy is in force.
	probe := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: "e.probe.invalid", Annotations: map[string]string{AnnotationHostname: "other.invalid"}},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To("probe")},
	}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := c.CoordinationV1().Leases(Namespace).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil && kerrors.IsInvalid(err) || kerrors.IsForbidden(err), nil
	})
	if err != nil {
		return fmt.Errorf("the hostname claims admission policy is not in force: %w", err)
	}
	return nil
}

func create(ctx context.Context, c kubernetes.Interface) error {
	objs, err := Objects()
	if err != nil {
		return err
	}
	for _, obj := range objs {
		var err error
		opts := metav1.CreateOptions{}
		switch o := obj.(type) {
		case *corev1.Namespace:
			_, err = c.CoreV1().Namespaces().Create(ctx, o, opts)
		case *rbacv1.ClusterRole:
			_, err = c.RbacV1().ClusterRoles().Create(ctx, o, opts)
		case *admissionregistrationv1.ValidatingAdmissionPolicy:
			_, err = c.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, o, opts)
		case *admissionregistrationv1.ValidatingAdmissionPolicyBinding:
			_, err = c.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create(ctx, o, opts)
		default:
			return fmt.Errorf("the hostname claims manifest holds an unexpected %T", obj)
		}
		if err != nil && !kerrors.IsAlreadyExists(err) {
			return fmt.Errorf("failed to create the hostname claims' %T in host cluster: %w", obj, err)
		}
	}
	return nil
}
