package policy

import (
	"fmt"
	"maps"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/util/validation/field"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// Policy is the operator's word on what one tenant may run: allowlists that
// loosen the profile's defaults, and the placement forced on its host pods.
// It is read from a YAML file (Load) or built from a profile's defaults
// (Default). A field left out of the file takes the profile's default;
// loosening is always explicit.
type Policy struct {
	// Profile is the isolation profile the policy is written for, "soft"
	// or "hard"; empty means hard. knestd refuses to start when it
	// differs from --isolation, so a file written for soft tenants
	// cannot silently loosen a hard one.
	Profile Profile `json:"profile,omitempty"`

	// RuntimeClasses says which host RuntimeClass a pod runs with.
	RuntimeClasses RuntimeClasses `json:"runtimeClasses,omitzero"`

	// PriorityClasses says which priority classes reach the host.
	PriorityClasses PriorityClasses `json:"priorityClasses,omitzero"`

	// Tolerations tenants may set on their pods, on top of the tolerations
	// every pod gets from the API server (node.kubernetes.io/not-ready and
	// node.kubernetes.io/unreachable, NoExecute). Empty by default: the
	// tenant's pool tolerations come from Placement, not from tenants.
	Tolerations []TolerationRule `json:"tolerations,omitempty"`

	// NodeLabelKeys are the node label keys tenants may use in a pod's
	// nodeSelector and node affinity. When left out:
	// kubernetes.io/os, kubernetes.io/arch, topology.kubernetes.io/zone
	// and topology.kubernetes.io/region. An empty list allows none.
	NodeLabelKeys []string `json:"nodeLabelKeys,omitempty"`

	// ServiceTypes are the Service types tenants may use besides ClusterIP
	// (always allowed, headless included): NodePort, LoadBalancer,
	// ExternalName. None by default: a NodePort or LoadBalancer opens a
	// port on every host node or an external address for the tenant.
	ServiceTypes []corev1.ServiceType `json:"serviceTypes,omitempty"`

	// VolumeTypes are the volume types tenants may use besides configMap,
	// secret, projected, downwardAPI, emptyDir, persistentVolumeClaim and
	// ephemeral, named as in a pod's volume (hostPath, nfs, csi, ...).
	// Allowlisting a type here also lifts the Pod Security volume rules
	// for it: allowlisting hostPath hands the host's file system to the
	// tenant.
	VolumeTypes []string `json:"volumeTypes,omitempty"`

	// EgressCIDRs are the networks tenant pods may reach outside the
	// cluster, in CIDR notation (10.20.0.0/16, 2001:db8::/32). Used to
	// build the tenant's NetworkPolicies; none by default.
	EgressCIDRs []string `json:"egressCIDRs,omitempty"`

	// APIServerEgressCIDRs and WebhookURLHosts are what the tenant API
	// server itself may reach beyond the tenant's own pods and Services;
	// see egress.go. None by default.
	APIServerEgressCIDRs []string `json:"apiServerEgressCIDRs,omitempty"`
	WebhookURLHosts      []string `json:"webhookURLHosts,omitempty"`

	// Placement is forced on every host pod: it keeps the tenant's pods on
	// its dedicated node pool.
	Placement Placement `json:"placement,omitzero"`

	// PoolNodes says the tenant sees one virtual Node per host node of its
	// pool (knestd --pool-nodes, which also needs the grant to list host
	// Nodes, so it is not part of the policy file): DaemonSets are then
	// admitted, with the tolerations their controller adds.
	PoolNodes bool `json:"-"`

	// PodSecurityLevel is the floor every tenant pod is held to, whatever
	// its namespace's labels say: baseline (the default of both profiles)
	// or restricted. Only the operator can raise it; tenants can only
	// tighten their own namespaces with Pod Security labels.
	PodSecurityLevel psapi.Level `json:"podSecurityLevel,omitempty"`

	// Metadata lists the tenant label and annotation keys that reach host
	// objects as they are. Container runtimes, CNI plugins, service meshes,
	// autoscalers and bandwidth shapers act on host metadata; a tenant
	// must not steer them. Other tenant labels reach the host only under
	// knest's own keys (for selectors), other annotations not at all.
	Metadata MetadataAllowlist `json:"metadata,omitzero"`

	// SecurityProfiles lists the node-local security profiles tenant pods
	// may name. None by default: a Localhost profile or SELinux label
	// names something on the host node.
	SecurityProfiles SecurityProfiles `json:"securityProfiles,omitzero"`

	// Storage says which host storage tenant claims get.
	Storage Storage `json:"storage,omitzero"`

	// HostLimits caps what one tenant puts on the host, at the tenant API
	// (the host quota in the chart is the backstop).
	HostLimits HostLimits `json:"hostLimits,omitzero"`

	// Exposure says which hostnames and IngressClasses the tenant's
	// Ingresses may use on the host (exposure.go).
	Exposure Exposure `json:"exposure,omitzero"`

	// Datastore caps what one tenant keeps in its own datastore (its
	// embedded etcd), at the tenant API; the byte limit is knestd's
	// --etcd-quota-bytes.
	Datastore DatastoreLimits `json:"datastore,omitzero"`
}

// HostLimits caps what a tenant's objects cost the host beyond what its
// quota counts. Each is enforced at the tenant API with the reason; 0 takes
// the default.
type HostLimits struct {
	// ServicePorts caps the ports of one Service: every port is a rule on
	// every host node's proxy. Default 20.
	ServicePorts int `json:"servicePorts,omitempty"`
	// EndpointSlices caps the tenant's hand-made (or mirrored) slices,
	// which reach the host and every node watches. Default 200.
	EndpointSlices int `json:"endpointSlices,omitempty"`
	// NetworkPolicies caps the tenant's NetworkPolicies, which reach the
	// host and every node's CNI agent evaluates. Default 100.
	NetworkPolicies int `json:"networkPolicies,omitempty"`
	// ObjectBytes caps the data of one ConfigMap or Secret the syncer
	// copies to the host (when a pod references it); a larger one is not
	// copied and its tenant object gets a SyncRefused Event. Checked where
	// the host is written, not at the tenant API: tenants keep large
	// objects that never reach the host (Helm keeps its releases in
	// Secrets). Default 262144 (256 KiB; the API's own limit is 1 MiB).
	ObjectBytes int `json:"objectBytes,omitempty"`
}

// Default host limits.
const (
	DefaultServicePorts    = 20
	DefaultEndpointSlices  = 200
	DefaultNetworkPolicies = 100
	DefaultObjectBytes     = 256 << 10
)

// MetadataAllowlist lists label and annotation keys that reach host objects
// unchanged. A key ending in "/*" allows every key of that prefix
// ("example.com/*"). Keys in the knest.io domain are never allowed.
type MetadataAllowlist struct {
	// Labels default to none.
	Labels []string `json:"labels,omitempty"`
	// Annotations default to kubectl.kubernetes.io/default-container,
	// which tools read from the host pod.
	Annotations []string `json:"annotations,omitempty"`
}

// SecurityProfiles lists node-local profiles tenant pods may use.
type SecurityProfiles struct {
	// SeccompLocalhost are the localhostProfile names of seccomp profiles
	// of type Localhost tenants may use.
	SeccompLocalhost []string `json:"seccompLocalhost,omitempty"`
	// AppArmorLocalhost are the localhostProfile names of AppArmor profiles
	// of type Localhost tenants may use.
	AppArmorLocalhost []string `json:"appArmorLocalhost,omitempty"`
	// SELinuxOptions are the seLinuxOptions tenants may set, each matched
	// field by field.
	SELinuxOptions []corev1.SELinuxOptions `json:"seLinuxOptions,omitempty"`
}

// Storage says which host storage classes tenant claims get.
type Storage struct {
	// Classes are the host StorageClasses tenant claims may name. When
	// left out, only Default.
	Classes []string `json:"classes,omitempty"`
	// Default is the host StorageClass of claims that name none. knest
	// create fills it from the host's default class at install time (the
	// namespaced identity of knestd cannot read StorageClasses). Empty:
	// claims that name no class get the host's default class, if any.
	Default string `json:"default,omitempty"`
	// VolumeAttributesClasses are the host VolumeAttributesClasses claims
	// may name. None by default.
	VolumeAttributesClasses []string `json:"volumeAttributesClasses,omitempty"`
	// PreProvisioned allows claims that can bind a pre-provisioned host
	// volume: an empty storageClassName. Off by default: such a claim may
	// bind a volume the host made for someone else.
	PreProvisioned bool `json:"preProvisioned,omitempty"`
}

// RuntimeClasses says which host RuntimeClass a pod runs with.
type RuntimeClasses struct {
	// Forced is the RuntimeClass every host pod gets, whatever the tenant
	// set. The hard profile requires one and defaults to "kata"; soft
	// defaults to none.
	Forced string `json:"forced,omitempty"`
	// Allowed are the host RuntimeClasses a tenant may name in a pod's
	// runtimeClassName when none is forced. None by default.
	Allowed []string `json:"allowed,omitempty"`
}

// PriorityClasses says which priority classes reach the host. Host
// PriorityClasses are not readable by knestd, so the operator maps names.
type PriorityClasses struct {
	// Classes maps a tenant priority class name, as a pod names it, to the
	// host PriorityClass its host pod gets. A pod naming a class not
	// listed here is refused. Empty by default.
	Classes map[string]string `json:"classes,omitempty"`
	// MaxValue caps the value of the tenant's own PriorityClass objects.
	// At most 1000000000 (the highest user-definable priority; the host's
	// system classes sit above it), which is the default.
	MaxValue *int32 `json:"maxValue,omitempty"`
}

// TolerationRule allows tolerations of one taint key.
type TolerationRule struct {
	// Key is the taint key. Required: a rule for every key would let
	// tenants onto every tainted node.
	Key string `json:"key"`
	// Operator is Equal (the default) or Exists. Exists allows both:
	// tolerating every value of the key is the wider of the two.
	Operator corev1.TolerationOperator `json:"operator,omitempty"`
	// Effect is NoSchedule, PreferNoSchedule or NoExecute; empty allows
	// each effect and tolerations that name none.
	Effect corev1.TaintEffect `json:"effect,omitempty"`
}

// Placement is forced on every host pod.
type Placement struct {
	// NodeSelector is merged into every host pod's nodeSelector, replacing
	// tenant values for the same keys.
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// Tolerations are added to every host pod: the taints of the tenant's
	// dedicated pool.
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
}

// highestUserPriority is the largest value a host PriorityClass that is not
// a system class may have; Kubernetes reserves the values above it.
const highestUserPriority int32 = 1_000_000_000

// DefaultHardRuntimeClass is the sandboxed RuntimeClass the hard profile
// forces unless the policy names another.
const DefaultHardRuntimeClass = "kata"

// Default returns the policy of a tenant with the given profile and no
// policy file.
func Default(profile Profile) *Policy {
	p := &Policy{Profile: profile}
	p.applyDefaults()
	return p
}

// Load reads a policy file: YAML, strictly decoded (an unknown or repeated
// field is an error, so a typo cannot silently drop a restriction),
// defaulted for its profile and validated.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read policy file: %w", err)
	}
	p := &Policy{}
	if err := yaml.UnmarshalStrict(data, p); err != nil {
		return nil, fmt.Errorf("failed to parse policy file %s: %w", path, err)
	}
	p.applyDefaults()
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("invalid policy file %s: %w", path, err)
	}
	return p, nil
}

// applyDefaults fills what the file left out from the profile's defaults.
// An unknown profile gets none; Validate reports it.
func (p *Policy) applyDefaults() {
	if p.Profile == "" {
		p.Profile = DefaultProfile
	}
	if p.Profile == ProfileHard && p.RuntimeClasses.Forced == "" {
		p.RuntimeClasses.Forced = DefaultHardRuntimeClass
	}
	if p.PriorityClasses.MaxValue == nil {
		p.PriorityClasses.MaxValue = ptr.To(highestUserPriority)
	}
	if p.PodSecurityLevel == "" {
		p.PodSecurityLevel = p.Profile.PodSecurityLevel()
	}
	l := &p.HostLimits
	for _, d := range []struct {
		v   *int
		def int
	}{{&l.ServicePorts, DefaultServicePorts}, {&l.EndpointSlices, DefaultEndpointSlices}, {&l.NetworkPolicies, DefaultNetworkPolicies}, {&l.ObjectBytes, DefaultObjectBytes}} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	p.Datastore.applyDefaults()
	if p.Metadata.Annotations == nil {
		p.Metadata.Annotations = []string{DefaultContainerAnnotation}
	}
	if p.Storage.Classes == nil && p.Storage.Default != "" {
		p.Storage.Classes = []string{p.Storage.Default}
	}
	if p.NodeLabelKeys == nil {
		p.NodeLabelKeys = []string{
			corev1.LabelOSStable,
			corev1.LabelArchStable,
			corev1.LabelTopologyZone,
			corev1.LabelTopologyRegion,
		}
	}
}

// Validate reports every mistake in the policy, each under its field path
// in the file.
func (p *Policy) Validate() error {
	var errs field.ErrorList
	switch p.Profile {
	case ProfileSoft, ProfileHard:
	default:
		errs = append(errs, field.NotSupported(field.NewPath("profile"), p.Profile, profiles))
	}
	errs = append(errs, p.validateRuntimeClasses(field.NewPath("runtimeClasses"))...)
	errs = append(errs, p.validatePriorityClasses(field.NewPath("priorityClasses"))...)
	for i, r := range p.Tolerations {
		errs = append(errs, validateTolerationRule(r, field.NewPath("tolerations").Index(i))...)
	}
	errs = append(errs, validateLabelKeys(p.NodeLabelKeys, field.NewPath("nodeLabelKeys"))...)
	for i, t := range p.ServiceTypes {
		if !slices.Contains(serviceTypes(), t) {
			errs = append(errs, field.NotSupported(field.NewPath("serviceTypes").Index(i), t, serviceTypes()))
		}
	}
	known := knownVolumeTypes()
	for i, t := range p.VolumeTypes {
		if !slices.Contains(known, t) {
			errs = append(errs, field.NotSupported(field.NewPath("volumeTypes").Index(i), t, known))
		}
	}
	for i, c := range p.EgressCIDRs {
		errs = append(errs, validateCIDR(c, field.NewPath("egressCIDRs").Index(i))...)
	}
	errs = append(errs, p.validateAPIServerEgress()...)
	errs = append(errs, validatePlacement(p.Placement, field.NewPath("placement"))...)
	switch p.PodSecurityLevel {
	case psapi.LevelBaseline, psapi.LevelRestricted:
	default:
		errs = append(errs, field.NotSupported(field.NewPath("podSecurityLevel"), p.PodSecurityLevel,
			[]psapi.Level{psapi.LevelBaseline, psapi.LevelRestricted}))
	}
	errs = append(errs, p.Metadata.validate(field.NewPath("metadata"))...)
	errs = append(errs, p.Storage.validate(field.NewPath("storage"))...)
	errs = append(errs, p.Exposure.validate(field.NewPath("exposure"))...)
	for _, l := range []struct {
		name string
		v    int
	}{{"servicePorts", p.HostLimits.ServicePorts}, {"endpointSlices", p.HostLimits.EndpointSlices}, {"networkPolicies", p.HostLimits.NetworkPolicies}, {"objectBytes", p.HostLimits.ObjectBytes}} {
		if l.v < 0 {
			errs = append(errs, field.Invalid(field.NewPath("hostLimits", l.name), l.v, "must not be negative"))
		}
	}
	errs = append(errs, p.Datastore.validate(field.NewPath("datastore"))...)
	return errs.ToAggregate()
}

func (p *Policy) validateRuntimeClasses(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	rc := p.RuntimeClasses
	if rc.Forced != "" {
		errs = append(errs, validateName(rc.Forced, path.Child("forced"))...)
	} else if p.Profile == ProfileHard {
		errs = append(errs, field.Required(path.Child("forced"), "the hard profile runs every pod in a sandboxed runtime class"))
	}
	for i, name := range rc.Allowed {
		at := path.Child("allowed").Index(i)
		errs = append(errs, validateName(name, at)...)
		if rc.Forced != "" && name != rc.Forced {
			errs = append(errs, field.Invalid(at, name, fmt.Sprintf("has no effect: every host pod gets the forced runtime class %q", rc.Forced)))
		}
	}
	return errs
}

func (p *Policy) validatePriorityClasses(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	pc := p.PriorityClasses
	for _, tenant := range slices.Sorted(maps.Keys(pc.Classes)) {
		at := path.Child("classes").Key(tenant)
		errs = append(errs, validateName(tenant, at)...)
		host := pc.Classes[tenant]
		errs = append(errs, validateName(host, at)...)
		// Kubernetes reserves the system- prefix for its own classes,
		// which outrank every workload on the node.
		if strings.HasPrefix(host, "system-") {
			errs = append(errs, field.Invalid(at, host, "host system priority classes are reserved for the host's own components"))
		}
	}
	if pc.MaxValue != nil && *pc.MaxValue > highestUserPriority {
		errs = append(errs, field.Invalid(path.Child("maxValue"), *pc.MaxValue,
			fmt.Sprintf("must be at most %d: higher values are reserved for system priority classes", highestUserPriority)))
	}
	return errs
}

func validateTolerationRule(r TolerationRule, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if r.Key == "" {
		errs = append(errs, field.Required(path.Child("key"), "a rule without a key would allow tolerating every taint"))
	} else {
		errs = append(errs, validateLabelKey(r.Key, path.Child("key"))...)
	}
	errs = append(errs, validateOperator(r.Operator, path.Child("operator"))...)
	errs = append(errs, validateEffect(r.Effect, path.Child("effect"))...)
	return errs
}

func validatePlacement(pl Placement, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, k := range slices.Sorted(maps.Keys(pl.NodeSelector)) {
		at := path.Child("nodeSelector").Key(k)
		errs = append(errs, validateLabelKey(k, at)...)
		for _, msg := range content.IsLabelValue(pl.NodeSelector[k]) {
			errs = append(errs, field.Invalid(at, pl.NodeSelector[k], msg))
		}
	}
	for i, t := range pl.Tolerations {
		at := path.Child("tolerations").Index(i)
		if t.Key == "" {
			errs = append(errs, field.Required(at.Child("key"), "a toleration without a key tolerates every taint, including other tenants' pools"))
		} else {
			errs = append(errs, validateLabelKey(t.Key, at.Child("key"))...)
		}
		errs = append(errs, validateOperator(t.Operator, at.Child("operator"))...)
		if t.Operator == corev1.TolerationOpExists && t.Value != "" {
			errs = append(errs, field.Invalid(at.Child("value"), t.Value, "must be empty when operator is Exists"))
		}
		if t.Value != "" {
			for _, msg := range content.IsLabelValue(t.Value) {
				errs = append(errs, field.Invalid(at.Child("value"), t.Value, msg))
			}
		}
		errs = append(errs, validateEffect(t.Effect, at.Child("effect"))...)
		if t.TolerationSeconds != nil && t.Effect != corev1.TaintEffectNoExecute {
			errs = append(errs, field.Invalid(at.Child("tolerationSeconds"), *t.TolerationSeconds, "only valid with effect NoExecute"))
		}
	}
	return errs
}

func validateOperator(op corev1.TolerationOperator, path *field.Path) field.ErrorList {
	switch op {
	case "", corev1.TolerationOpEqual, corev1.TolerationOpExists:
		return nil
	}
	return field.ErrorList{field.NotSupported(path, op, []corev1.TolerationOperator{corev1.TolerationOpEqual, corev1.TolerationOpExists})}
}

func validateEffect(e corev1.TaintEffect, path *field.Path) field.ErrorList {
	switch e {
	case "", corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		return nil
	}
	return field.ErrorList{field.NotSupported(path, e, []corev1.TaintEffect{
		corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute,
	})}
}

func validateLabelKeys(keys []string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, k := range keys {
		errs = append(errs, validateLabelKey(k, path.Index(i))...)
	}
	return errs
}

func validateLabelKey(k string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range content.IsLabelKey(k) {
		errs = append(errs, field.Invalid(path, k, msg))
	}
	return errs
}

func validateName(name string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range content.IsDNS1123Subdomain(name) {
		errs = append(errs, field.Invalid(path, name, msg))
	}
	return errs
}

func validateCIDR(s string, path *field.Path) field.ErrorList {
	prefix, err := netip.ParsePrefix(s)
	if err != nil {
		return field.ErrorList{field.Invalid(path, s, "must be a network in CIDR notation, such as 10.20.0.0/16 or 2001:db8::/32")}
	}
	if masked := prefix.Masked(); masked != prefix {
		return field.ErrorList{field.Invalid(path, s, fmt.Sprintf("has host bits set; did you mean %s?", masked))}
	}
	return nil
}

// serviceTypes are the Service types a policy may allow.
func serviceTypes() []corev1.ServiceType {
	return []corev1.ServiceType{
		corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort,
		corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeExternalName,
	}
}

// baseVolumeTypes are the volume types every tenant may use: they hold
// data from the tenant's own API or storage, never from the node.
func baseVolumeTypes() []string {
	return []string{"configMap", "secret", "projected", "downwardAPI", "emptyDir", "persistentVolumeClaim", "ephemeral"}
}

// ProjectedSources are the sources of a projected volume that may reach the
// host, by field name: the tenant's own ConfigMaps, Secrets and downward API,
// and service-account tokens, which knest issues through the tenant API
// server (the host kubelet never mints one for an audience the tenant
// chose). Every other source (clusterTrustBundle, podCertificate, and any a
// newer API adds) makes the host kubelet fetch host credentials or host
// trust bundles.
func ProjectedSources() []string {
	return []string{"configMap", "secret", "downwardAPI", "serviceAccountToken"}
}

// knownVolumeTypes lists the volume types of the Kubernetes API this
// package was built with, by their field names in a pod volume.
func knownVolumeTypes() []string {
	t := reflect.TypeFor[corev1.VolumeSource]()
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		names = append(names, jsonName(t.Field(i)))
	}
	return names
}

// volumeType names the type of a volume as its field name in the API
// ("hostPath"). A volume with no source is an emptyDir, as the API server
// defaults it.
func volumeType(v *corev1.VolumeSource) string {
	rv := reflect.ValueOf(v).Elem()
	for i := range rv.NumField() {
		if f := rv.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			return jsonName(rv.Type().Field(i))
		}
	}
	return "emptyDir"
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		return f.Name
	}
	return name
}

// allowedVolumeTypes are the base types and the operator's additions.
func (p *Policy) allowedVolumeTypes() []string {
	return append(baseVolumeTypes(), p.VolumeTypes...)
}

// HostPriorityClass returns the host PriorityClass a tenant pod naming
// tenantClass gets, and whether the policy lets that class reach the host.
func (p *Policy) HostPriorityClass(tenantClass string) (string, bool) {
	host, ok := p.PriorityClasses.Classes[tenantClass]
	return host, ok
}

// level is the floor; an unset one (a Policy not built by Load or Default)
// is the profile's.
func (p *Policy) level() psapi.Level {
	if p.PodSecurityLevel == "" {
		return p.profile().PodSecurityLevel()
	}
	return p.PodSecurityLevel
}

// Describe names the profile and its floor for messages: "the hard profile
// (Pod Security baseline)".
func (p *Policy) Describe() string {
	return fmt.Sprintf("the %s profile (Pod Security %s)", p.profile(), p.level())
}

// profile is the policy's profile; an unset one is the default profile.
func (p *Policy) profile() Profile {
	if p.Profile == "" {
		return DefaultProfile
	}
	return p.Profile
}
