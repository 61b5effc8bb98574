package charts

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// The operator's values: metrics, image pull secrets, the knestd pod's
// annotations and labels, the usual labels, and Helm's global values.

func TestMetricsAreOffByDefault(t *testing.T) {
	t.Parallel()
	sts, out := knestdStatefulSet(t, nil)
	if _, ok := out["knest/templates/metrics.yaml"]; ok && strings.TrimSpace(out["knest/templates/metrics.yaml"]) != "" {
		t.Errorf("metrics.yaml renders with metrics off:\n%s", out["knest/templates/metrics.yaml"])
	}
	for _, a := range sts.Spec.Template.Spec.Containers[0].Args {
		if strings.HasPrefix(a, "--syncer-metrics-address") {
			t.Errorf("knestd serves metrics with metrics off: %s", a)
		}
	}
}

func TestMetricsAreServedToTheMonitoringNamespaceOnly(t *testing.T) {
	t.Parallel()
	values := map[string]any{"metrics": map[string]any{"enabled": true, "port": 9102, "monitoringNamespace": "observability",
		"serviceMonitor": map[string]any{"enabled": true, "interval": "15s", "labels": map[string]any{"release": "prometheus"}}}}
	sts, out := knestdStatefulSet(t, values)
	c := sts.Spec.Template.Spec.Containers[0]
	if !slices.Contains(c.Args, "--syncer-metrics-address=:9102") {
		t.Errorf("knestd args %v lack --syncer-metrics-address=:9102", c.Args)
	}
	if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "metrics" && p.ContainerPort == 9102 }) {
		t.Errorf("no container port metrics 9102: %v", c.Ports)
	}
	podLabels := labels.Set(sts.Spec.Template.Labels)

	var svc *corev1.Service
	for _, s := range docsOfKind[corev1.Service](t, out, "metrics.yaml", "Service") {
		if s.Name == "knestd-metrics" {
			svc = &s
		}
	}
	if svc == nil {
		t.Fatal("no Service knestd-metrics")
	}
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) || len(svc.Spec.Ports) != 1 ||
		svc.Spec.Ports[0].Port != 9102 || svc.Spec.Ports[0].TargetPort.StrVal != "metrics" {
		t.Errorf("knestd-metrics does not reach the metrics port of the knestd pod: %+v", svc.Spec)
	}

	var np *networkingv1.NetworkPolicy
	for _, p := range docsOfKind[networkingv1.NetworkPolicy](t, out, "metrics.yaml", "NetworkPolicy") {
		np = &p
	}
	if np == nil {
		t.Fatal("no NetworkPolicy for the metrics port")
	}
	if !labels.SelectorFromSet(np.Spec.PodSelector.MatchLabels).Matches(podLabels) {
		t.Errorf("the metrics NetworkPolicy does not select the knestd pod: %v", np.Spec.PodSelector)
	}
	want := []networkingv1.NetworkPolicyIngressRule{{
		From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "observability"}}}},
		Ports: []networkingv1.NetworkPolicyPort{{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(9102))}},
	}}
	if diff := cmp.Diff(want, np.Spec.Ingress); diff != "" {
		t.Errorf("metrics ingress (-want +got):\n%s", diff)
	}

	var sm map[string]any
	for _, doc := range strings.Split(out["knest/templates/metrics.yaml"], "\n---\n") {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatal(err)
		}
		if obj["kind"] == "ServiceMonitor" {
			sm = obj
		}
	}
	if sm == nil {
		t.Fatal("no ServiceMonitor with serviceMonitor.enabled")
	}
	meta := sm["metadata"].(map[string]any)
	if meta["labels"].(map[string]any)["release"] != "prometheus" {
		t.Errorf("ServiceMonitor labels %v lack release=prometheus", meta["labels"])
	}
	spec := sm["spec"].(map[string]any)
	smSel := map[string]string{}
	for k, v := range spec["selector"].(map[string]any)["matchLabels"].(map[string]any) {
		smSel[k] = v.(string)
	}
	if !labels.SelectorFromSet(smSel).Matches(labels.Set(svc.Labels)) {
		t.Errorf("the ServiceMonitor's selector %v does not match knestd-metrics %v", smSel, svc.Labels)
	}
	ep := spec["endpoints"].([]any)[0].(map[string]any)
	if ep["port"] != "metrics" || ep["interval"] != "15s" {
		t.Errorf("ServiceMonitor endpoint %v, want port metrics every 15s", ep)
	}

	// Without the ServiceMonitor CRD: no ServiceMonitor unless asked for.
	values["metrics"].(map[string]any)["serviceMonitor"] = map[string]any{"enabled": false}
	_, out = knestdStatefulSet(t, values)
	if strings.Contains(out["knest/templates/metrics.yaml"], "ServiceMonitor") {
		t.Error("a ServiceMonitor renders with serviceMonitor.enabled false")
	}
}

func TestImagePullSecretsReachTheKnestdPod(t *testing.T) {
	t.Parallel()
	sts, _ := knestdStatefulSet(t, map[string]any{"imagePullSecrets": []any{map[string]any{"name": "registry-credentials"}}})
	want := []corev1.LocalObjectReference{{Name: "registry-credentials"}}
	if diff := cmp.Diff(want, sts.Spec.Template.Spec.ImagePullSecrets); diff != "" {
		t.Errorf("imagePullSecrets (-want +got):\n%s", diff)
	}
	sts, _ = knestdStatefulSet(t, nil)
	if len(sts.Spec.Template.Spec.ImagePullSecrets) != 0 {
		t.Errorf("imagePullSecrets by default: %v", sts.Spec.Template.Spec.ImagePullSecrets)
	}
}

func TestPodAnnotationsAndLabelsAreOnTheKnestdPodOnly(t *testing.T) {
	t.Parallel()
	values := map[string]any{
		"podAnnotations": map[string]any{"example.com/team": "platform", "checksum/policy": "mine"},
		"podLabels":      map[string]any{"cost-center": "c42"},
	}
	sts, out := knestdStatefulSet(t, values)
	tmpl := sts.Spec.Template
	if tmpl.Annotations["example.com/team"] != "platform" || tmpl.Labels["cost-center"] != "c42" {
		t.Errorf("pod annotations %v, labels %v", tmpl.Annotations, tmpl.Labels)
	}
	// The chart's own annotation is not the operator's to replace.
	if tmpl.Annotations["checksum/policy"] == "mine" {
		t.Error("podAnnotations replaced checksum/policy")
	}
	if !labels.SelectorFromSet(sts.Spec.Selector.MatchLabels).Matches(labels.Set(tmpl.Labels)) {
		t.Errorf("the StatefulSet's selector %v no longer matches its pods %v", sts.Spec.Selector.MatchLabels, tmpl.Labels)
	}
	for name, text := range out {
		if strings.Contains(text, "cost-center") && !strings.HasSuffix(name, "statefulset.yaml") {
			t.Errorf("%s carries the pod label", name)
		}
	}
	if sts.Labels["cost-center"] != "" {
		t.Error("the StatefulSet itself carries the pod label")
	}
	for _, reserved := range []string{"knest.io/component", "app.kubernetes.io/name", "helm.sh/chart"} {
		if _, err := render(t, map[string]any{"podLabels": map[string]any{reserved: "x"}}); err == nil || !strings.Contains(err.Error(), "invalid propertyName '"+reserved+"'") {
			t.Errorf("podLabels %s: error %v, want the schema's refusal", reserved, err)
		}
	}
}

func TestEveryObjectCarriesTheUsualLabels(t *testing.T) {
	t.Parallel()
	out, err := render(t, map[string]any{"metrics": map[string]any{"enabled": true, "port": 8080, "monitoringNamespace": "monitoring"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"helm.sh/chart": "knest-0.1.0", "app.kubernetes.io/name": "knest", "app.kubernetes.io/instance": "acme",
		"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/part-of": "knest",
	}
	n := 0
	for name, text := range out {
		if !strings.HasSuffix(name, ".yaml") {
			continue
		}
		for _, doc := range strings.Split(text, "\n---\n") {
			var obj struct {
				Kind     string `json:"kind"`
				Metadata struct {
					Name   string            `json:"name"`
					Labels map[string]string `json:"labels"`
				} `json:"metadata"`
			}
			if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
				t.Fatal(err)
			}
			if obj.Kind == "" {
				continue
			}
			n++
			for k, v := range want {
				if obj.Metadata.Labels[k] != v {
					t.Errorf("%s %s: label %s=%q, want %q", obj.Kind, obj.Metadata.Name, k, obj.Metadata.Labels[k], v)
				}
			}
			// knest's version (the chart's appVersion), not Kubernetes'.
			if v := obj.Metadata.Labels["app.kubernetes.io/version"]; v != "v0.1.0" {
				t.Errorf("%s %s: app.kubernetes.io/version %q, want knest's v0.1.0", obj.Kind, obj.Metadata.Name, v)
			}
		}
	}
	if n < 10 {
		t.Errorf("checked %d objects only", n)
	}
}

// TestTheChartWorksAsASubchart installs it as a parent chart's dependency,
// as Helm does: the parent's global values reach it, and its schema must
// accept them.
func TestTheChartWorksAsASubchart(t *testing.T) {
	t.Parallel()
	knest, err := Knest()
	if err != nil {
		t.Fatal(err)
	}
	parent := &chart.Chart{Metadata: &chart.Metadata{APIVersion: "v2", Name: "platform", Version: "1.0.0"}}
	parent.AddDependency(knest)
	values := map[string]any{
		"global": map[string]any{"imageRegistry": "registry.example.com"},
		"knest":  map[string]any{"tenant": "acme"},
	}
	vals, err := chartutil.ToRenderValues(parent, values, chartutil.ReleaseOptions{Name: "platform", Namespace: "knest-acme", IsInstall: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := chartutil.ValidateAgainstSchema(parent, vals["Values"].(chartutil.Values)); err != nil {
		t.Fatalf("the schema refuses the chart as a subchart: %v", err)
	}
	out, err := engine.Render(parent, vals)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out["platform/charts/knest/templates/statefulset.yaml"], "--name=acme") {
		t.Error("the subchart's StatefulSet does not run tenant acme")
	}
}

// docsOfKind decodes the documents of one kind from a rendered template
// that holds several.
func docsOfKind[T any](t *testing.T, out map[string]string, template, kind string) []T {
	t.Helper()
	var objs []T
	for _, doc := range strings.Split(out["knest/templates/"+template], "\n---\n") {
		var meta struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatal(err)
		}
		if meta.Kind != kind {
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
