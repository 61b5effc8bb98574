package pods

import (
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/translate"
)

// HostServiceAccount is the host ServiceAccount every host pod runs as; it
// has no permissions and its token is never mounted.
const HostServiceAccount = "knest-workload"

// Env is what the caller computes for a new host pod from other objects.
type Env struct {
	// ServiceEnv are the service environment variables the tenant pod
	// expects (see ServiceEnv); every container gets them ahead of its own.
	ServiceEnv []corev1.EnvVar
	// TokenSecret is the host Secret that carries the pod's tenant
	// service-account tokens (see TokenSecretName).
	TokenSecret string
	// TokenAudience, if set, is the tenant's host token audience
	// (pkg/hosttoken): token projections without an audience of their own
	// become host-minted tokens for it instead of Secret keys (HostMinted).
	TokenAudience string
	// DNS is the tenant's DNS server, which ClusterFirst pods use (see
	// DNSConfig).
	DNS DNS
	// NodeAddress is the virtual nodes' address: the host IP tenant pods
	// see, in their status and through the downward API.
	NodeAddress string
	// NamespaceLabels are the labels of the pod's tenant namespace.
	NamespaceLabels map[string]string
	// HostNodes names the host node a virtual Node stands for: the tenant's
	// choice of a node by name (nodeName, a DaemonSet's node affinity, the
	// hostname label) is placement on it. Nil knows no node.
	HostNodes policy.HostNodes
	// VirtualNodes lists the tenant's virtual Nodes with their labels, for
	// node selection on labels the tenant set on them. Nil knows none.
	VirtualNodes func() []policy.VirtualNode
}

// Annotations of host pods that the downward API reads in place of the host
// pod's own fields.
const (
	// AnnotationServiceAccount holds the tenant pod's ServiceAccount name.
	AnnotationServiceAccount = "knest.io/service-account"
	// AnnotationHostIP holds the virtual node's address.
	AnnotationHostIP = "knest.io/host-ip"
)

// allowedVolume reports whether a volume type may reach the host.
func allowedVolume(v corev1.VolumeSource) bool {
	return v.ConfigMap != nil || v.Secret != nil || v.Projected != nil || v.DownwardAPI != nil ||
		v.EmptyDir != nil || v.PersistentVolumeClaim != nil || v.Ephemeral != nil
}

// IsServiceAccountTokenVolume reports whether a volume is the projected
// service-account token volume the tenant's ServiceAccount admission added.
func IsServiceAccountTokenVolume(v corev1.Volume) bool {
	if v.Projected == nil {
		return false
	}
	for _, s := range v.Projected.Sources {
		if s.ServiceAccountToken != nil {
			return true
		}
	}
	return false
}

// Forward returns the desired host pod for tenant pod p. host is the current
// host pod or nil: a pod's spec is immutable but for a few fields, so an
// existing host pod keeps its spec and only the mutable parts follow. Neither
// input is modified.
func Forward(p, host *corev1.Pod, meta translate.Meta, env Env) *corev1.Pod {
	meta = podMeta(meta, p, env)
	if host != nil {
		out := host.DeepCopy()
		meta.ApplyTo(out)
		// The fields Kubernetes lets change on a running pod.
		for i := range out.Spec.Containers {
			if i < len(p.Spec.Containers) && out.Spec.Containers[i].Name == p.Spec.Containers[i].Name {
				out.Spec.Containers[i].Image = p.Spec.Containers[i].Image
			}
		}
		for i := range out.Spec.InitContainers {
			if i < len(p.Spec.InitContainers) && out.Spec.InitContainers[i].Name == p.Spec.InitContainers[i].Name {
				out.Spec.InitContainers[i].Image = p.Spec.InitContainers[i].Image
			}
		}
		out.Spec.ActiveDeadlineSeconds = p.Spec.ActiveDeadlineSeconds
		return out
	}
	names := func(name string) string {
		return translate.HostName(meta.Tenant, meta.TenantNamespace, name, translate.MaxSubdomainLength)
	}
	out := &corev1.Pod{}
	meta.ApplyTo(out)
	s := &out.Spec
	s.ServiceAccountName = HostServiceAccount
	s.AutomountServiceAccountToken = ptr.To(false)
	s.EnableServiceLinks = ptr.To(false)
	s.RestartPolicy = p.Spec.RestartPolicy
	s.TerminationGracePeriodSeconds = p.Spec.TerminationGracePeriodSeconds
	s.ActiveDeadlineSeconds = p.Spec.ActiveDeadlineSeconds
	s.Hostname = p.Spec.Hostname
	if s.Hostname == "" {
		// Without it the host would name the pod after its host name.
		s.Hostname = p.Name
	}
	s.Subdomain = p.Spec.Subdomain
	s.DNSPolicy, s.DNSConfig = DNSConfig(p, env.DNS)
	s.SecurityContext = p.Spec.SecurityContext.DeepCopy()
	s.ShareProcessNamespace = p.Spec.ShareProcessNamespace
	s.HostAliases = slices.Clone(p.Spec.HostAliases)
	s.OS = p.Spec.OS.DeepCopy()
	s.HostUsers = p.Spec.HostUsers
	s.Resources = p.Spec.Resources.DeepCopy()
	for _, ref := range p.Spec.ImagePullSecrets {
		s.ImagePullSecrets = append(s.ImagePullSecrets, corev1.LocalObjectReference{Name: names(ref.Name)})
	}
	tokens := 0
	for _, v := range p.Spec.Volumes {
		switch {
		case IsServiceAccountTokenVolume(v):
			s.Volumes = append(s.Volumes, tokenVolume(v, env.TokenSecret, env.TokenAudience, &tokens, names))
		case v.Ephemeral != nil:
			// The tenant's ephemeral-volume controller made the claim,
			// named after the pod and the volume; the host pod uses its
			// host copy instead of making a claim of its own.
			s.Volumes = append(s.Volumes, corev1.Volume{Name: v.Name, VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: names(p.Name + "-" + v.Name)},
			}})
		case allowedVolume(v.VolumeSource):
			s.Volumes = append(s.Volumes, forwardVolume(v, names))
		}
	}
	for _, c := range p.Spec.InitContainers {
		s.InitContainers = append(s.InitContainers, forwardContainer(c, p, env, names))
	}
	for _, c := range p.Spec.Containers {
		s.Containers = append(s.Containers, forwardContainer(c, p, env, names))
	}
	return out
}

// podMeta adds to the owned annotations what the host pod needs beyond the
// tenant identity: the kind of the tenant pod's controller (host pods have
// no owner references, and the host may treat a Job's pods differently: the
// devcluster completes them), and what its downward API reads instead of
// the host pod's own fields (the tenant ServiceAccount, the virtual node's
// address, and each tenant annotation the pod names).
func podMeta(meta translate.Meta, p *corev1.Pod, env Env) translate.Meta {
	annotations := maps.Clone(meta.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	for _, ref := range p.OwnerReferences {
		if ref.Controller != nil && *ref.Controller {
			annotations[translate.AnnotationOwnerKind] = ref.Kind
		}
	}
	annotations[AnnotationServiceAccount] = p.Spec.ServiceAccountName
	if env.NodeAddress != "" {
		annotations[AnnotationHostIP] = env.NodeAddress
	}
	for _, key := range downwardAnnotations(p) {
		if v, ok := p.Annotations[key]; ok {
			annotations[translate.TenantAnnotationKey(key)] = v
		}
	}
	meta.Annotations = annotations
	return meta
}

// downwardAnnotations lists the tenant annotation keys the pod's downward
// API names one by one (metadata.annotations['key']).
func downwardAnnotations(p *corev1.Pod) []string {
	var keys []string
	for _, r := range policy.FieldRefs(&p.Spec, nil) {
		if key, ok := fieldKey(r.Ref.FieldPath, "metadata.annotations"); ok && !slices.Contains(keys, key) {
			keys = append(keys, key)
		}
	}
	return keys
}

// fieldKey parses "metadata.labels['key']" (or with double quotes) for
// the map named prefix.
func fieldKey(path, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(path, prefix+"[")
	if !ok || len(rest) < 3 {
		return "", false
	}
	q := rest[0]
	if (q != '\'' && q != '"') || !strings.HasSuffix(rest, string(q)+"]") {
		return "", false
	}
	return rest[1 : len(rest)-2], true
}

func forwardVolume(v corev1.Volume, names func(string) string) corev1.Volume {
	v = *v.DeepCopy()
	switch {
	case v.ConfigMap != nil:
		v.ConfigMap.Name = names(v.ConfigMap.Name)
	case v.Secret != nil:
		v.Secret.SecretName = names(v.Secret.SecretName)
	case v.PersistentVolumeClaim != nil:
		v.PersistentVolumeClaim.ClaimName = names(v.PersistentVolumeClaim.ClaimName)
	case v.DownwardAPI != nil:
		for i := range v.DownwardAPI.Items {
			v.DownwardAPI.Items[i].FieldRef = identityFieldRef(v.DownwardAPI.Items[i].FieldRef)
		}
	case v.Projected != nil:
		for i := range v.Projected.Sources {
			src := &v.Projected.Sources[i]
			if src.ConfigMap != nil {
				src.ConfigMap.Name = names(src.ConfigMap.Name)
			}
			if src.Secret != nil {
				src.Secret.Name = names(src.Secret.Name)
			}
			if src.DownwardAPI != nil {
				for j := range src.DownwardAPI.Items {
					src.DownwardAPI.Items[j].FieldRef = identityFieldRef(src.DownwardAPI.Items[j].FieldRef)
				}
			}
		}
	}
	return v
}

// identityAnnotations are where a host pod keeps what the tenant sees of
// itself; the downward API reads them instead of the host pod's own name,
// namespace, UID and ServiceAccount, and the host node's IP.
var identityAnnotations = map[string]string{
	"metadata.name":           translate.AnnotationName,
	"metadata.namespace":      translate.AnnotationNamespace,
	"metadata.uid":            translate.AnnotationUID,
	"spec.serviceAccountName": AnnotationServiceAccount,
	"status.hostIP":           AnnotationHostIP,
	"status.hostIPs":          AnnotationHostIP,
}

// identityFieldRef points a downward API field at what the tenant sees:
// identityAnnotations, and single labels and annotations under the keys
// the host pod carries them with. Fields that would show the host node
// (spec.nodeName) are refused at admission (policy.CheckPod).
func identityFieldRef(ref *corev1.ObjectFieldSelector) *corev1.ObjectFieldSelector {
	if ref == nil {
		return nil
	}
	annotation := func(key string) *corev1.ObjectFieldSelector {
		return &corev1.ObjectFieldSelector{APIVersion: ref.APIVersion, FieldPath: "metadata.annotations['" + key + "']"}
	}
	if key, ok := identityAnnotations[ref.FieldPath]; ok {
		return annotation(key)
	}
	if key, ok := fieldKey(ref.FieldPath, "metadata.labels"); ok {
		return &corev1.ObjectFieldSelector{APIVersion: ref.APIVersion, FieldPath: "metadata.labels['" + translate.TenantKey(key) + "']"}
	}
	if key, ok := fieldKey(ref.FieldPath, "metadata.annotations"); ok {
		return annotation(translate.TenantAnnotationKey(key))
	}
	return ref.DeepCopy()
}

func forwardContainer(c corev1.Container, p *corev1.Pod, env Env, names func(string) string) corev1.Container {
	out := corev1.Container{
		Name:                     c.Name,
		Image:                    c.Image,
		Command:                  slices.Clone(c.Command),
		Args:                     slices.Clone(c.Args),
		WorkingDir:               c.WorkingDir,
		Resources:                *c.Resources.DeepCopy(),
		ResizePolicy:             slices.Clone(c.ResizePolicy),
		RestartPolicyRules:       slices.Clone(c.RestartPolicyRules),
		VolumeDevices:            slices.Clone(c.VolumeDevices),
		LivenessProbe:            c.LivenessProbe.DeepCopy(),
		ReadinessProbe:           c.ReadinessProbe.DeepCopy(),
		StartupProbe:             c.StartupProbe.DeepCopy(),
		Lifecycle:                c.Lifecycle.DeepCopy(),
		TerminationMessagePath:   c.TerminationMessagePath,
		TerminationMessagePolicy: c.TerminationMessagePolicy,
		ImagePullPolicy:          c.ImagePullPolicy,
		SecurityContext:          c.SecurityContext.DeepCopy(),
		RestartPolicy:            c.RestartPolicy,
		Stdin:                    c.Stdin,
		StdinOnce:                c.StdinOnce,
		TTY:                      c.TTY,
	}
	for _, port := range c.Ports {
		// Never a port of the node.
		port.HostPort, port.HostIP = 0, ""
		out.Ports = append(out.Ports, port)
	}
	out.VolumeMounts = slices.Clone(c.VolumeMounts)
	for _, e := range c.EnvFrom {
		e = *e.DeepCopy()
		if e.ConfigMapRef != nil {
			e.ConfigMapRef.Name = names(e.ConfigMapRef.Name)
		}
		if e.SecretRef != nil {
			e.SecretRef.Name = names(e.SecretRef.Name)
		}
		out.EnvFrom = append(out.EnvFrom, e)
	}
	// Service variables first: the container's own win, and may refer to
	// them as $(VAR).
	out.Env = slices.Clone(env.ServiceEnv)
	for _, e := range c.Env {
		e = *e.DeepCopy()
		if e.ValueFrom != nil {
			switch {
			case e.ValueFrom.ConfigMapKeyRef != nil:
				e.ValueFrom.ConfigMapKeyRef.Name = names(e.ValueFrom.ConfigMapKeyRef.Name)
			case e.ValueFrom.SecretKeyRef != nil:
				e.ValueFrom.SecretKeyRef.Name = names(e.ValueFrom.SecretKeyRef.Name)
			case e.ValueFrom.FieldRef != nil:
				e.ValueFrom.FieldRef = identityFieldRef(e.ValueFrom.FieldRef)
			}
		}
		out.Env = append(out.Env, e)
	}
	return out
}
