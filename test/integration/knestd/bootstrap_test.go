package knestd

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	schedulingapiv1 "k8s.io/kubernetes/pkg/apis/scheduling/v1"
	"k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac/bootstrappolicy"

	"github.com/knest-dev/knest/test/integration/framework"
)

// TestIntegrationBootstrapPolicy checks that knestd's own bootstrap hooks,
// which replace upstream's, leave a fresh tenant with every default
// ClusterRole, ClusterRoleBinding, Role, RoleBinding and system
// PriorityClass; that a restart with all of them in place writes none of
// them again; and that a restart repairs a default role or binding that was
// changed or deleted, as upstream's hook does, except one annotated
// rbac.authorization.kubernetes.io/autoupdate=false.
func TestIntegrationBootstrapPolicy(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	dir := t.TempDir()
	port := framework.FreePort(t)
	args := []string{"--name=bootstrap", fmt.Sprintf("--secure-port=%d", port)}
	k := framework.Start(t, dir, args...)
	k.WaitReady(t, readyTimeout)
	client := framework.Client(t, framework.AdminConfig(t, k.AdminKubeconfig()))
	ctx := t.Context()

	t.Run("the upstream hooks are replaced by knestd's", func(t *testing.T) {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").Param("verbose", "true").DoRaw(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"[+]poststarthook/knest/bootstrap-roles ok", "[+]poststarthook/knest/bootstrap-system-priority-classes ok", "[+]poststarthook/knest/kubernetes-service ok"} {
			if !strings.Contains(string(body), want) {
				t.Errorf("/readyz?verbose lacks %q:\n%s", want, body)
			}
		}
		for _, gone := range []string{"poststarthook/rbac/bootstrap-roles", "poststarthook/scheduling/bootstrap-system-priority-classes"} {
			if strings.Contains(string(body), gone) {
				t.Errorf("/readyz?verbose still lists upstream's %q:\n%s", gone, body)
			}
		}
	})
	t.Run("a fresh tenant has every default object", func(t *testing.T) { assertDefaults(t, client) })
	t.Run("the kubernetes Service is there once ready, as upstream makes it", func(t *testing.T) {
		svc, err := client.CoreV1().Services(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if svc.Labels["provider"] != "kubernetes" || svc.Labels["component"] != "apiserver" {
			t.Errorf("labels %v, want provider=kubernetes component=apiserver", svc.Labels)
		}
		if svc.Spec.Type != corev1.ServiceTypeClusterIP || svc.Spec.ClusterIP != "10.96.0.1" || svc.Spec.Selector != nil {
			t.Errorf("spec type %s clusterIP %s selector %v, want ClusterIP 10.96.0.1 without a selector", svc.Spec.Type, svc.Spec.ClusterIP, svc.Spec.Selector)
		}
		if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "https" || svc.Spec.Ports[0].Port != 443 || svc.Spec.Ports[0].TargetPort.IntValue() != port {
			t.Errorf("ports %+v, want https 443 -> %d", svc.Spec.Ports, port)
		}
	})

	before := resourceVersions(t, client)
	k.Stop(t, 10*time.Second)
	k = framework.Start(t, dir, args...)
	k.WaitReady(t, readyTimeout)

	t.Run("a restart with the defaults in place rewrites none of them", func(t *testing.T) {
		after := resourceVersions(t, client)
		for key, rv := range before {
			if after[key] != rv {
				t.Errorf("%s: resourceVersion %s before the restart, %s after", key, rv, after[key])
			}
		}
	})

	// The tenant's admin changes and deletes defaults.
	rbac := client.RbacV1()
	if err := rbac.ClusterRoles().Delete(ctx, "system:basic-user", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := rbac.ClusterRoleBindings().Delete(ctx, "system:basic-user", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := rbac.Roles("kube-system").Delete(ctx, "system:controller:bootstrap-signer", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	proxier, err := rbac.ClusterRoles().Get(ctx, "system:node-proxier", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	proxier.Rules = proxier.Rules[:1]
	if _, err := rbac.ClusterRoles().Update(ctx, proxier, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// This one opts out: upstream leaves it as the administrator made it.
	protected, err := rbac.ClusterRoles().Get(ctx, "system:heapster", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	protected.Annotations[rbacv1.AutoUpdateAnnotationKey] = "false"
	protected.Rules = nil
	if _, err := rbac.ClusterRoles().Update(ctx, protected, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	k.Stop(t, 10*time.Second)
	k = framework.Start(t, dir, args...)
	k.WaitReady(t, readyTimeout)

	t.Run("a restart repairs changed and deleted defaults", func(t *testing.T) {
		assertDefaults(t, client)
		got, err := rbac.ClusterRoles().Get(ctx, "system:node-proxier", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Rules) <= 1 {
			t.Errorf("system:node-proxier has %d rules after the restart, want its default rules back", len(got.Rules))
		}
	})
	t.Run("a role that opts out of reconciliation is left alone", func(t *testing.T) {
		got, err := rbac.ClusterRoles().Get(ctx, "system:heapster", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Rules) != 0 {
			t.Errorf("system:heapster (autoupdate=false) has %d rules after the restart, want the administrator's 0", len(got.Rules))
		}
	})
}

// assertDefaults checks that every object of upstream's bootstrap policy
// and every system PriorityClass exists.
func assertDefaults(t *testing.T, client kubernetes.Interface) {
	t.Helper()
	ctx := t.Context()
	rbac := client.RbacV1()
	var missing []string
	check := func(kind, name string, err error) {
		if apierrors.IsNotFound(err) {
			missing = append(missing, kind+" "+name)
		} else if err != nil {
			t.Errorf("%s %s: %v", kind, name, err)
		}
	}
	for _, r := range append(bootstrappolicy.ClusterRoles(), bootstrappolicy.ControllerRoles()...) {
		_, err := rbac.ClusterRoles().Get(ctx, r.Name, metav1.GetOptions{})
		check("ClusterRole", r.Name, err)
	}
	for _, b := range append(bootstrappolicy.ClusterRoleBindings(), bootstrappolicy.ControllerRoleBindings()...) {
		_, err := rbac.ClusterRoleBindings().Get(ctx, b.Name, metav1.GetOptions{})
		check("ClusterRoleBinding", b.Name, err)
	}
	for ns, roles := range bootstrappolicy.NamespaceRoles() {
		for _, r := range roles {
			_, err := rbac.Roles(ns).Get(ctx, r.Name, metav1.GetOptions{})
			check("Role", ns+"/"+r.Name, err)
		}
	}
	for ns, bindings := range bootstrappolicy.NamespaceRoleBindings() {
		for _, b := range bindings {
			_, err := rbac.RoleBindings(ns).Get(ctx, b.Name, metav1.GetOptions{})
			check("RoleBinding", ns+"/"+b.Name, err)
		}
	}
	for _, pc := range schedulingapiv1.SystemPriorityClasses() {
		got, err := client.SchedulingV1().PriorityClasses().Get(ctx, pc.Name, metav1.GetOptions{})
		check("PriorityClass", pc.Name, err)
		if err == nil && got.Value != pc.Value {
			t.Errorf("PriorityClass %s has value %d, want %d", pc.Name, got.Value, pc.Value)
		}
	}
	if len(missing) > 0 {
		t.Errorf("missing default objects: %s", strings.Join(missing, ", "))
	}
}

// resourceVersions of every ClusterRole but the aggregated ones,
// ClusterRoleBinding and PriorityClass, by kind and name.
func resourceVersions(t *testing.T, client kubernetes.Interface) map[string]string {
	t.Helper()
	ctx := t.Context()
	out := map[string]string{}
	roles, err := client.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roles.Items {
		if r.AggregationRule != nil {
			// Its rules are the aggregation controller's to write.
			continue
		}
		out["ClusterRole "+r.Name] = r.ResourceVersion
	}
	bindings, err := client.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bindings.Items {
		out["ClusterRoleBinding "+b.Name] = b.ResourceVersion
	}
	pcs, err := client.SchedulingV1().PriorityClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, pc := range pcs.Items {
		out["PriorityClass "+pc.Name] = pc.ResourceVersion
	}
	return out
}
