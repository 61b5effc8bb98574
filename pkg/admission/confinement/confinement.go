package confinement

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/admission/initializer"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/warning"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/kubernetes/pkg/apis/apps"
	"k8s.io/kubernetes/pkg/apis/batch"
	"k8s.io/kubernetes/pkg/apis/certificates"
	core "k8s.io/kubernetes/pkg/apis/core"
	corev1conv "k8s.io/kubernetes/pkg/apis/core/v1"
	corevalidation "k8s.io/kubernetes/pkg/apis/core/validation"
	"k8s.io/kubernetes/pkg/apis/discovery"
	"k8s.io/kubernetes/pkg/apis/networking"
	networkingv1conv "k8s.io/kubernetes/pkg/apis/networking/v1"
	"k8s.io/kubernetes/pkg/apis/scheduling"

	"github.com/knest-dev/knest/pkg/pki"
	"github.com/knest-dev/knest/pkg/policy"
)

// PluginName is the admission plugin's name.
const PluginName = "KnestConfinement"

// Plugin defaults and checks tenant objects against the isolation policy.
type Plugin struct {
	*admission.Handler
	policy *policy.Policy
	// pods finds tenant pods by address (indexPodAddress), to check
	// EndpointSlices and Endpoints; client answers what the informer has
	// not seen yet.
	pods   cache.Indexer
	client kubernetes.Interface
	// slices and netpols count what the policy's host limits cap.
	slices, netpols cache.Indexer
}

var (
	_ admission.MutationInterface                  = &Plugin{}
	_ admission.ValidationInterface                = &Plugin{}
	_ admission.InitializationValidator            = &Plugin{}
	_ initializer.WantsExternalKubeInformerFactory = &Plugin{}
	_ initializer.WantsExternalKubeClientSet       = &Plugin{}
)

// indexPodAddress indexes pods by policy.PodAddresses.
const indexPodAddress = "knest.io/pod-address"

// SetExternalKubeInformerFactory adds the pod informer, indexed by address.
// The API server starts the factory after its plugins are initialized.
func (p *Plugin) SetExternalKubeInformerFactory(f informers.SharedInformerFactory) {
	informer := f.Core().V1().Pods().Informer()
	if err := informer.AddIndexers(cache.Indexers{indexPodAddress: func(obj any) ([]string, error) {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			return nil, nil
		}
		return policy.PodAddresses(pod), nil
	}}); err != nil {
		// Only possible once the informer runs, which it cannot yet.
		panic(fmt.Sprintf("%s: failed to index pods by address: %v", PluginName, err))
	}
	p.pods = informer.GetIndexer()
	sliceInformer := f.Discovery().V1().EndpointSlices().Informer()
	netpolInformer := f.Networking().V1().NetworkPolicies().Informer()
	p.slices, p.netpols = sliceInformer.GetIndexer(), netpolInformer.GetIndexer()
	p.SetReadyFunc(func() bool {
		return informer.HasSynced() && sliceInformer.HasSynced() && netpolInformer.HasSynced()
	})
}

// SetExternalKubeClientSet sets the loopback client.
func (p *Plugin) SetExternalKubeClientSet(c kubernetes.Interface) { p.client = c }

// ValidateInitialization checks the API server gave the plugin what it needs.
func (p *Plugin) ValidateInitialization() error {
	if p.pods == nil || p.client == nil || p.slices == nil || p.netpols == nil {
		return fmt.Errorf("%s needs a pod informer and a client", PluginName)
	}
	return nil
}

// NewFactory returns the plugin factory for a policy.
func NewFactory(p *policy.Policy) admission.Factory {
	return func(io.Reader) (admission.Interface, error) {
		return &Plugin{Handler: admission.NewHandler(admission.Create, admission.Update), policy: p}, nil
	}
}

var (
	podsResource = core.Resource("pods")
	groupKinds   = map[schema.GroupResource]bool{
		apps.Resource("deployments"): true, apps.Resource("replicasets"): true, apps.Resource("statefulsets"): true,
		batch.Resource("jobs"): true, batch.Resource("cronjobs"): true,
		core.Resource("replicationcontrollers"): true,
	}
)

// exempt reports whether a request comes from knestd itself.
func exempt(a admission.Attributes) bool {
	u := a.GetUserInfo()
	return u != nil && (u.GetName() == pki.InternalUser || u.GetName() == user.APIServerUser)
}

// Admit sets the profile's safe defaults on pods and pod templates, then
// checks the object: the API server's own validation runs between mutation
// and validation and would otherwise answer first (privileged containers,
// priority values) with a message that does not say what knest allows.
// Validate checks again after any later mutation.
func (p *Plugin) Admit(ctx context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	if exempt(a) || a.GetObject() == nil {
		return nil
	}
	for _, tpl := range podSpecs(a) {
		v1spec, err := toV1(tpl.spec)
		if err != nil {
			return admission.NewForbidden(a, err)
		}
		policy.DefaultPod(v1spec, p.policy)
		if err := corev1conv.Convert_v1_PodSpec_To_core_PodSpec(v1spec, tpl.spec, nil); err != nil {
			return admission.NewForbidden(a, err)
		}
	}
	if invalidSysctlNames(a) || invalidVolumes(a) {
		// The API server's validation refuses these next, saying what is
		// wrong with them; Validate checks the rest after it.
		return nil
	}
	return p.refuse(ctx, a, mutating)
}

// invalidVolumes reports whether a pod or pod template of a has volumes the
// API server's own validation refuses (a podCertificate source's expiry out
// of range: Kubernetes' conformance suite checks that message). Validate
// still refuses, after that validation, every source knest does not allow.
func invalidVolumes(a admission.Attributes) bool {
	for _, tpl := range podSpecs(a) {
		if _, errs := corevalidation.ValidateVolumes(tpl.spec.Volumes, nil, field.NewPath("spec", "volumes"), corevalidation.PodValidationOptions{}); len(errs) > 0 {
			return true
		}
	}
	return false
}

// invalidSysctlNames reports whether a pod or pod template of a names a
// sysctl that is not a valid name at all, which the API server's own
// validation refuses (Kubernetes' conformance suite checks its message).
func invalidSysctlNames(a admission.Attributes) bool {
	for _, tpl := range podSpecs(a) {
		if tpl.spec.SecurityContext == nil {
			continue
		}
		for _, s := range tpl.spec.SecurityContext.Sysctls {
			if !corevalidation.IsValidSysctlName(s.Name) {
				return true
			}
		}
	}
	return false
}

// Validate refuses what the host would not run.
func (p *Plugin) Validate(ctx context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	if exempt(a) || a.GetObject() == nil {
		return nil
	}
	return p.refuse(ctx, a, validating)
}

// phase is the admission phase a check runs in.
type phase int

const (
	mutating phase = iota
	validating
)

func (p *Plugin) refuse(ctx context.Context, a admission.Attributes, ph phase) error {
	errs := p.validate(ctx, a, ph)
	if len(errs) == 0 {
		return nil
	}
	return admission.NewForbidden(a, fmt.Errorf("refused by %s: %w", p.policy.Describe(), errs.ToAggregate()))
}

// validate checks a. Endpoint addresses are looked at (for warnings) in the
// validating phase only: their check may list pods, nothing of theirs is
// defaulted, and nothing after the plugin's Admit changes them.
func (p *Plugin) validate(ctx context.Context, a admission.Attributes, ph phase) field.ErrorList {
	gr := a.GetResource().GroupResource()
	switch {
	case gr == podsResource && a.GetSubresource() == "binding":
		return field.ErrorList{field.Forbidden(field.NewPath("target"), "pods are bound to nodes by knest, not by tenants")}
	case gr == apps.Resource("daemonsets") && a.GetSubresource() == "" && !p.policy.PoolNodes:
		return field.ErrorList{field.Forbidden(field.NewPath("kind"), "DaemonSets are not supported: this tenant's nodes stand only for the host nodes its pods run on (the operator did not turn on pool nodes, knestd --pool-nodes); use a Deployment")}
	case a.GetSubresource() != "" && a.GetSubresource() != "ephemeralcontainers":
		// Status and other subresources carry no spec of the tenant's
		// making that reaches the host.
		return nil
	}
	var errs field.ErrorList
	if obj, err := meta.Accessor(a.GetObject()); err == nil && a.GetSubresource() == "" {
		m := &metav1.ObjectMeta{Labels: obj.GetLabels(), Annotations: obj.GetAnnotations()}
		var stored *metav1.ObjectMeta
		if o, err := meta.Accessor(a.GetOldObject()); a.GetOperation() == admission.Update && a.GetOldObject() != nil && err == nil {
			stored = &metav1.ObjectMeta{Labels: o.GetLabels(), Annotations: o.GetAnnotations()}
		}
		errs = append(errs, policy.CheckMeta(m, stored, field.NewPath("metadata"))...)
		if gr == core.Resource("namespaces") && ph == validating {
			for _, w := range policy.NamespaceWarnings(m, p.policy) {
				warning.AddWarning(ctx, "", w)
			}
		}
	}
	if isAPIServerEndpoints(a) {
		return append(errs, field.Forbidden(field.NewPath("metadata", "name"),
			"the default/kubernetes endpoints point at the tenant API server and are knest's to manage"))
	}
	switch obj := a.GetObject().(type) {
	case *core.PersistentVolumeClaim:
		var spec corev1.PersistentVolumeClaimSpec
		if err := corev1conv.Convert_core_PersistentVolumeClaimSpec_To_v1_PersistentVolumeClaimSpec(&obj.Spec, &spec, nil); err != nil {
			return append(errs, field.InternalError(field.NewPath("spec"), err))
		}
		if a.GetOperation() == admission.Create {
			// Only creation reaches for host storage; later updates
			// are expansions.
			errs = append(errs, policy.CheckClaim(&spec, field.NewPath("spec"), p.policy)...)
		}
	case *core.Service:
		var spec corev1.ServiceSpec
		if err := corev1conv.Convert_core_ServiceSpec_To_v1_ServiceSpec(&obj.Spec, &spec, nil); err != nil {
			return append(errs, field.InternalError(field.NewPath("spec"), err))
		}
		errs = append(errs, policy.CheckService(&spec, p.policy)...)
	case *networking.Ingress:
		var spec networkingv1.IngressSpec
		if err := networkingv1conv.Convert_networking_IngressSpec_To_v1_IngressSpec(&obj.Spec, &spec, nil); err != nil {
			return append(errs, field.InternalError(field.NewPath("spec"), err))
		}
		errs = append(errs, policy.CheckIngress(&spec, p.policy)...)
	case *unstructured.Unstructured:
		errs = append(errs, p.checkRoute(gr, a.GetNamespace(), obj)...)
	case *scheduling.PriorityClass:
		errs = append(errs, policy.CheckPriorityClass(obj.Value, p.policy)...)
	case *networking.NetworkPolicy:
		if ph == validating && a.GetOperation() == admission.Create {
			errs = append(errs, policy.CheckCount("NetworkPolicies", len(p.netpols.List()), p.policy.HostLimits.NetworkPolicies, "networkPolicies", p.policy)...)
		}
	case *certificates.CertificateSigningRequest:
		errs = append(errs, policy.CheckCSR(obj.Spec.Request, field.NewPath("spec", "request"))...)
	case *discovery.EndpointSlice:
		if ph == validating {
			p.warnEndpointAddresses(ctx, a, sliceAddresses(obj))
		}
		if ph == validating && a.GetOperation() == admission.Create && !controllerManaged(obj.Labels) {
			errs = append(errs, policy.CheckCount("hand-made EndpointSlices", p.handMadeSlices(), p.policy.HostLimits.EndpointSlices, "endpointSlices", p.policy)...)
		}
	case *core.Endpoints:
		if ph == validating {
			p.warnEndpointAddresses(ctx, a, endpointsAddresses(obj))
		}
	}
	errs = append(errs, p.checkWebhookURLs(a.GetObject())...)
	for _, tpl := range podSpecs(a) {
		spec, err := toV1(tpl.spec)
		if err != nil {
			return append(errs, field.InternalError(tpl.path, err))
		}
		m := &metav1.ObjectMeta{Labels: tpl.labels, Annotations: tpl.annotations}
		errs = append(errs, policy.CheckPod(m, spec, tpl.path, p.policy)...)
	}
	return errs
}

// podSpec is a pod spec inside an admitted object, with the metadata that
// goes with it and the field path of the pod-like object.
type podSpec struct {
	spec                *core.PodSpec
	labels, annotations map[string]string
	path                *field.Path
}

// podSpecs finds the pod specs of an admitted object: the pod itself or the
// pod template of a workload.
func podSpecs(a admission.Attributes) []podSpec {
	if a.GetResource().GroupResource() != podsResource && !groupKinds[a.GetResource().GroupResource()] {
		return nil
	}
	if a.GetSubresource() != "" && a.GetSubresource() != "ephemeralcontainers" {
		return nil
	}
	tpl := func(t *core.PodTemplateSpec, path *field.Path) []podSpec {
		if t == nil {
			return nil
		}
		return []podSpec{{spec: &t.Spec, labels: t.Labels, annotations: t.Annotations, path: path}}
	}
	spec := field.NewPath("spec")
	switch o := a.GetObject().(type) {
	case *core.Pod:
		return []podSpec{{spec: &o.Spec, labels: o.Labels, annotations: o.Annotations}}
	case *apps.Deployment:
		return tpl(&o.Spec.Template, spec.Child("template"))
	case *apps.ReplicaSet:
		return tpl(&o.Spec.Template, spec.Child("template"))
	case *apps.StatefulSet:
		return tpl(&o.Spec.Template, spec.Child("template"))
	case *batch.Job:
		return tpl(&o.Spec.Template, spec.Child("template"))
	case *batch.CronJob:
		return tpl(&o.Spec.JobTemplate.Spec.Template, spec.Child("jobTemplate", "spec", "template"))
	case *core.ReplicationController:
		return tpl(o.Spec.Template, spec.Child("template"))
	case *core.PodTemplate:
		return tpl(&o.Template, field.NewPath("template"))
	}
	return nil
}

func toV1(in *core.PodSpec) (*corev1.PodSpec, error) {
	out := &corev1.PodSpec{}
	if err := corev1conv.Convert_core_PodSpec_To_v1_PodSpec(in, out, nil); err != nil {
		return nil, fmt.Errorf("failed to convert the pod spec: %w", err)
	}
	return out, nil
}

// warnEndpointAddresses tells the writer of an EndpointSlice or Endpoints
// object, as an API warning, which addresses are not its cluster's running
// pods'. It does not refuse them: in the tenant such an object only feeds
// the tenant's own view (its DNS, its mirroring controller), and what could
// reach the host is checked where the host is touched: the syncer copies a
// slice only if every address is one of the tenant's host pods' (from the
// host's informer, never from tenant-written state; otherwise a SyncRefused
// Event names the address), and the API server's proxy dials only such
// addresses (pkg/egress). Refusing here as well made the Endpoints and
// EndpointSlice APIs fail Kubernetes' own conformance specs for addresses
// that never reach the host.
//
// The controller-manager's writes get no warning: it discards API warnings,
// and its endpoint controllers write on every pod readiness change, so the
// pod lookups would be work on the write path that nobody reads. The
// writer's name decides only whether a warning is worded, nothing that
// reaches the host.
func (p *Plugin) warnEndpointAddresses(ctx context.Context, a admission.Attributes, addrs []policy.EndpointAddress) {
	if controllerManagerWrite(a.GetUserInfo()) {
		return
	}
	for _, err := range policy.CheckEndpointAddresses(addrs, p.ownsFunc(ctx)) {
		if err.Type == field.ErrorTypeInternal {
			// The pod cache is not ready: nothing to say yet.
			continue
		}
		warning.AddWarning(ctx, "", fmt.Sprintf("%s: %s is not an IP of a running pod of this cluster; the Service's endpoints will not reach the host (the syncer records a SyncRefused Event) until it is", err.Field, err.BadValue))
	}
}

// controllerManagerWrite reports a write by the controller-manager: its own
// identity, or one of the kube-system ServiceAccounts it runs its controllers
// as (--use-service-account-credentials).
func controllerManagerWrite(u user.Info) bool {
	if u == nil {
		return false
	}
	return u.GetName() == user.KubeControllerManager || strings.HasPrefix(u.GetName(), "system:serviceaccount:kube-system:")
}

// maxPodLookups bounds the pod lookups one request may cost: each is a
// list over the tenant's pods, and a slice holds up to 1000 addresses.
const maxPodLookups = 16

// ownsFunc returns a function reporting whether an address is one of the
// tenant's running pods': from the informer, or, for an address it does not
// know (yet: a controller may write a pod's IP before this API server's
// informer has the pod), from a list of pods by IP, for up to maxPodLookups
// addresses of the request. Past that an unknown address is refused; the
// writer's retry finds the informer caught up.
func (p *Plugin) ownsFunc(ctx context.Context) func(string) (bool, error) {
	lookups := 0
	return func(addr string) (bool, error) {
		if p.pods == nil || p.client == nil || !p.WaitForReady() {
			return false, errors.New("the pod cache is not ready; try again")
		}
		known, err := p.pods.ByIndex(indexPodAddress, addr)
		if err != nil {
			return false, err
		}
		if len(known) > 0 {
			return true, nil
		}
		if lookups >= maxPodLookups {
			return false, nil
		}
		lookups++
		list, err := p.client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("status.podIP", addr).String(),
		})
		if err != nil {
			return false, fmt.Errorf("failed to look up pods by IP: %w", err)
		}
		for i := range list.Items {
			if slices.Contains(policy.PodAddresses(&list.Items[i]), addr) {
				return true, nil
			}
		}
		return false, nil
	}
}

func sliceAddresses(s *discovery.EndpointSlice) []policy.EndpointAddress {
	var out []policy.EndpointAddress
	for i, ep := range s.Endpoints {
		for j, addr := range ep.Addresses {
			out = append(out, policy.EndpointAddress{Path: field.NewPath("endpoints").Index(i).Child("addresses").Index(j), Address: addr})
		}
	}
	return out
}

func endpointsAddresses(e *core.Endpoints) []policy.EndpointAddress {
	var out []policy.EndpointAddress
	for i, subset := range e.Subsets {
		path := field.NewPath("subsets").Index(i)
		for j, addr := range subset.Addresses {
			out = append(out, policy.EndpointAddress{Path: path.Child("addresses").Index(j).Child("ip"), Address: addr.IP})
		}
		for j, addr := range subset.NotReadyAddresses {
			out = append(out, policy.EndpointAddress{Path: path.Child("notReadyAddresses").Index(j).Child("ip"), Address: addr.IP})
		}
	}
	return out
}

// isAPIServerEndpoints reports a write of the tenant's default/kubernetes
// Endpoints or EndpointSlices, which the tenant API server keeps pointing
// at itself.
func isAPIServerEndpoints(a admission.Attributes) bool {
	if a.GetNamespace() != metav1.NamespaceDefault {
		return false
	}
	switch a.GetResource().GroupResource() {
	case core.Resource("endpoints"):
		return a.GetName() == "kubernetes"
	case discovery.Resource("endpointslices"):
		obj, err := meta.Accessor(a.GetObject())
		return err == nil && (a.GetName() == "kubernetes" || obj.GetLabels()["kubernetes.io/service-name"] == "kubernetes")
	}
	return false
}

// endpointSliceControllerName manages the slices of Services with a
// selector; those never reach the host.
const endpointSliceControllerName = "endpointslice-controller.k8s.io"

func controllerManaged(labels map[string]string) bool {
	return labels["endpointslice.kubernetes.io/managed-by"] == endpointSliceControllerName
}

// handMadeSlices counts the tenant's EndpointSlices that the endpoint
// controller does not manage: those of selector-less Services, which reach
// the host.
func (p *Plugin) handMadeSlices() int {
	n := 0
	for _, o := range p.slices.List() {
		if s, ok := o.(*discoveryv1.EndpointSlice); ok && !controllerManaged(s.Labels) {
			n++
		}
	}
	return n
}
