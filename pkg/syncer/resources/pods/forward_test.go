package pods

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/pkg/syncer/resources/internal/forwardtest"
	"github.com/knest-dev/knest/pkg/translate"
)

var meta = translate.Meta{
	Name: "api-0-x-shop-x-acme", Namespace: "knest-acme",
	Labels:      map[string]string{translate.LabelTenant: "acme", translate.LabelNamespace: "shop", "app": "api"},
	Annotations: map[string]string{translate.AnnotationName: "api-0", translate.AnnotationNamespace: "shop", translate.AnnotationUID: "u1", translate.AnnotationKind: "Pod"},
	Tenant:      "acme", TenantNamespace: "shop",
}

func host(name string) string {
	return translate.HostName("acme", "shop", name, translate.MaxSubdomainLength)
}

func tenantPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "api-0", Namespace: "shop", UID: "u1", Labels: map[string]string{"app": "api"}},
		Spec: corev1.PodSpec{
			NodeName:           "virtual-node",
			ServiceAccountName: "api",
			HostNetwork:        true,
			PriorityClassName:  "system-cluster-critical",
			RuntimeClassName:   ptr.To("runc"),
			Tolerations:        []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			ImagePullSecrets:   []corev1.LocalObjectReference{{Name: "registry"}},
			Subdomain:          "api",
			Volumes: []corev1.Volume{
				{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
				{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "tls"}}},
				{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-api-0"}}},
				{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
					{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}},
					{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
				}}}},
				{Name: "root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}},
				{Name: "kube-api-access-x", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}}},
				}}}},
			},
			Containers: []corev1.Container{{
				Name: "api", Image: "api:1",
				Ports:   []corev1.ContainerPort{{ContainerPort: 8080, HostPort: 80}},
				EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}}}},
				Env: []corev1.EnvVar{
					{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
					{Name: "POD_NS", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
					{Name: "MODE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "mode"}}},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "cfg", MountPath: "/cfg"}, {Name: "kube-api-access-x", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}},
			}},
		},
	}
}

func TestForwardNewPod(t *testing.T) {
	t.Parallel()
	in := tenantPod()
	before := in.DeepCopy()
	got := Forward(in, nil, meta, Env{})

	if diff := cmp.Diff(before, in); diff != "" {
		t.Errorf("Forward mutated the tenant pod:\n%s", diff)
	}
	s := got.Spec
	checks := []struct {
		what string
		ok   bool
	}{
		{"runs as the fixed host ServiceAccount", s.ServiceAccountName == HostServiceAccount},
		{"mounts no host token", s.AutomountServiceAccountToken != nil && !*s.AutomountServiceAccountToken},
		{"has no service links", s.EnableServiceLinks != nil && !*s.EnableServiceLinks},
		{"is not pinned to a node", s.NodeName == ""},
		{"does not use the host network", !s.HostNetwork},
		{"carries no tenant priority, runtime class or tolerations", s.PriorityClassName == "" && s.RuntimeClassName == nil && len(s.Tolerations) == 0},
		{"keeps the tenant hostname and subdomain", s.Hostname == "api-0" && s.Subdomain == "api"},
		{"binds no host port", s.Containers[0].Ports[0].HostPort == 0 && s.Containers[0].Ports[0].ContainerPort == 8080},
		{"pulls with the host copy of its pull secret", len(s.ImagePullSecrets) == 1 && s.ImagePullSecrets[0].Name == host("registry")},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("the host pod %s: spec %+v", c.what, s)
		}
	}

	var volumes []string
	for _, v := range s.Volumes {
		volumes = append(volumes, v.Name)
	}
	if diff := cmp.Diff([]string{"cfg", "tls", "data", "info", "kube-api-access-x"}, volumes); diff != "" {
		t.Errorf("volumes: hostPath must be left out (-want +got):\n%s", diff)
	}
	if s.Volumes[0].ConfigMap.Name != host("cfg") || s.Volumes[1].Secret.SecretName != host("tls") || s.Volumes[2].PersistentVolumeClaim.ClaimName != host("data-api-0") {
		t.Errorf("volume references are not renamed to host copies: %+v", s.Volumes)
	}
	if got := s.Volumes[3].DownwardAPI.Items[0].FieldRef.FieldPath; got != "metadata.annotations['knest.io/name']" {
		t.Errorf("downward API metadata.name reads %q, want the tenant name annotation", got)
	}
	if got := s.Volumes[3].DownwardAPI.Items[1].FieldRef.FieldPath; got != "metadata.labels" {
		t.Errorf("downward API metadata.labels reads %q", got)
	}
	c := s.Containers[0]
	if len(c.VolumeMounts) != 2 || c.VolumeMounts[1].MountPath != "/var/run/secrets/kubernetes.io/serviceaccount" {
		t.Errorf("the token volume must be mounted where the tenant pod expects it: %+v", c.VolumeMounts)
	}
	if c.EnvFrom[0].SecretRef.Name != host("db") || c.Env[2].ValueFrom.ConfigMapKeyRef.Name != host("cfg") {
		t.Errorf("env references are not renamed: %+v %+v", c.EnvFrom, c.Env)
	}
	if c.Env[0].ValueFrom.FieldRef.FieldPath != "metadata.annotations['knest.io/name']" || c.Env[1].ValueFrom.FieldRef.FieldPath != "metadata.annotations['knest.io/namespace']" {
		t.Errorf("downward API env must show the tenant identity: %+v", c.Env)
	}
	if got.Annotations[translate.AnnotationName] != "api-0" || got.Annotations[translate.AnnotationNamespace] != "shop" {
		t.Errorf("the identity annotations the downward API reads are missing: %v", got.Annotations)
	}
}

func TestForwardExistingPodOnlyChangesMutableFields(t *testing.T) {
	t.Parallel()
	in := tenantPod()
	existing := Forward(in, nil, meta, Env{})
	existing.UID, existing.ResourceVersion = "host-uid", "5"
	existing.Spec.NodeName = "host-node-3"
	existing.Spec.Tolerations = []corev1.Toleration{{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists}}

	changed := in.DeepCopy()
	changed.Spec.Containers[0].Image = "api:2"
	changed.Spec.ActiveDeadlineSeconds = ptr.To[int64](600)
	changed.Spec.Containers[0].Args = []string{"--not", "mutable"}
	before := existing.DeepCopy()
	got := Forward(changed, existing, meta, Env{})

	if diff := cmp.Diff(before, existing); diff != "" {
		t.Errorf("Forward mutated the host pod:\n%s", diff)
	}
	want := before.DeepCopy()
	want.Spec.Containers[0].Image = "api:2"
	want.Spec.ActiveDeadlineSeconds = ptr.To[int64](600)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("only image and activeDeadlineSeconds may change on a running pod (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(got, Forward(changed, got, meta, Env{})); diff != "" {
		t.Errorf("Forward is not stable on its own output:\n%s", diff)
	}
}

func TestForwardTokenVolumes(t *testing.T) {
	t.Parallel()
	in := tenantPod()
	in.Spec.Volumes = append(in.Spec.Volumes, corev1.Volume{Name: "vault", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "vault-token", Audience: "vault", ExpirationSeconds: ptr.To[int64](600)}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}},
		},
	}}})
	secret := TokenSecretName(meta.Name)
	fromSecret := func(items ...corev1.KeyToPath) corev1.VolumeProjection {
		return corev1.VolumeProjection{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Items: items}}
	}
	rootCA := corev1.VolumeProjection{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: host("kube-root-ca.crt")}}}
	const audience = "knest:0123"
	tests := []struct {
		name            string
		audience        string
		wantDefault     []corev1.VolumeProjection
		wantVault       []corev1.VolumeProjection
		wantSecretCount int
	}{{
		name:     "host-minted tokens on: the default token is the host kubelet's, for the tenant's audience; the vault token the Secret's",
		audience: audience,
		wantDefault: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", Audience: audience}},
			rootCA,
		},
		wantVault:       []corev1.VolumeProjection{fromSecret(corev1.KeyToPath{Key: TokenKey(0), Path: "vault-token"}), {ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: host("cfg")}}}},
		wantSecretCount: 1,
	}, {
		name:            "host-minted tokens off: every token from the Secret",
		wantDefault:     []corev1.VolumeProjection{fromSecret(corev1.KeyToPath{Key: TokenKey(0), Path: "token"}), rootCA},
		wantVault:       []corev1.VolumeProjection{fromSecret(corev1.KeyToPath{Key: TokenKey(1), Path: "vault-token"}), {ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: host("cfg")}}}},
		wantSecretCount: 2,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := forwardtest.Forward(t, in, nil, func(p, h *corev1.Pod) *corev1.Pod {
				return Forward(p, h, meta, Env{TokenSecret: secret, TokenAudience: tc.audience})
			})
			byName := map[string]corev1.Volume{}
			for _, v := range got.Spec.Volumes {
				byName[v.Name] = v
			}
			if diff := cmp.Diff(tc.wantDefault, byName["kube-api-access-x"].Projected.Sources); diff != "" {
				t.Errorf("default token volume (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantVault, byName["vault"].Projected.Sources); diff != "" {
				t.Errorf("a token with its own audience (-want +got):\n%s", diff)
			}
			if HostTokenAudience(got) != tc.audience {
				t.Errorf("HostTokenAudience = %q, want %q", HostTokenAudience(got), tc.audience)
			}
			if n := len(SecretTokenProjections(in, HostTokenAudience(got))); n != tc.wantSecretCount {
				t.Errorf("SecretTokenProjections found %d projections, want %d", n, tc.wantSecretCount)
			}
			if err := checkHostTokens(got, tc.audience); err != nil {
				t.Errorf("checkHostTokens: %v", err)
			}
		})
	}
	if strings.Contains(secret, "-x-") || len(secret) > translate.MaxSubdomainLength {
		t.Errorf("token Secret name %q could collide with a tenant Secret's host copy", secret)
	}
}

// A tenant pod can read its own host-minted token and so learn its tenant's
// knest audience. A pod (or a whole tenant of them) that asks for a token
// of that audience, or another tenant's, by name gets one the tenant API
// server signs, through the Secret: only a projection with no audience of
// its own becomes a host kubelet's token, so the tenant never has the host
// kubelet mint a token of its choosing.
func TestATenantNamingAKnestAudienceGetsATenantSignedToken(t *testing.T) {
	t.Parallel()
	const audience = "knest:0123"
	for _, asked := range []string{audience, "knest:other-tenant"} {
		in := tenantPod()
		for i, v := range in.Spec.Volumes {
			if v.Name == "kube-api-access-x" {
				in.Spec.Volumes[i].Projected.Sources[0].ServiceAccountToken.Audience = asked
			}
		}
		secret := TokenSecretName(meta.Name)
		got := Forward(in, nil, meta, Env{TokenSecret: secret, TokenAudience: audience})
		if a := HostTokenAudience(got); a != "" {
			t.Errorf("asked for %q: the host pod projects a host token for %q, want none", asked, a)
		}
		if n := len(SecretTokenProjections(in, HostTokenAudience(got))); n != 1 {
			t.Errorf("asked for %q: %d projections from the token Secret, want 1", asked, n)
		}
		for _, v := range got.Spec.Volumes {
			if v.Name == "kube-api-access-x" {
				want := corev1.VolumeProjection{Secret: &corev1.SecretProjection{
					LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Items: []corev1.KeyToPath{{Key: TokenKey(0), Path: "token"}},
				}}
				if diff := cmp.Diff(want, v.Projected.Sources[0]); diff != "" {
					t.Errorf("asked for %q: the token's source (-want +got):\n%s", asked, diff)
				}
			}
		}
		if err := checkHostTokens(got, audience); err != nil {
			t.Errorf("asked for %q: checkHostTokens: %v", asked, err)
		}
	}
}

func TestHostPodWithAHostAudienceTokenIsRefused(t *testing.T) {
	t.Parallel()
	in := tenantPod()
	got := Forward(in, nil, meta, Env{TokenAudience: "knest:0123"})
	for _, audience := range []string{"", "https://kubernetes.default.svc.cluster.local", "knest:other", "vault"} {
		bad := got.DeepCopy()
		for _, v := range bad.Spec.Volumes {
			if v.Name == "kube-api-access-x" {
				v.Projected.Sources[0].ServiceAccountToken.Audience = audience
			}
		}
		if err := checkHostTokens(bad, "knest:0123"); err == nil {
			t.Errorf("a host pod projecting a host token for audience %q passed the check", audience)
		}
	}
	if err := checkHostTokens(got, ""); err == nil {
		t.Error("a host token projection passed with host-minted tokens off")
	}
}

func TestForwardEnvironment(t *testing.T) {
	t.Parallel()
	in := tenantPod()
	in.OwnerReferences = []metav1.OwnerReference{{Kind: "Job", Name: "migrate", Controller: ptr.To(true)}}
	in.Spec.Volumes = append(in.Spec.Volumes, corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{}}})
	svcEnv := []corev1.EnvVar{{Name: "KUBERNETES_SERVICE_HOST", Value: "10.96.7.7"}, {Name: "POD_NAME", Value: "overridden"}}
	got := forwardtest.Forward(t, in, nil, func(p, h *corev1.Pod) *corev1.Pod { return Forward(p, h, meta, Env{ServiceEnv: svcEnv}) })

	env := got.Spec.Containers[0].Env
	if len(env) != 5 || env[0].Name != "KUBERNETES_SERVICE_HOST" || env[2].Name != "POD_NAME" || env[2].ValueFrom == nil {
		t.Errorf("service variables must come first, so the container's own win and can refer to them: %+v", env)
	}
	if got.Annotations[translate.AnnotationOwnerKind] != "Job" {
		t.Errorf("the controller kind must be on the host pod (the devcluster completes Job pods): %v", got.Annotations)
	}
	last := got.Spec.Volumes[len(got.Spec.Volumes)-1]
	if last.PersistentVolumeClaim == nil || last.PersistentVolumeClaim.ClaimName != host("api-0-scratch") {
		t.Errorf("an ephemeral volume must use the host copy of the tenant's generated claim: %+v", last)
	}
}
