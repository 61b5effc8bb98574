package charts

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	psapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"

	"github.com/spf13/pflag"

	"github.com/knest-dev/knest/pkg/knestd/options"
	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/tenant"
	"github.com/knest-dev/knest/pkg/translate"
)

// docs decodes every document of a rendered template.
func docs[T any](t *testing.T, out map[string]string, template string) []T {
	t.Helper()
	var objs []T
	for _, doc := range strings.Split(out["knest/templates/"+template], "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var obj T
		if err := yaml.UnmarshalStrict([]byte(doc), &obj); err != nil {
			t.Fatalf("%s: %v\n%s", template, err, doc)
		}
		objs = append(objs, obj)
	}
	return objs
}

func knestdStatefulSet(t *testing.T, values map[string]any) (*appsv1.StatefulSet, map[string]string) {
	t.Helper()
	out, err := render(t, values)
	if err != nil {
		t.Fatal(err)
	}
	sets := docs[appsv1.StatefulSet](t, out, "statefulset.yaml")
	if len(sets) != 1 {
		t.Fatalf("%d StatefulSets rendered, want 1", len(sets))
	}
	return &sets[0], out
}

func TestHelmLintIsClean(t *testing.T) {
	t.Parallel()
	for name, values := range map[string]map[string]any{
		"defaults": nil,
		"soft, exposed, with a policy": {
			"isolation": "soft",
			"expose":    map[string]any{"enabled": true, "hostname": "acme.example.com"},
			"policy":    map[string]any{"serviceTypes": []any{"LoadBalancer"}, "runtimeClasses": map[string]any{"allowed": []any{"gvisor"}}},
		},
		"without knestd (knest dev)": {"knestd": map[string]any{"enabled": false}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			linter := lint.AllWithKubeVersion("knest", values, "knest-acme", nil)
			for _, m := range linter.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("helm lint: %s", m)
				}
			}
		})
	}
}

func TestTheKnestdPodMeetsPodSecurityRestricted(t *testing.T) {
	t.Parallel()
	sts, _ := knestdStatefulSet(t, nil)
	ev, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	pod := sts.Spec.Template
	// The API server adds the ServiceAccount token volume; restricted
	// allows projected volumes.
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{}}})
	for _, r := range ev.EvaluatePod(psapi.LevelVersion{Level: psapi.LevelRestricted, Version: psapi.LatestVersion()}, &pod.ObjectMeta, &pod.Spec) {
		if !r.Allowed {
			t.Errorf("Pod Security restricted refuses the knestd pod: %s: %s", r.ForbiddenReason, r.ForbiddenDetail)
		}
	}
	c := pod.Spec.Containers[0]
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("the root filesystem is writable")
	}
	if psc := pod.Spec.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Error("knestd may run as root")
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			t.Errorf("no %s request", r)
		}
		if _, ok := c.Resources.Limits[r]; !ok {
			t.Errorf("no %s limit", r)
		}
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe = %+v, want /readyz", c.ReadinessProbe)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/livez" {
		t.Errorf("liveness probe = %+v, want /livez", c.LivenessProbe)
	}
	if *sts.Spec.Replicas != 1 {
		t.Errorf("replicas = %d: a second knestd would be a second cluster", *sts.Spec.Replicas)
	}
}

func TestOnlyTheKnestdPodMountsAHostToken(t *testing.T) {
	t.Parallel()
	sts, out := knestdStatefulSet(t, nil)
	pod := sts.Spec.Template.Spec
	if pod.ServiceAccountName != "knestd" || pod.AutomountServiceAccountToken == nil || !*pod.AutomountServiceAccountToken {
		t.Errorf("the knestd pod runs as %q with automount %v, want its own ServiceAccount's token", pod.ServiceAccountName, pod.AutomountServiceAccountToken)
	}
	for _, sa := range docs[corev1.ServiceAccount](t, out, "serviceaccount.yaml") {
		if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
			t.Errorf("ServiceAccount %s hands its token to every pod that uses it", sa.Name)
		}
	}
}

// TestTheKnestdArgsAreAValidConfiguration parses the container's arguments
// as knestd does and checks what they name exists: the policy file, the
// host objects of pkg/tenant, the data volume.
func TestTheKnestdArgsAreAValidConfiguration(t *testing.T) {
	t.Parallel()
	for name, values := range map[string]map[string]any{
		"hard":                  nil,
		"soft with egress":      {"isolation": "soft", "networkPolicy": map[string]any{"enabled": true, "egressCIDRs": []any{"203.0.113.0/24"}}},
		"hard, kata elsewhere":  {"policy": map[string]any{"runtimeClasses": map[string]any{"forced": "kata-qemu"}}},
		"exposed with hostname": {"expose": map[string]any{"enabled": true, "hostname": "acme.example.com"}},
		"host node info":        {"hostNodeInfo": true},
		"ingresses":             {"exposure": map[string]any{"ingressClasses": map[string]any{"web": "nginx-shared"}, "defaultIngressClass": "web", "baseDomain": "apps.corp.example"}},
		"routes":                {"exposure": map[string]any{"baseDomain": "apps.corp.example", "gateway": map[string]any{"namespace": "gateway-system", "name": "shared"}}},
		"json logs":             {"logging": map[string]any{"format": "json"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sts, out := knestdStatefulSet(t, values)
			c := sts.Spec.Template.Spec.Containers[0]
			args := slices.Clone(c.Args)
			for i := range args {
				args[i] = strings.ReplaceAll(args[i], "$(POD_IP)", "10.244.1.7")
			}
			o := options.Defaults()
			fs := pflag.NewFlagSet("knestd", pflag.ContinueOnError)
			o.AddFlags(fs)
			if err := fs.Parse(args); err != nil {
				t.Fatalf("knestd would refuse its arguments: %v", err)
			}
			wantFormat := "text"
			if l, _ := values["logging"].(map[string]any); l != nil {
				wantFormat = l["format"].(string)
			}
			if o.Logging.Format != wantFormat {
				t.Errorf("--logging-format %q, want %q", o.Logging.Format, wantFormat)
			}
			if want := values["hostNodeInfo"] == true; o.HostNodeInfo != want {
				t.Errorf("--host-node-info %v, want %v", o.HostNodeInfo, want)
			}
			if o.HostNamespace != "knest-acme" || o.HostKubeconfig != "" || o.Name != "acme" {
				t.Errorf("host namespace %q, host kubeconfig %q, name %q", o.HostNamespace, o.HostKubeconfig, o.Name)
			}
			if o.HostService != tenant.ServiceName || o.EncryptionKeySecret != tenant.EncryptionKeySecretName ||
				o.KubeconfigSecret != tenant.KubeconfigSecretName || o.KubeconfigServer != tenant.InClusterServer("knest-acme") {
				t.Errorf("host objects: service %q, key %q, kubeconfig %q at %q", o.HostService, o.EncryptionKeySecret, o.KubeconfigSecret, o.KubeconfigServer)
			}
			if !slices.Contains(o.TLSSANs, tenant.ServiceHost("knest-acme")) {
				t.Errorf("the serving certificate lacks %s: %v", tenant.ServiceHost("knest-acme"), o.TLSSANs)
			}
			if h, _ := values["expose"].(map[string]any); h != nil && !slices.Contains(o.TLSSANs, h["hostname"].(string)) {
				t.Errorf("the serving certificate lacks the exposed hostname: %v", o.TLSSANs)
			}
			mounts := map[string]string{}
			for _, m := range c.VolumeMounts {
				mounts[m.MountPath] = m.Name
			}
			if mounts[o.DataDir] != sts.Spec.VolumeClaimTemplates[0].Name {
				t.Errorf("--data-dir %s is not the claim's volume (mounts %v)", o.DataDir, mounts)
			}
			// The policy file: the ConfigMap's key under its mount.
			cms := docs[corev1.ConfigMap](t, out, "configmap.yaml")
			if len(cms) != 1 || mounts[filepath.Dir(o.PolicyFile)] != "policy" {
				t.Fatalf("--policy-file %s is not in the policy ConfigMap's volume", o.PolicyFile)
			}
			file := filepath.Join(t.TempDir(), "policy.yaml")
			if err := os.WriteFile(file, []byte(cms[0].Data[filepath.Base(o.PolicyFile)]), 0o600); err != nil {
				t.Fatal(err)
			}
			o.PolicyFile = file
			if err := o.Validate(); err != nil {
				t.Fatalf("knestd would refuse its configuration: %v", err)
			}
			p, err := o.Policy()
			if err != nil {
				t.Fatal(err)
			}
			if cidrs := values["networkPolicy"]; cidrs != nil && !slices.Contains(p.EgressCIDRs, "203.0.113.0/24") {
				t.Errorf("the policy's egress networks %v are not the NetworkPolicies'", p.EgressCIDRs)
			}
			if want := values["isolation"]; want != nil && p.Profile != policy.Profile(want.(string)) {
				t.Errorf("policy profile %q, isolation %q", p.Profile, want)
			}
			wantHosts := "*.acme.apps.example.com"
			if values["exposure"] != nil {
				wantHosts = "*.acme.apps.corp.example"
			}
			if name == "ingresses" {
				if host, ok := p.Exposure.HostIngressClass(nil); !ok || host != "nginx-shared" {
					t.Errorf("the default IngressClass maps to %q (%v), want nginx-shared", host, ok)
				}
			}
			if gw := p.Exposure.Gateway; (name == "routes") != (gw != nil) || (gw != nil && gw.String() != "gateway-system/shared") {
				t.Errorf("the policy's host Gateway is %v", gw)
			}
			if got := p.Exposure.AllowedHostnames(); !slices.Equal(got, []string{wantHosts}) {
				t.Errorf("the tenant may claim %q, want %s", got, wantHosts)
			}
		})
	}
}

// TestTheServiceAndPoliciesReachTheKnestdPod checks the selectors and ports
// of the Service and the NetworkPolicies against the pod they are for.
func TestTheServiceAndPoliciesReachTheKnestdPod(t *testing.T) {
	t.Parallel()
	sts, out := knestdStatefulSet(t, map[string]any{"expose": map[string]any{"enabled": true}})
	pod := sts.Spec.Template
	if sts.Name != tenant.StatefulSetName || pod.Spec.Containers[0].Name != tenant.ContainerName {
		t.Errorf("StatefulSet %s, container %s", sts.Name, pod.Spec.Containers[0].Name)
	}
	podLabels := labels.Set(pod.Labels)
	for k, v := range tenant.ControlPlaneLabels("acme") {
		if podLabels[k] != v {
			t.Errorf("the pod lacks label %s=%s", k, v)
		}
	}
	if !labels.SelectorFromSet(sts.Spec.Selector.MatchLabels).Matches(podLabels) {
		t.Error("the StatefulSet does not select its pod")
	}
	containerPorts := map[string]int32{}
	for _, p := range pod.Spec.Containers[0].Ports {
		containerPorts[string(p.Protocol)+"/"+p.Name] = p.ContainerPort
	}
	services := docs[corev1.Service](t, out, "service.yaml")
	if len(services) != 2 || services[0].Name != tenant.ServiceName || services[1].Name != tenant.ExternalServiceName {
		t.Fatalf("services = %d", len(services))
	}
	for _, svc := range services {
		if !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
			t.Errorf("Service %s does not select the knestd pod", svc.Name)
		}
		for _, p := range svc.Spec.Ports {
			if containerPorts[string(p.Protocol)+"/"+p.Name] != p.TargetPort.IntVal {
				t.Errorf("Service %s port %s targets %s, the container has %v", svc.Name, p.Name, p.TargetPort.String(), containerPorts)
			}
		}
	}
	if ports := services[1].Spec.Ports; len(ports) != 1 || ports[0].Name != tenant.APIPortName {
		t.Errorf("the external Service exposes %v: only the API belongs outside", ports)
	}
	found := false
	for _, np := range docs[networkingv1.NetworkPolicy](t, out, "networkpolicies.yaml") {
		if np.Name == "knest-knestd" {
			found = true
			if !labels.SelectorFromSet(np.Spec.PodSelector.MatchLabels).Matches(podLabels) {
				t.Error("NetworkPolicy knest-knestd does not select the knestd pod")
			}
		}
	}
	if !found {
		t.Error("no NetworkPolicy for knestd")
	}
}

// TestTheKnestdPodReachesOnlyWhatItNeeds reads knestd's egress rules: the
// host API server (on its ports only), DNS (port 53 only), the tenant's pods
// and the operator's apiServerEgressCIDRs, which also reach knestd's
// policy file so that its dialer allows them too.
func TestTheKnestdPodReachesOnlyWhatItNeeds(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		values map[string]any
		// apiServer are the host API server rule's blocks.
		apiServer []string
		operator  []string
	}{
		"defaults: the host API server anywhere but metadata, on its ports": {apiServer: []string{"0.0.0.0/0", "::/0"}},
		"the host API server's network and an operator network": {
			values:    map[string]any{"networkPolicy": map[string]any{"enabled": true, "hostAPIServerCIDR": "192.0.2.0/28", "apiServerEgressCIDRs": []any{"198.51.100.0/28"}}},
			apiServer: []string{"192.0.2.0/28"}, operator: []string{"198.51.100.0/28"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			out, err := render(t, tc.values)
			if err != nil {
				t.Fatal(err)
			}
			var np *networkingv1.NetworkPolicy
			for _, p := range docs[networkingv1.NetworkPolicy](t, out, "networkpolicies.yaml") {
				if p.Name == "knest-knestd" {
					np = &p
				}
			}
			if np == nil {
				t.Fatal("no NetworkPolicy for knestd")
			}
			var apiServer, operator []string
			dns, tenantPods := false, false
			for _, r := range np.Spec.Egress {
				var ports []string
				for _, p := range r.Ports {
					ports = append(ports, string(*p.Protocol)+"/"+p.Port.String())
				}
				switch {
				case len(r.To) == 0:
					if !slices.Equal(ports, []string{"UDP/53", "TCP/53"}) {
						t.Errorf("a rule reaches every address on %v, want only DNS", ports)
					}
					dns = true
				case len(ports) > 0:
					if !slices.Equal(ports, []string{"TCP/443", "TCP/6443"}) {
						t.Errorf("the host API server rule allows %v, want its ports", ports)
					}
					for _, peer := range r.To {
						apiServer = append(apiServer, peer.IPBlock.CIDR)
						if peer.IPBlock.CIDR == "0.0.0.0/0" && !slices.Contains(peer.IPBlock.Except, "169.254.0.0/16") {
							t.Errorf("the host API server rule reaches the metadata network: %+v", peer.IPBlock)
						}
					}
				default:
					for _, peer := range r.To {
						switch {
						case peer.PodSelector != nil && labels.SelectorFromSet(peer.PodSelector.MatchLabels).Matches(labels.Set{translate.LabelTenant: "acme"}):
							tenantPods = true
						case peer.IPBlock != nil && len(peer.IPBlock.Except) == 0:
							operator = append(operator, peer.IPBlock.CIDR)
						default:
							t.Errorf("knestd reaches %+v on every port", peer)
						}
					}
				}
			}
			if !slices.Equal(apiServer, tc.apiServer) || !slices.Equal(operator, tc.operator) || !dns || !tenantPods {
				t.Errorf("knestd reaches the host API server at %v, operator networks %v, DNS %v, tenant pods %v; want %v, %v, true, true",
					apiServer, operator, dns, tenantPods, tc.apiServer, tc.operator)
			}
			cms := docs[corev1.ConfigMap](t, out, "configmap.yaml")
			var p policy.Policy
			if err := yaml.UnmarshalStrict([]byte(cms[0].Data["policy.yaml"]), &p); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(p.APIServerEgressCIDRs, tc.operator) {
				t.Errorf("the policy file's apiServerEgressCIDRs %v are not the NetworkPolicy's %v", p.APIServerEgressCIDRs, tc.operator)
			}
		})
	}
}
