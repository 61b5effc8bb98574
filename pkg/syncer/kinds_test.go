package syncer

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/knest-dev/knest/pkg/hostclaim"
	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/syncer/internal/synctest"
	"github.com/knest-dev/knest/pkg/translate"
)

func TestEngineRecreatesWhatCannotChangeInPlace(t *testing.T) {
	t.Parallel()
	for _, failDelete := range []bool{false, true} {
		name := "an immutable Secret whose host copy holds other data is deleted, then created anew"
		if failDelete {
			name = "a failed delete of an immutable copy is a SyncFailed event and an error"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			pol := testPolicy()
			k := kind(t, pol, "Secret")
			r := newReconciler(e, k, pol)
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: "creds"},
				Immutable: ptr.To(true), Data: map[string][]byte{"password": []byte("new")}}
			create(t, e.TenantAdmin, s)
			pod := podUsing(e.Namespace, "user", "unused")
			pod.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}}}}
			create(t, e.TenantAdmin, pod)
			old := hostCopy(e, k, pol, s).(*corev1.Secret)
			old.Data = map[string][]byte{"password": []byte("old")}
			create(t, e.HostAdmin, old)
			if failDelete {
				e.Inject(synctest.Host, failing("Delete")(e, k, pol))
			}
			key := client.ObjectKeyFromObject(s)

			result, writes, err := e.Reconcile(t, r, key)
			if failDelete {
				if err == nil || !cmp.Equal(e.Reasons(key), []string{"SyncFailed"}) {
					t.Errorf("Reconcile = %v with events %v, want an error and a SyncFailed event", err, e.Reasons(key))
				}
				e.Inject(synctest.Host, interceptor.Funcs{})
			} else {
				if err != nil || result.RequeueAfter == 0 {
					t.Errorf("Reconcile = %+v, %v; want a requeue soon", result, err)
				}
				if diff := cmp.Diff([]string{"host delete Secret"}, synctest.Ops(writes)); diff != "" {
					t.Errorf("writes (-want +got):\n%s", diff)
				}
			}
			e.Settle(t, r, key)
			var got corev1.Secret
			if err := e.HostAdmin.Get(t.Context(), client.ObjectKeyFromObject(old), &got); err != nil {
				t.Fatal(err)
			}
			if string(got.Data["password"]) != "new" || got.UID == old.UID {
				t.Errorf("host copy %s holds %q (UID %s), want a new copy holding the tenant's data", got.Name, got.Data["password"], got.UID)
			}
		})
	}
}

func TestEngineBringsStatusBack(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		tenantFuncs interceptor.Funcs
		wantResult  reconcile.Result
		wantErr     bool
		wantWrites  []string
	}{
		{name: "the host claim's status is written to the tenant claim", wantWrites: []string{"tenant update PersistentVolumeClaim/status"}},
		{name: "a status write that loses a race is retried without an error",
			tenantFuncs: interceptor.Funcs{SubResourceUpdate: func(_ context.Context, _ client.Client, _ string, obj client.Object, _ ...client.SubResourceUpdateOption) error {
				return kerrors.NewConflict(corev1.Resource("persistentvolumeclaims"), obj.GetName(), errors.New("injected"))
			}},
			wantResult: reconcile.Result{Requeue: true}},
		{name: "a failed status write is an error",
			tenantFuncs: interceptor.Funcs{SubResourceUpdate: func(context.Context, client.Client, string, client.Object, ...client.SubResourceUpdateOption) error {
				return errInjected
			}},
			wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			pol := testPolicy()
			r := newReconciler(e, kind(t, pol, "PersistentVolumeClaim"), pol)
			pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
				}}
			create(t, e.TenantAdmin, pvc)
			key := client.ObjectKeyFromObject(pvc)
			e.Settle(t, r, key)

			// The host binds the claim.
			var h corev1.PersistentVolumeClaim
			hostKey := e.Writer.HostKey(key.Namespace, key.Name, translate.MaxSubdomainLength)
			if err := e.HostAdmin.Get(t.Context(), hostKey, &h); err != nil {
				t.Fatal(err)
			}
			h.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, AccessModes: h.Spec.AccessModes,
				Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}
			if err := e.HostAdmin.Status().Update(t.Context(), &h); err != nil {
				t.Fatal(err)
			}
			e.Inject(synctest.Tenant, tt.tenantFuncs)
			result, writes, err := e.Reconcile(t, r, key)
			if (err != nil) != tt.wantErr || result != tt.wantResult {
				t.Errorf("Reconcile = %+v, %v; want %+v, an error: %t", result, err, tt.wantResult, tt.wantErr)
			}
			if diff := cmp.Diff(tt.wantWrites, synctest.Ops(writes)); diff != "" {
				t.Errorf("writes (-want +got):\n%s", diff)
			}
			e.Inject(synctest.Tenant, interceptor.Funcs{})
			e.Settle(t, r, key)
			if err := e.TenantAdmin.Get(t.Context(), key, pvc); err != nil {
				t.Fatal(err)
			}
			if pvc.Status.Phase != corev1.ClaimBound {
				t.Errorf("tenant claim is %s, want Bound as on the host", pvc.Status.Phase)
			}
		})
	}
}

func TestEngineRefusesClaimsThePolicyForbids(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pol := testPolicy()
	r := newReconciler(e, kind(t, pol, "PersistentVolumeClaim"), pol)
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: ptr.To("host-local-disks"),
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		}}
	create(t, e.TenantAdmin, pvc)
	key := client.ObjectKeyFromObject(pvc)
	result, writes, err := e.Reconcile(t, r, key)
	if err != nil || result.RequeueAfter != refusedRetry || len(writes) > 0 {
		t.Errorf("Reconcile = %+v, %v with writes %v; want no writes and another look in %s", result, err, writes, refusedRetry)
	}
	if diff := cmp.Diff([]string{"SyncRefused"}, e.Reasons(key)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestEngineSparesCopiesMadeInAdmission(t *testing.T) {
	t.Parallel()
	for _, grace := range []time.Duration{30 * time.Second, 0} {
		name := "a host Service made in admission for a tenant Service not stored yet is spared for a while"
		if grace == 0 {
			name = "a host Service made in admission is deleted once its grace is over and no tenant Service came"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			pol := testPolicy()
			k := kind(t, pol, "Service")
			k.OrphanGrace = grace
			r := newReconciler(e, k, pol)
			// Admission makes the copy before the tenant object has a UID.
			svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: "web"},
				Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}, Selector: map[string]string{"app": "web"}}}
			h := hostCopy(e, k, pol, svc)
			create(t, e.HostAdmin, h)
			result, writes, err := e.Reconcile(t, r, client.ObjectKeyFromObject(svc))
			if err != nil {
				t.Fatal(err)
			}
			if grace > 0 {
				if len(writes) > 0 || result.RequeueAfter <= 0 || result.RequeueAfter > grace {
					t.Errorf("Reconcile = %+v with writes %v; want none and another look within %s", result, writes, grace)
				}
				return
			}
			if diff := cmp.Diff([]string{"host delete Service"}, synctest.Ops(writes)); diff != "" {
				t.Errorf("writes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEngineServices(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pol := testPolicy()
	k := kind(t, pol, "Service")
	r := newReconciler(e, k, pol)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: "web"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}, Selector: map[string]string{"app": "web"}}}
	create(t, e.TenantAdmin, svc)
	key := client.ObjectKeyFromObject(svc)
	e.Settle(t, r, key)
	var h corev1.Service
	if err := e.HostAdmin.Get(t.Context(), e.Writer.HostKey(key.Namespace, key.Name, k.MaxNameLength), &h); err != nil {
		t.Fatalf("no host copy: %v", err)
	}
	if h.Spec.ClusterIP != svc.Spec.ClusterIP {
		t.Errorf("host copy has ClusterIP %s, want the tenant's %s", h.Spec.ClusterIP, svc.Spec.ClusterIP)
	}

	// The tenant's own API server Service never goes to the host.
	api := types.NamespacedName{Namespace: metav1.NamespaceDefault, Name: "kubernetes"}
	if _, writes, err := e.Reconcile(t, r, api); err != nil || len(writes) > 0 {
		t.Errorf("reconciling %s wrote %v (error %v), want nothing", api, writes, err)
	}
}

func TestEngineEndpointSlicesOnlyPointAtTheTenantsPods(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pol := testPolicy()
	k := kind(t, pol, "EndpointSlice")
	r := newReconciler(e, k, pol)
	// A Service without a selector, whose endpoints the tenant writes.
	create(t, e.TenantAdmin, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: "db"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 5432}}}})
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: e.Namespace, Name: "db-1", Labels: map[string]string{discoveryv1.LabelServiceName: "db"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.1.7"}}},
		Ports:       []discoveryv1.EndpointPort{{Port: ptr.To[int32](5432)}},
	}
	create(t, e.TenantAdmin, slice)
	key := client.ObjectKeyFromObject(slice)

	result, writes, err := e.Reconcile(t, r, key)
	if err != nil || len(writes) > 0 || result.RequeueAfter != refusedRetry {
		t.Errorf("a slice pointing at an address no tenant pod has: Reconcile = %+v, %v, writes %v; want a refusal", result, err, writes)
	}
	if diff := cmp.Diff([]string{"SyncRefused"}, e.Reasons(key)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	// A host pod of the tenant gets the address.
	hp := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: e.HostNamespace, Name: "db-pod", Labels: map[string]string{translate.LabelTenant: e.Tenant}},
		Spec: corev1.PodSpec{ServiceAccountName: "knest-workload", Containers: []corev1.Container{{Name: "db", Image: "postgres"}}}}
	create(t, e.HostAdmin, hp)
	hp.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.1.7", PodIPs: []corev1.PodIP{{IP: "10.244.1.7"}}}
	if err := e.HostAdmin.Status().Update(t.Context(), hp); err != nil {
		t.Fatal(err)
	}
	e.Settle(t, r, key)
	var h discoveryv1.EndpointSlice
	if err := e.HostAdmin.Get(t.Context(), e.Writer.HostKey(key.Namespace, key.Name, k.MaxNameLength), &h); err != nil {
		t.Fatalf("no host copy once the address is the tenant's: %v", err)
	}

	// Slices the tenant's endpointslice controller computes are not synced.
	computed := slice.DeepCopy()
	computed.ObjectMeta = metav1.ObjectMeta{Namespace: e.Namespace, Name: "db-2", Labels: map[string]string{
		discoveryv1.LabelServiceName: "db", discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"}}
	create(t, e.TenantAdmin, computed)
	if _, writes, err := e.Reconcile(t, r, client.ObjectKeyFromObject(computed)); err != nil || len(writes) > 0 {
		t.Errorf("a computed slice was reconciled with writes %v and error %v, want none", writes, err)
	}
}

func TestEngineNetworkPolicies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pol := testPolicy()
	k := kind(t, pol, "NetworkPolicy")
	r := newReconciler(e, k, pol)
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: "deny"},
		Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}}
	create(t, e.TenantAdmin, np)
	key := client.ObjectKeyFromObject(np)
	_, writes, err := e.Reconcile(t, r, key)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"host create NetworkPolicy"}, synctest.Ops(writes)); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
	e.Settle(t, r, key)
}

func TestEngineReadFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		funcs interceptor.Funcs
	}{
		{name: "a failed read of the tenant object is an error", funcs: interceptor.Funcs{
			Get: func(context.Context, client.WithWatch, client.ObjectKey, client.Object, ...client.GetOption) error {
				return errInjected
			}}},
		{name: "a failed look-up of the pods that use an object is an error", funcs: interceptor.Funcs{
			List: func(context.Context, client.WithWatch, client.ObjectList, ...client.ListOption) error {
				return errInjected
			}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			pol := testPolicy()
			k := kind(t, pol, "ConfigMap")
			r := newReconciler(e, k, pol)
			setUpConfigMap(t, e, k, pol, tenantWanted, hostAbsent)
			e.Inject(synctest.Tenant, tt.funcs)
			if _, writes, err := e.Reconcile(t, r, types.NamespacedName{Namespace: e.Namespace, Name: "cm"}); err == nil || len(writes) > 0 {
				t.Errorf("Reconcile wrote %v and returned %v, want nothing written and an error", writes, err)
			}
			if got := e.Counter(t, "knest_syncer_errors_total", map[string]string{"kind": "ConfigMap"}); got != 1 {
				t.Errorf("knest_syncer_errors_total{kind=ConfigMap} = %v, want 1", got)
			}
		})
	}
}

func TestEngineMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pol := testPolicy()
	k := kind(t, pol, "ConfigMap")
	r := newReconciler(e, k, pol)
	setUpConfigMap(t, e, k, pol, tenantWanted, hostAbsent)
	key := types.NamespacedName{Namespace: e.Namespace, Name: "cm"}
	e.Settle(t, r, key)
	e.Settle(t, r, key)
	for _, m := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"knest_syncer_writes_total", map[string]string{"kind": "ConfigMap", "cluster": "host", "op": "create"}, 1},
		{"knest_syncer_writes_total", map[string]string{"kind": "ConfigMap", "cluster": "host", "op": "update"}, 0},
		{"knest_syncer_reconciles_total", map[string]string{"kind": "ConfigMap"}, 3},
		{"knest_syncer_errors_total", map[string]string{"kind": "ConfigMap"}, 0},
	} {
		if got := e.Counter(t, m.name, m.labels); got != m.want {
			t.Errorf("%s%v = %v, want %v", m.name, m.labels, got, m.want)
		}
	}
}

func TestEngineEventsReachTheTenant(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pol := testPolicy()
	k := kind(t, pol, "ConfigMap")
	r := newReconciler(e, k, pol)
	cm, _ := setUpConfigMap(t, e, k, pol, tenantWanted, hostUnmarked)
	if _, _, err := e.Reconcile(t, r, client.ObjectKeyFromObject(cm)); err != nil {
		t.Fatal(err)
	}
	var found *eventsv1.Event
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		var list eventsv1.EventList
		if err := e.TenantAdmin.List(ctx, &list, client.InNamespace(e.Namespace)); err != nil {
			return false, err
		}
		for i, ev := range list.Items {
			if ev.Regarding.Name == cm.Name && ev.Regarding.Kind == "ConfigMap" && ev.Reason == "HostNameConflict" {
				found = &list.Items[i]
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("no HostNameConflict Event about ConfigMap %s in the tenant: %v", cm.Name, err)
	}
	if found.Type != corev1.EventTypeWarning || found.ReportingController != "knest-syncer" {
		t.Errorf("Event is a %s from %s, want a Warning from knest-syncer", found.Type, found.ReportingController)
	}
}

func TestEngineIngresses(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	pol := testPolicy()
	pol.Exposure = policy.Exposure{Tenant: e.Tenant, IngressClasses: map[string]string{"web": "knest-dev"}}
	pol.Metadata.Annotations = append(pol.Metadata.Annotations, "nginx.ingress.kubernetes.io/rewrite-target")
	ik, sk := kind(t, pol, "Ingress"), kind(t, pol, "Secret")
	ir, sr := newReconciler(e, ik, pol), newReconciler(e, sk, pol)
	host := "shop." + e.Tenant + ".apps.example.com"
	installClaims(t, e)

	create(t, e.TenantAdmin, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: "web"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}, Selector: map[string]string{"app": "web"}}})
	tlsSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: "shop-tls"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: []byte("cert"), corev1.TLSPrivateKeyKey: []byte("key")}}
	create(t, e.TenantAdmin, tlsSecret)
	secretKey := client.ObjectKeyFromObject(tlsSecret)
	hostSecretKey := e.Writer.HostKey(secretKey.Namespace, secretKey.Name, sk.MaxNameLength)
	if _, writes, err := e.Reconcile(t, sr, secretKey); err != nil || len(writes) > 0 {
		t.Errorf("a Secret nothing references: writes %v, error %v; want none", writes, err)
	}

	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: "shop", Annotations: map[string]string{
			"nginx.ingress.kubernetes.io/rewrite-target":        "/",
			"nginx.ingress.kubernetes.io/configuration-snippet": "proxy_pass http://knestd.other-tenant;",
		}},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To("web"),
			Rules: []networkingv1.IngressRule{{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix),
					Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Name: "http"}}}}},
			}}}},
			TLS: []networkingv1.IngressTLS{{Hosts: []string{host}, SecretName: "shop-tls"}},
		},
	}
	create(t, e.TenantAdmin, ing)
	key := client.ObjectKeyFromObject(ing)
	e.Settle(t, ir, key)
	e.Settle(t, sr, secretKey)

	var h networkingv1.Ingress
	if err := e.HostAdmin.Get(ctx, e.Writer.HostKey(key.Namespace, key.Name, ik.MaxNameLength), &h); err != nil {
		t.Fatalf("no host copy: %v", err)
	}
	if got := ptr.Deref(h.Spec.IngressClassName, ""); got != "knest-dev" {
		t.Errorf("host class = %q, want knest-dev", got)
	}
	if got, want := h.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name, e.Writer.HostKey(e.Namespace, "web", translate.MaxLabelLength).Name; got != want {
		t.Errorf("host backend = %q, want the host Service %q", got, want)
	}
	if got := h.Spec.TLS[0].SecretName; got != hostSecretKey.Name {
		t.Errorf("host TLS secret = %q, want the host Secret %q", got, hostSecretKey.Name)
	}
	if _, ok := h.Annotations["nginx.ingress.kubernetes.io/configuration-snippet"]; ok || h.Annotations["nginx.ingress.kubernetes.io/rewrite-target"] != "/" {
		t.Errorf("host annotations = %v, want the allowed rewrite-target only", h.Annotations)
	}
	var hs corev1.Secret
	if err := e.HostAdmin.Get(ctx, hostSecretKey, &hs); err != nil || hs.Type != corev1.SecretTypeTLS {
		t.Errorf("host TLS Secret: %v (type %q), want a kubernetes.io/tls copy", err, hs.Type)
	}

	// The host's controller publishes an address; it reaches the tenant.
	h.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "203.0.113.7"}}
	if err := e.HostAdmin.Status().Update(ctx, &h); err != nil {
		t.Fatal(err)
	}
	e.Settle(t, ir, key)
	if err := e.TenantAdmin.Get(ctx, key, ing); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(h.Status, ing.Status); diff != "" {
		t.Errorf("tenant status (-host +tenant):\n%s", diff)
	}

	// A hostname outside the allowlist (admission was skipped, or the
	// policy tightened): refused with the reason, and the host copy goes.
	ing.Spec.Rules[0].Host = "shop.other.apps.example.com"
	if err := e.TenantAdmin.Update(ctx, ing); err != nil {
		t.Fatal(err)
	}
	result, writes, err := e.Reconcile(t, ir, key)
	if err != nil || result.RequeueAfter != refusedRetry {
		t.Errorf("Reconcile = %+v, %v; want a refusal", result, err)
	}
	// The copy goes, and the claim of its hostname with it.
	if diff := cmp.Diff([]string{"host delete Ingress", "host delete Lease"}, synctest.Ops(writes)); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"SyncRefused"}, e.Reasons(key)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	// Once no Ingress names it, the TLS Secret leaves the host.
	if err := e.TenantAdmin.Delete(ctx, ing); err != nil {
		t.Fatal(err)
	}
	e.Settle(t, ir, key)
	e.Settle(t, sr, secretKey)
	if err := e.HostAdmin.Get(ctx, hostSecretKey, &hs); !kerrors.IsNotFound(err) {
		t.Errorf("host TLS Secret after its Ingress went: %v, want not found", err)
	}
}

// installClaims installs the operator's hostname claims manifest on the
// host (once is enough; it is idempotent).
func installClaims(t *testing.T, e *synctest.Env) {
	t.Helper()
	if err := hostclaim.Install(t.Context(), kubernetes.NewForConfigOrDie(e.HostConfig)); err != nil {
		t.Fatal(err)
	}
}

// claimHolder is the holder of hostname's claim, or "".
func claimHolder(t *testing.T, e *synctest.Env, hostname string) string {
	t.Helper()
	var l coordinationv1.Lease
	err := e.HostAdmin.Get(t.Context(), types.NamespacedName{Namespace: hostclaim.Namespace, Name: hostclaim.Name(hostname)}, &l)
	if kerrors.IsNotFound(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return ptr.Deref(l.Spec.HolderIdentity, "")
}

func TestEngineTwoTenantsCannotTakeTheSameHostname(t *testing.T) {
	t.Parallel()
	// Two tenants whose policies both allow shop.<id>.example.com: the
	// operator's mistake, or two tenants of one name in two host
	// namespaces, whose default wildcards are the same.
	a, b := newEnv(t), newEnv(t)
	installClaims(t, a)
	hostname := "shop." + a.Tenant + ".example.com"
	type tenant struct {
		e   *synctest.Env
		r   *reconciler
		key types.NamespacedName
	}
	var ts []tenant
	for _, e := range []*synctest.Env{a, b} {
		pol := testPolicy()
		pol.Exposure = policy.Exposure{Tenant: e.Tenant, Hostnames: []string{hostname}, IngressClasses: map[string]string{"web": "knest-dev"}}
		ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: "shop"},
			Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("web"), Rules: []networkingv1.IngressRule{{Host: hostname,
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
					Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix),
					Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}}}}}}}
		create(t, e.TenantAdmin, ing)
		ts = append(ts, tenant{e: e, r: newReconciler(e, kind(t, pol, "Ingress"), pol), key: client.ObjectKeyFromObject(ing)})
	}

	// a is first: its copy reaches the host and it holds the claim.
	ts[0].e.Settle(t, ts[0].r, ts[0].key)
	if got := claimHolder(t, a, hostname); got != a.HostNamespace {
		t.Fatalf("claim holder = %q, want %s", got, a.HostNamespace)
	}
	// b is refused, with the reason as an Event, and nothing of it reaches
	// the host.
	result, writes, err := b.Reconcile(t, ts[1].r, ts[1].key)
	if err != nil || result.RequeueAfter != refusedRetry || len(writes) > 0 {
		t.Errorf("the second tenant: Reconcile = %+v, %v with writes %v; want a refusal and no host write", result, err, synctest.Ops(writes))
	}
	if diff := cmp.Diff([]string{"SyncRefused"}, b.Reasons(ts[1].key)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	var hosts networkingv1.IngressList
	if err := b.HostAdmin.List(t.Context(), &hosts, client.InNamespace(b.HostNamespace)); err != nil || len(hosts.Items) != 0 {
		t.Errorf("the second tenant's host namespace holds %d Ingresses (%v), want none", len(hosts.Items), err)
	}
	// b letting go of what it never held changes nothing.
	if err := b.Writer.ReleaseHostname(t.Context(), hostname); err != nil || claimHolder(t, a, hostname) != a.HostNamespace {
		t.Errorf("the second tenant released the first's claim (%v)", err)
	}

	// a deletes its Ingress: its copy and claim go, and b gets the name.
	if err := a.TenantAdmin.Delete(t.Context(), &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ts[0].key.Namespace, Name: ts[0].key.Name}}); err != nil {
		t.Fatal(err)
	}
	a.Settle(t, ts[0].r, ts[0].key)
	if got := claimHolder(t, a, hostname); got != "" {
		t.Errorf("claim holder after the first tenant's Ingress went = %q, want none", got)
	}
	b.Settle(t, ts[1].r, ts[1].key)
	if got := claimHolder(t, a, hostname); got != b.HostNamespace {
		t.Errorf("claim holder = %q, want the second tenant's %s", got, b.HostNamespace)
	}
}

// The claims are safe from the tenants' host identities themselves: the
// operator's ValidatingAdmissionPolicy, on a real API server.
func TestHostnameClaimPolicy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	installClaims(t, e)
	ctx := t.Context()
	// Two knestd identities, bound as the chart binds them.
	knestd := func(ns string) client.Client {
		cfg := rest.CopyConfig(e.HostConfig)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":knestd", Groups: []string{"system:serviceaccounts", "system:authenticated"}}
		c, err := client.New(cfg, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		create(t, e.HostAdmin, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: hostclaim.Namespace, Name: "knestd-" + ns},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "knest:hostname-claims"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "knestd"}}})
		return c
	}
	nsA, nsB := e.HostNamespace+"-a", e.HostNamespace+"-b"
	a, b := knestd(nsA), knestd(nsB)
	hostname := "shop." + e.Tenant + ".example.com"
	claim := func(name, hostname, holder string) *coordinationv1.Lease {
		return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: hostclaim.Namespace, Name: name,
			Annotations: map[string]string{hostclaim.AnnotationHostname: hostname}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(holder)}}
	}
	refused := func(what string, err error, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want a refusal saying %q", what, err, want)
		}
	}
	if err := a.Create(ctx, claim(hostclaim.Name(hostname), hostname, nsA)); err != nil {
		t.Fatalf("a knestd claiming a hostname for its own namespace: %v", err)
	}
	refused("b taking a's hostname", b.Create(ctx, claim(hostclaim.Name(hostname), hostname, nsB)), "already exists")
	refused("b deleting a's claim", b.Delete(ctx, claim(hostclaim.Name(hostname), hostname, nsA)),
		"hostname "+hostname+" is claimed by host namespace "+nsA+", not by "+nsB)
	other := "api." + e.Tenant + ".example.com"
	refused("b claiming a hostname in a's name", b.Create(ctx, claim(hostclaim.Name(other), other, nsA)), "is claimed by host namespace "+nsA)
	refused("b claiming a hostname under another claim's name", b.Create(ctx, claim("e.decoy."+e.Tenant+".example.com", other, nsB)),
		"a hostname claim is named after its knest.io/hostname annotation")
	refused("b claiming a wildcard under an exact name", b.Create(ctx, claim("e."+e.Tenant+".example.com", "*."+e.Tenant+".example.com", nsB)),
		"a hostname claim is named after")
	if err := b.Create(ctx, claim(hostclaim.Name("*."+e.Tenant+".example.com"), "*."+e.Tenant+".example.com", nsB)); err != nil {
		t.Errorf("b claiming a free wildcard: %v", err)
	}
	if err := a.Delete(ctx, claim(hostclaim.Name(hostname), hostname, nsA)); err != nil {
		t.Errorf("a releasing its claim: %v", err)
	}
}

func TestTenantIngressClasses(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	web, internal := "web-"+e.Tenant, "internal-"+e.Tenant
	ex := policy.Exposure{IngressClasses: map[string]string{web: "nginx-shared", internal: "nginx-internal"}, DefaultIngressClass: web}
	for range 2 { // the second time, at a restart, finds them there
		if err := ensureTenantIngressClasses(ctx, e.TenantAdmin, ex); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name        string
		wantDefault bool
	}{{web, true}, {internal, false}} {
		var ic networkingv1.IngressClass
		if err := e.TenantAdmin.Get(ctx, types.NamespacedName{Name: tc.name}, &ic); err != nil {
			t.Fatalf("tenant IngressClass %s: %v", tc.name, err)
		}
		if isDefault := ic.Annotations[networkingv1.AnnotationIsDefaultIngressClass] == "true"; isDefault != tc.wantDefault || ic.Spec.Controller != TenantIngressController {
			t.Errorf("tenant IngressClass %s: default %v, controller %q; want default %v", tc.name, isDefault, ic.Spec.Controller, tc.wantDefault)
		}
	}
}
