package confinement

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	genericinitializer "k8s.io/apiserver/pkg/admission/initializer"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/warning"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/kubernetes/pkg/apis/apps"
	"k8s.io/kubernetes/pkg/apis/batch"
	core "k8s.io/kubernetes/pkg/apis/core"
	"k8s.io/kubernetes/pkg/apis/discovery"
	"k8s.io/kubernetes/pkg/apis/networking"
	"k8s.io/kubernetes/pkg/apis/scheduling"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/pkg/pki"
	"github.com/knest-dev/knest/pkg/policy"
)

func pod(tweaks ...func(*core.Pod)) *core.Pod {
	p := &core.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
		Spec: core.PodSpec{
			SecurityContext: &core.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](1000)},
			Containers:      []core.Container{{Name: "web", Image: "nginx"}},
		},
	}
	for _, t := range tweaks {
		t(p)
	}
	return p
}

var tenantAdmin = &user.DefaultInfo{Name: "knest-admin", Groups: []string{user.SystemPrivilegedGroup}}

type request struct {
	obj, old    runtime.Object
	resource    schema.GroupVersionResource
	subresource string
	op          admission.Operation
	user        user.Info
	// namespace and name default to shop and x.
	namespace, name string
}

func (r request) attributes() admission.Attributes {
	if r.op == "" {
		r.op = admission.Create
	}
	if r.user == nil {
		r.user = tenantAdmin
	}
	var opts runtime.Object = &metav1.CreateOptions{}
	if r.op == admission.Update {
		opts = &metav1.UpdateOptions{}
	}
	if r.namespace == "" {
		r.namespace, r.name = "shop", "x"
	}
	return admission.NewAttributesRecord(r.obj, r.old, schema.GroupVersionKind{}, r.namespace, r.name, r.resource, r.subresource, r.op, opts, false, r.user)
}

// tenantPods are the pods the plugin's informer and client know: a running
// pod and a finished one, whose IP is no longer the tenant's.
var tenantPods = []runtime.Object{
	&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.1.5", PodIPs: []corev1.PodIP{{IP: "10.244.1.5"}, {IP: "fd00::5"}}}},
	&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "done", Namespace: "batch"},
		Status: corev1.PodStatus{Phase: corev1.PodSucceeded, PodIP: "10.244.1.6", PodIPs: []corev1.PodIP{{IP: "10.244.1.6"}}}},
	&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "late", Namespace: "shop"},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.1.7", PodIPs: []corev1.PodIP{{IP: "10.244.1.7"}}}},
}

// initialized returns the plugin initialized as the API server does it: a
// started pod informer and a client. The informer lags: it has not seen pod
// "late", which only the client knows.
func initialized(t *testing.T, p *policy.Policy) admission.Interface {
	t.Helper()
	return initializedWith(t, p, tenantPods[:2], tenantPods)
}

// initializedWith is initialized with the pods the informer and the client
// know.
func initializedWith(t *testing.T, p *policy.Policy, informed, listed []runtime.Object) admission.Interface {
	t.Helper()
	plugin, err := NewFactory(p)(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	informers := informers.NewSharedInformerFactory(fake.NewClientset(informed...), 0)
	admission.PluginInitializers{genericinitializer.New(fake.NewClientset(listed...), nil, informers, nil, nil, nil, ctx.Done(), nil)}.Initialize(plugin)
	if err := plugin.(admission.InitializationValidator).ValidateInitialization(); err != nil {
		t.Fatal(err)
	}
	informers.Start(ctx.Done())
	informers.WaitForCacheSync(ctx.Done())
	return plugin
}

// admit runs the plugin's mutation then validation, as the API server does.
func admit(t *testing.T, p *policy.Policy, r request) error {
	t.Helper()
	_, err := admitWarned(t, p, r)
	return err
}

// admitWarned is admit, also returning the API warnings the plugin gave.
func admitWarned(t *testing.T, p *policy.Policy, r request) (warnings, error) {
	t.Helper()
	plugin := initialized(t, p)
	a := r.attributes()
	var got warnings
	ctx := warning.WithWarningRecorder(context.Background(), &got)
	if err := plugin.(admission.MutationInterface).Admit(ctx, a, nil); err != nil {
		return got, err
	}
	return got, plugin.(admission.ValidationInterface).Validate(ctx, a, nil)
}

var (
	pods           = core.SchemeGroupVersion.WithResource("pods")
	services       = core.SchemeGroupVersion.WithResource("services")
	namespaces     = core.SchemeGroupVersion.WithResource("namespaces")
	deployments    = apps.SchemeGroupVersion.WithResource("deployments")
	daemonsets     = apps.SchemeGroupVersion.WithResource("daemonsets")
	cronjobs       = batch.SchemeGroupVersion.WithResource("cronjobs")
	priorityclss   = scheduling.SchemeGroupVersion.WithResource("priorityclasses")
	endpointslices = discovery.SchemeGroupVersion.WithResource("endpointslices")
	endpoints      = core.SchemeGroupVersion.WithResource("endpoints")
)

func slice(addrs ...string) *discovery.EndpointSlice {
	s := &discovery.EndpointSlice{AddressType: discovery.AddressTypeIPv4}
	for _, a := range addrs {
		s.Endpoints = append(s.Endpoints, discovery.Endpoint{Addresses: []string{a}})
	}
	return s
}

func TestConfinement(t *testing.T) {
	t.Parallel()
	hard, soft := policy.Default(policy.ProfileHard), policy.Default(policy.ProfileSoft)
	pool := policy.Default(policy.ProfileSoft)
	pool.PoolNodes = true
	restricted := policy.Default(policy.ProfileHard)
	restricted.PodSecurityLevel = psapi.LevelRestricted
	template := func(p *core.Pod) core.PodTemplateSpec {
		return core.PodTemplateSpec{ObjectMeta: p.ObjectMeta, Spec: p.Spec}
	}
	tests := []struct {
		name   string
		policy *policy.Policy
		req    request
		// refused is a substring the refusal must contain; "" means admitted.
		refused string
		// warned is text one of the API warnings must contain (none if empty).
		warned string
	}{
		{name: "a restricted pod is admitted in hard", policy: hard, req: request{obj: pod(), resource: pods}},
		{name: "a root pod (kubectl run --image=busybox) is admitted in hard", policy: hard,
			req: request{obj: pod(func(p *core.Pod) { p.Spec.SecurityContext = nil }), resource: pods}},
		{name: "a root pod is admitted in soft", policy: soft,
			req: request{obj: pod(func(p *core.Pod) { p.Spec.SecurityContext = nil }), resource: pods}},
		{name: "a pod without runAsNonRoot is refused where the operator raised the floor to restricted, naming the field", policy: restricted,
			req: request{obj: pod(func(p *core.Pod) { p.Spec.SecurityContext = nil }), resource: pods}, refused: "runAsNonRoot"},
		{name: "kubectl debug --profile=sysadmin (a privileged ephemeral container) is refused", policy: soft,
			req: request{obj: pod(func(p *core.Pod) {
				p.Spec.EphemeralContainers = []core.EphemeralContainer{{EphemeralContainerCommon: core.EphemeralContainerCommon{
					Name: "debugger", Image: "busybox", SecurityContext: &core.SecurityContext{Privileged: ptr.To(true)},
				}}}
			}), old: pod(), resource: pods, subresource: "ephemeralcontainers", op: admission.Update}, refused: "spec.ephemeralContainers[0].securityContext.privileged"},
		{name: "a plain ephemeral container (kubectl debug) is admitted", policy: hard,
			req: request{obj: pod(func(p *core.Pod) {
				p.Spec.EphemeralContainers = []core.EphemeralContainer{{EphemeralContainerCommon: core.EphemeralContainerCommon{Name: "debugger", Image: "busybox"}}}
			}), old: pod(), resource: pods, subresource: "ephemeralcontainers", op: admission.Update}},
		{name: "a projected cluster trust bundle (host trust) is refused", policy: hard,
			req: request{obj: pod(func(p *core.Pod) {
				p.Spec.Volumes = []core.Volume{{Name: "ca", VolumeSource: core.VolumeSource{Projected: &core.ProjectedVolumeSource{
					Sources: []core.VolumeProjection{{ClusterTrustBundle: &core.ClusterTrustBundleProjection{SignerName: ptr.To("example.com/s"), Path: "ca"}}},
				}}}}
			}), resource: pods}, refused: "clusterTrustBundle"},
		{name: "a PodTemplate is data nothing runs: not checked", policy: restricted,
			req: request{obj: &core.PodTemplate{Template: template(pod(func(p *core.Pod) { p.Spec.HostNetwork = true }))}, resource: core.SchemeGroupVersion.WithResource("podtemplates")}},
		{name: "a claim that could bind a pre-provisioned host volume is refused", policy: soft,
			req: request{obj: &core.PersistentVolumeClaim{Spec: core.PersistentVolumeClaimSpec{StorageClassName: ptr.To("")}}, resource: core.SchemeGroupVersion.WithResource("persistentvolumeclaims")}, refused: "storageClassName"},
		{name: "a claim naming a host volume is refused", policy: hard,
			req: request{obj: &core.PersistentVolumeClaim{Spec: core.PersistentVolumeClaimSpec{VolumeName: "pv-of-another-tenant"}}, resource: core.SchemeGroupVersion.WithResource("persistentvolumeclaims")}, refused: "volumeName"},
		{name: "a claim of the host's default class is admitted", policy: hard,
			req: request{obj: &core.PersistentVolumeClaim{}, resource: core.SchemeGroupVersion.WithResource("persistentvolumeclaims")}},
		{name: "the tenant cannot repoint its kubernetes Endpoints", policy: soft,
			req: request{obj: &core.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default"}, Subsets: []core.EndpointSubset{{Addresses: []core.EndpointAddress{{IP: "10.244.1.5"}}}}},
				resource: endpoints, namespace: "default", name: "kubernetes"}, refused: "knest's to manage"},
		{name: "a privileged container is refused in soft", policy: soft,
			req: request{obj: pod(func(p *core.Pod) {
				p.Spec.Containers[0].SecurityContext = &core.SecurityContext{Privileged: ptr.To(true)}
			}), resource: pods}, refused: "privileged"},
		{name: "a hostPath volume is refused", policy: soft,
			req: request{obj: pod(func(p *core.Pod) {
				p.Spec.Volumes = []core.Volume{{Name: "root", VolumeSource: core.VolumeSource{HostPath: &core.HostPathVolumeSource{Path: "/"}}}}
			}), resource: pods}, refused: "hostPath"},
		{name: "a pod naming a node is admitted: the syncer places it on that node's host node, or leaves it Pending", policy: hard,
			req: request{obj: pod(func(p *core.Pod) { p.Spec.NodeName = "node-1" }), resource: pods}},
		{name: "an update keeping the node knest bound the pod to is admitted", policy: hard,
			req: request{obj: pod(func(p *core.Pod) { p.Spec.NodeName = "knest-node-a" }), old: pod(func(p *core.Pod) { p.Spec.NodeName = "knest-node-a" }), resource: pods, op: admission.Update}},
		{name: "a Deployment with a privileged template fails at apply", policy: hard,
			req: request{obj: &apps.Deployment{Spec: apps.DeploymentSpec{Template: template(pod(func(p *core.Pod) {
				p.Spec.Containers[0].SecurityContext = &core.SecurityContext{Privileged: ptr.To(true)}
			}))}}, resource: deployments}, refused: "spec.template.spec.containers[0].securityContext.privileged"},
		{name: "a CronJob's template is checked too", policy: hard,
			req: request{obj: &batch.CronJob{Spec: batch.CronJobSpec{JobTemplate: batch.JobTemplateSpec{Spec: batch.JobSpec{Template: template(pod(func(p *core.Pod) { p.Spec.HostNetwork = true }))}}}}, resource: cronjobs}, refused: "hostNetwork"},
		{name: "DaemonSets with their controller's tolerations are admitted with pool nodes", policy: pool,
			req: request{obj: &apps.DaemonSet{Spec: apps.DaemonSetSpec{Template: template(pod(func(p *core.Pod) {
				p.Spec.Tolerations = []core.Toleration{
					{Key: "node.kubernetes.io/unschedulable", Operator: core.TolerationOpExists, Effect: core.TaintEffectNoSchedule},
					{Key: "node.kubernetes.io/disk-pressure", Operator: core.TolerationOpExists, Effect: core.TaintEffectNoSchedule},
				}
			}))}}, resource: daemonsets}},
		{name: "DaemonSets are refused without pool nodes", policy: soft,
			req: request{obj: &apps.DaemonSet{Spec: apps.DaemonSetSpec{Template: template(pod())}}, resource: daemonsets}, refused: "DaemonSets are not supported"},
		{name: "tenants cannot bind pods", policy: soft,
			req: request{obj: &core.Binding{Target: core.ObjectReference{Name: "node-1"}}, resource: pods, subresource: "binding"}, refused: "bound to nodes by knest"},
		{name: "knestd binds pods", policy: soft,
			req: request{obj: &core.Binding{Target: core.ObjectReference{Name: "knest-node-a"}}, resource: pods, subresource: "binding", user: &user.DefaultInfo{Name: pki.InternalUser}}},
		{name: "a reserved label is refused on any object", policy: soft,
			req: request{obj: &core.ConfigMap{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"knest.io/tenant": "other"}}}, resource: core.SchemeGroupVersion.WithResource("configmaps")}, refused: "knest.io/tenant"},
		{name: "knestd's own objects may carry knest labels", policy: soft,
			req: request{obj: &core.Node{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"knest.io/virtual-node": "true"}}}, resource: core.SchemeGroupVersion.WithResource("nodes"), user: &user.DefaultInfo{Name: pki.InternalUser}}},
		{name: "a namespace labelled privileged (as conformance labels them) is admitted", policy: hard,
			req: request{obj: &core.Namespace{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"pod-security.kubernetes.io/enforce": "privileged"}}}, resource: namespaces}},
		{name: "a NodePort Service is refused", policy: soft,
			req: request{obj: &core.Service{Spec: core.ServiceSpec{Type: core.ServiceTypeNodePort}}, resource: services}, refused: "NodePort"},
		{name: "externalIPs are refused", policy: soft,
			req: request{obj: &core.Service{Spec: core.ServiceSpec{Type: core.ServiceTypeClusterIP, ExternalIPs: []string{"1.2.3.4"}}}, resource: services}, refused: "externalIPs"},
		{name: "an EndpointSlice of the tenant's running pods is admitted", policy: hard,
			req: request{obj: slice("10.244.1.5", "fd00::5"), resource: endpointslices}},
		{name: "an EndpointSlice pointing outside the tenant is admitted with a warning naming the address (the syncer never copies it)", policy: hard,
			req: request{obj: slice("10.244.1.5", "169.254.169.254"), resource: endpointslices}, warned: `endpoints[1].addresses[0]: 169.254.169.254 is not an IP of a running pod`},
		{name: "a finished pod's IP is no longer the tenant's", policy: soft,
			req: request{obj: slice("10.244.1.6"), resource: endpointslices}, warned: "10.244.1.6 is not an IP of a running pod"},
		{name: "a pod the informer has not seen yet is found by a lookup", policy: soft,
			req: request{obj: slice("10.244.1.7"), resource: endpointslices}},
		{name: "Endpoints pointing outside the tenant are admitted with a warning, ready or not", policy: soft,
			req: request{obj: &core.Endpoints{Subsets: []core.EndpointSubset{{
				Addresses: []core.EndpointAddress{{IP: "10.244.1.5"}}, NotReadyAddresses: []core.EndpointAddress{{IP: "10.96.0.10"}},
			}}}, resource: endpoints}, warned: "subsets[0].notReadyAddresses[0].ip: 10.96.0.10"},
		{name: "Endpoints of the tenant's pods are admitted on update", policy: soft,
			req: request{obj: &core.Endpoints{Subsets: []core.EndpointSubset{{Addresses: []core.EndpointAddress{{IP: "10.244.1.5"}}}}},
				old: &core.Endpoints{}, resource: endpoints, op: admission.Update}},
		{name: "the tenant API server's own kubernetes Endpoints are not checked", policy: hard,
			req: request{obj: &core.Endpoints{Subsets: []core.EndpointSubset{{Addresses: []core.EndpointAddress{{IP: "10.96.0.1"}}}}},
				resource: endpoints, user: &user.DefaultInfo{Name: user.APIServerUser}}},
		{name: "a PriorityClass above the cap is refused", policy: soft,
			req: request{obj: &scheduling.PriorityClass{Value: 2_000_000_000}, resource: priorityclss}, refused: "value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			warned, err := admitWarned(t, tt.policy, tt.req)
			if tt.warned != "" && !slices.ContainsFunc(warned, func(w string) bool { return strings.Contains(w, tt.warned) }) {
				t.Errorf("warnings %q, want one mentioning %q", warned, tt.warned)
			}
			switch {
			case tt.refused == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.refused != "" && err == nil:
				t.Errorf("admitted, want a refusal mentioning %q", tt.refused)
			case tt.refused != "" && !strings.Contains(err.Error(), tt.refused):
				t.Errorf("refusal %q does not mention %q", err, tt.refused)
			case err != nil && !strings.Contains(err.Error(), string(tt.policy.Profile)):
				t.Errorf("refusal %q does not name the profile", err)
			}
		})
	}
}

func TestAdmitSetsTheProfileDefaults(t *testing.T) {
	t.Parallel()
	p := pod()
	restricted := policy.Default(policy.ProfileHard)
	restricted.PodSecurityLevel = psapi.LevelRestricted
	if err := admit(t, restricted, request{obj: p, resource: pods}); err != nil {
		t.Fatal(err)
	}
	sc := p.Spec.Containers[0].SecurityContext
	if p.Spec.SecurityContext.SeccompProfile == nil || p.Spec.SecurityContext.SeccompProfile.Type != core.SeccompProfileTypeRuntimeDefault {
		t.Errorf("seccomp not defaulted to RuntimeDefault: %+v", p.Spec.SecurityContext)
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		t.Errorf("hard defaults not set on the container: %+v", sc)
	}
}

func TestEndpointLookupsAreBoundedPerRequest(t *testing.T) {
	t.Parallel()
	// maxPodLookups+1 pods the informer has not seen yet.
	var late []runtime.Object
	var addrs []string
	for i := range maxPodLookups + 1 {
		ip := fmt.Sprintf("10.244.2.%d", i+1)
		late = append(late, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("late-%d", i), Namespace: "shop"},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}})
		addrs = append(addrs, ip)
	}
	plugin := initializedWith(t, policy.Default(policy.ProfileSoft), nil, late)
	var got warnings
	ctx := warning.WithWarningRecorder(context.Background(), &got)
	if err := plugin.(admission.ValidationInterface).Validate(ctx, request{obj: slice(addrs...), resource: endpointslices}.attributes(), nil); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("endpoints[%d].addresses[0]", maxPodLookups)
	if len(got) != 1 || !strings.Contains(got[0], want) {
		t.Errorf("warnings %q, want only the address past the lookup bound (%s) named", got, want)
	}
}

func TestControllerManagerEndpointWritesCostNoLookups(t *testing.T) {
	t.Parallel()
	plugin, err := NewFactory(policy.Default(policy.ProfileSoft))(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	informed := informers.NewSharedInformerFactory(fake.NewClientset(), 0)
	listed := fake.NewClientset()
	admission.PluginInitializers{genericinitializer.New(listed, nil, informed, nil, nil, nil, ctx.Done(), nil)}.Initialize(plugin)
	if err := plugin.(admission.InitializationValidator).ValidateInitialization(); err != nil {
		t.Fatal(err)
	}
	informed.Start(ctx.Done())
	informed.WaitForCacheSync(ctx.Done())
	validate := func(u user.Info, obj runtime.Object, resource schema.GroupVersionResource) warnings {
		t.Helper()
		var got warnings
		wctx := warning.WithWarningRecorder(context.Background(), &got)
		if err := plugin.(admission.ValidationInterface).Validate(wctx, request{obj: obj, resource: resource, user: u}.attributes(), nil); err != nil {
			t.Fatal(err)
		}
		return got
	}
	endpointsOf := func(ip string) *core.Endpoints {
		return &core.Endpoints{Subsets: []core.EndpointSubset{{Addresses: []core.EndpointAddress{{IP: ip}}}}}
	}
	controllers := []user.Info{
		&user.DefaultInfo{Name: "system:serviceaccount:kube-system:endpointslice-controller"},
		&user.DefaultInfo{Name: "system:serviceaccount:kube-system:endpoint-controller"},
		&user.DefaultInfo{Name: user.KubeControllerManager},
	}
	for _, u := range controllers {
		if got := validate(u, slice("10.244.3.1"), endpointslices); len(got) != 0 {
			t.Errorf("%s: warnings %q on a controller's slice", u.GetName(), got)
		}
		if got := validate(u, endpointsOf("10.244.3.2"), endpoints); len(got) != 0 {
			t.Errorf("%s: warnings %q on a controller's Endpoints", u.GetName(), got)
		}
	}
	if n := len(listed.Actions()); n != 0 {
		t.Errorf("the controller-manager's writes cost %d pod lookups, want none: %v", n, listed.Actions())
	}
	// Anyone else, a tenant's own ServiceAccount in kube-system's likeness
	// included, still gets the lookup and the warning.
	for _, u := range []user.Info{tenantAdmin, &user.DefaultInfo{Name: "system:serviceaccount:kube-systemx:endpoint-controller"}} {
		if got := validate(u, slice("10.244.3.3"), endpointslices); len(got) != 1 {
			t.Errorf("%s: warnings %q, want one naming 10.244.3.3", u.GetName(), got)
		}
	}
	if n := len(listed.Actions()); n != 2 {
		t.Errorf("%d pod lookups for two writers' unknown addresses, want 2", n)
	}
}

// warnings records admission warnings as the API server's handler does.
type warnings []string

func (w *warnings) AddWarning(_, text string) { *w = append(*w, text) }

func TestALooserNamespaceLabelIsAdmittedWithAWarning(t *testing.T) {
	t.Parallel()
	plugin := initialized(t, policy.Default(policy.ProfileHard))
	var got warnings
	ctx := warning.WithWarningRecorder(context.Background(), &got)
	ns := &core.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "e2e-1", Labels: map[string]string{"pod-security.kubernetes.io/enforce": "privileged"}}}
	a := request{obj: ns, resource: namespaces}.attributes()
	if err := plugin.(admission.MutationInterface).Admit(ctx, a, nil); err != nil {
		t.Fatal(err)
	}
	if err := plugin.(admission.ValidationInterface).Validate(ctx, a, nil); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !strings.Contains(got[0], "pod-security.kubernetes.io/enforce=privileged has no effect below the floor") {
		t.Errorf("warnings = %q, want one saying the label has no effect below the floor", got)
	}
}

func TestHostLimits(t *testing.T) {
	t.Parallel()
	pol := policy.Default(policy.ProfileSoft)
	pol.HostLimits.NetworkPolicies, pol.HostLimits.EndpointSlices, pol.HostLimits.ServicePorts, pol.HostLimits.ObjectBytes = 2, 1, 3, 1024
	existing := []runtime.Object{
		&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "shop"}},
		&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "web"}},
		&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "manual", Namespace: "shop"}},
		&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "auto", Namespace: "shop",
			Labels: map[string]string{"endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}}},
	}
	plugin := initializedWith(t, pol, append(existing, tenantPods[:2]...), tenantPods)
	run := func(r request) error {
		a := r.attributes()
		if err := plugin.(admission.MutationInterface).Admit(context.Background(), a, nil); err != nil {
			return err
		}
		return plugin.(admission.ValidationInterface).Validate(context.Background(), a, nil)
	}
	ports := func(n int) []core.ServicePort {
		var out []core.ServicePort
		for i := range n {
			out = append(out, core.ServicePort{Port: int32(80 + i)})
		}
		return out
	}
	tests := []struct {
		name    string
		req     request
		refused string
	}{
		{name: "a third NetworkPolicy is one too many", req: request{obj: &networking.NetworkPolicy{}, resource: networking.SchemeGroupVersion.WithResource("networkpolicies")},
			refused: "the tenant has 2 NetworkPolicies"},
		{name: "updating an existing NetworkPolicy is fine", req: request{obj: &networking.NetworkPolicy{}, old: &networking.NetworkPolicy{}, op: admission.Update, resource: networking.SchemeGroupVersion.WithResource("networkpolicies")}},
		{name: "a second hand-made EndpointSlice is one too many", req: request{obj: slice("10.244.1.5"), resource: endpointslices},
			refused: "the tenant has 1 hand-made EndpointSlices"},
		{name: "the endpoint controller's slices are not capped", req: request{obj: func() *discovery.EndpointSlice {
			s := slice("10.244.1.5")
			s.Labels = map[string]string{"endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
			return s
		}(), resource: endpointslices}},
		{name: "a Service of four ports is refused", req: request{obj: &core.Service{Spec: core.ServiceSpec{Ports: ports(4)}}, resource: services},
			refused: "spec.ports: Too many: 4: must have at most 3 items"},
		{name: "a Service of three ports is fine", req: request{obj: &core.Service{Spec: core.ServiceSpec{Ports: ports(3)}}, resource: services}},
		{name: "a large Secret that never reaches the host (a Helm release) is the tenant's business", req: request{obj: &core.Secret{Data: map[string][]byte{"release": make([]byte, 2000)}}, resource: core.SchemeGroupVersion.WithResource("secrets")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := run(tc.req)
			switch {
			case tc.refused == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)):
				t.Errorf("got %v, want a refusal mentioning %q", err, tc.refused)
			}
		})
	}
}

// A pod naming sysctls that are not valid names at all is left to the API
// server's validation, which says what is wrong with them (Kubernetes'
// conformance suite checks that message, and that valid but unsafe names
// are not in it); valid names knest does not allow are refused after it.
func TestInvalidSysctlNamesAreLeftToValidation(t *testing.T) {
	t.Parallel()
	plugin := initialized(t, policy.Default(policy.ProfileHard))
	withSysctls := func(names ...string) *core.Pod {
		p := pod()
		if p.Spec.SecurityContext == nil {
			p.Spec.SecurityContext = &core.PodSecurityContext{}
		}
		for _, n := range names {
			p.Spec.SecurityContext.Sysctls = append(p.Spec.SecurityContext.Sysctls, core.Sysctl{Name: n, Value: "1"})
		}
		return p
	}
	a := request{obj: withSysctls("foo-", "kernel.shmmax", "bar.."), resource: pods}.attributes()
	if err := plugin.(admission.MutationInterface).Admit(context.Background(), a, nil); err != nil {
		t.Errorf("Admit refused a pod the API server's validation refuses next: %v", err)
	}
	if err := plugin.(admission.ValidationInterface).Validate(context.Background(), a, nil); err == nil || !strings.Contains(err.Error(), "kernel.shmmax") {
		t.Errorf("Validate = %v, want kernel.shmmax refused", err)
	}
	a = request{obj: withSysctls("kernel.shmmax"), resource: pods}.attributes()
	if err := plugin.(admission.MutationInterface).Admit(context.Background(), a, nil); err == nil || !strings.Contains(err.Error(), "kernel.shmmax") {
		t.Errorf("Admit = %v, want a valid but unsafe sysctl refused with knest's reason", err)
	}
}

// A pod whose volumes the API server's validation refuses (a podCertificate
// source asking for less than an hour) is left to that validation, whose
// message the conformance suite checks; knest refuses the source after it.
func TestInvalidVolumesAreLeftToValidation(t *testing.T) {
	t.Parallel()
	plugin := initialized(t, policy.Default(policy.ProfileSoft))
	withCertificate := func(seconds int32) *core.Pod {
		p := pod()
		p.Spec.Volumes = append(p.Spec.Volumes, core.Volume{Name: "cert", VolumeSource: core.VolumeSource{Projected: &core.ProjectedVolumeSource{
			Sources: []core.VolumeProjection{{PodCertificate: &core.PodCertificateProjection{
				SignerName: "example.com/signer", KeyType: "ED25519", MaxExpirationSeconds: ptr.To(seconds), CredentialBundlePath: "bundle.pem",
			}}},
		}}})
		return p
	}
	a := request{obj: withCertificate(60), resource: pods}.attributes()
	if err := plugin.(admission.MutationInterface).Admit(context.Background(), a, nil); err != nil {
		t.Errorf("Admit refused a pod the API server's validation refuses next: %v", err)
	}
	if err := plugin.(admission.ValidationInterface).Validate(context.Background(), a, nil); err == nil || !strings.Contains(err.Error(), "podCertificate") {
		t.Errorf("Validate = %v, want the podCertificate source refused", err)
	}
	a = request{obj: withCertificate(7200), resource: pods}.attributes()
	if err := plugin.(admission.MutationInterface).Admit(context.Background(), a, nil); err == nil || !strings.Contains(err.Error(), "podCertificate") {
		t.Errorf("Admit = %v, want a valid podCertificate source refused with knest's reason", err)
	}
}

func TestIngresses(t *testing.T) {
	t.Parallel()
	pol := policy.Default(policy.ProfileHard)
	pol.Exposure = policy.Exposure{Tenant: "demo", IngressClasses: map[string]string{"knest-dev": "knest-dev"}}
	ingress := func(host string, tweaks ...func(*networking.Ingress)) *networking.Ingress {
		ing := &networking.Ingress{Spec: networking.IngressSpec{
			IngressClassName: ptr.To("knest-dev"),
			Rules: []networking.IngressRule{{Host: host, IngressRuleValue: networking.IngressRuleValue{HTTP: &networking.HTTPIngressRuleValue{
				Paths: []networking.HTTPIngressPath{{Path: "/", PathType: ptr.To(networking.PathTypePrefix),
					Backend: networking.IngressBackend{Service: &networking.IngressServiceBackend{Name: "web", Port: networking.ServiceBackendPort{Number: 80}}}}},
			}}}},
			TLS: []networking.IngressTLS{{Hosts: []string{host}, SecretName: "web-tls"}},
		}}
		for _, t := range tweaks {
			t(ing)
		}
		return ing
	}
	ingresses := networking.SchemeGroupVersion.WithResource("ingresses")
	tests := []struct {
		name    string
		req     request
		refused string
	}{
		{name: "an Ingress for a host under the tenant's wildcard is admitted", req: request{obj: ingress("web.demo.apps.example.com"), resource: ingresses}},
		{name: "another tenant's hostname is refused with the reason", req: request{obj: ingress("web.other.apps.example.com"), resource: ingresses},
			refused: `spec.rules[0].host: Invalid value: "web.other.apps.example.com": hostname is not allowed for this tenant; it may claim "*.demo.apps.example.com"`},
		{name: "a wildcard over every tenant is refused", req: request{obj: ingress("*.apps.example.com"), resource: ingresses},
			refused: `"*.apps.example.com": hostname is not allowed`},
		{name: "an update that moves to another hostname is refused", req: request{obj: ingress("bank.example.com"), old: ingress("web.demo.apps.example.com"), op: admission.Update, resource: ingresses},
			refused: `"bank.example.com": hostname is not allowed`},
		{name: "a default backend is refused", req: request{obj: ingress("web.demo.apps.example.com", func(i *networking.Ingress) {
			i.Spec.DefaultBackend = &networking.IngressBackend{Service: &networking.IngressServiceBackend{Name: "web", Port: networking.ServiceBackendPort{Number: 80}}}
		}), resource: ingresses}, refused: "spec.defaultBackend: Forbidden"},
		{name: "a class the operator did not allow is refused", req: request{obj: ingress("web.demo.apps.example.com", func(i *networking.Ingress) {
			i.Spec.IngressClassName = ptr.To("nginx-internal")
		}), resource: ingresses}, refused: `spec.ingressClassName: Invalid value: "nginx-internal"`},
		{name: "the status a controller writes is not checked", req: request{obj: ingress("web.other.apps.example.com"), old: ingress("web.other.apps.example.com"), op: admission.Update, subresource: "status", resource: ingresses}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := admit(t, pol, tc.req)
			switch {
			case tc.refused == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)):
				t.Errorf("got %v, want a refusal mentioning %q", err, tc.refused)
			}
		})
	}
}
