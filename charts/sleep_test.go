package charts

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	supervisor "github.com/knest-dev/knest/cmd/knest-supervisor/app"
	"github.com/knest-dev/knest/pkg/knestd/options"
)

var sleepValues = map[string]any{"sleep": map[string]any{"enabled": true, "after": "10m", "wakeTimeout": "2m", "healthPort": 8444}}

func TestSleepRunsKnestdBehindTheSupervisorWithTheSameFlags(t *testing.T) {
	t.Parallel()
	plain, _ := knestdStatefulSet(t, nil)
	sts, out := knestdStatefulSet(t, sleepValues)
	c := sts.Spec.Template.Spec.Containers[0]
	if !slices.Equal(c.Command, []string{"/usr/local/bin/knest-supervisor"}) || c.Image != plain.Spec.Template.Spec.Containers[0].Image {
		t.Fatalf("command %v, image %s: want knest-supervisor from knestd's image", c.Command, c.Image)
	}
	// The supervisor accepts its command line, as its own parser reads it.
	o, err := supervisor.Parse(c.Args)
	if err != nil {
		t.Fatalf("knest-supervisor would refuse its arguments %v: %v", c.Args, err)
	}
	if o.WakeTimeout != 2*time.Minute || o.HealthAddress != ":8444" {
		t.Errorf("wake timeout %s, health address %q", o.WakeTimeout, o.HealthAddress)
	}
	// knestd gets the flags it gets without sleep, and --sleep-after.
	want := append(slices.Clone(plain.Spec.Template.Spec.Containers[0].Args), "--sleep-after=10m")
	if !slices.Equal(o.KnestdArgs, want) {
		t.Errorf("knestd's flags behind the supervisor:\n%v\nwant:\n%v", o.KnestdArgs, want)
	}
	// ... which knestd accepts with the port the supervisor adds.
	ko := options.Defaults()
	fs := pflag.NewFlagSet("knestd", pflag.ContinueOnError)
	ko.AddFlags(fs)
	args := append(slices.Clone(o.KnestdArgs), "--secure-port", "40001", "--supervisor-port", "6443")
	for i := range args {
		args[i] = strings.ReplaceAll(args[i], "$(POD_IP)", "10.244.1.7")
	}
	if err := fs.Parse(args); err != nil {
		t.Fatalf("knestd would refuse its arguments: %v", err)
	}
	if ko.SleepAfter != 10*time.Minute {
		t.Errorf("knestd --sleep-after %s, want 10m", ko.SleepAfter)
	}

	// Probes go to the supervisor's health port over plain HTTP, never to
	// the API port, where a connection wakes the tenant.
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["health"] != 8444 || ports["https"] != 6443 {
		t.Errorf("container ports %v, want health 8444 beside https 6443", ports)
	}
	if c.StartupProbe != nil {
		t.Errorf("a startup probe %+v: the supervisor's /livez bounds the start itself", c.StartupProbe)
	}
	for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s probe %+v, want an HTTP GET", name, p)
			continue
		}
		g := p.HTTPGet
		if g.Port != intstr.FromString("health") || g.Scheme != "" && g.Scheme != corev1.URISchemeHTTP {
			t.Errorf("%s probe on port %s scheme %s, want the health port over HTTP", name, g.Port.String(), g.Scheme)
		}
		if wantPath := map[string]string{"liveness": "/livez", "readiness": "/readyz"}[name]; g.Path != wantPath {
			t.Errorf("%s probe path %s, want %s", name, g.Path, wantPath)
		}
	}

	// The NetworkPolicy lets the kubelet reach the health port.
	out, err = render(t, map[string]any{"sleep": sleepValues["sleep"], "networkPolicy": map[string]any{"enabled": true}})
	if err != nil {
		t.Fatal(err)
	}
	var open []int32
	for _, np := range docsOfKind[networkingv1.NetworkPolicy](t, out, "networkpolicies.yaml", "NetworkPolicy") {
		if np.Name != "knest-knestd" {
			continue
		}
		for _, r := range np.Spec.Ingress {
			if len(r.From) == 0 {
				for _, p := range r.Ports {
					open = append(open, p.Port.IntVal)
				}
			}
		}
	}
	if !slices.Contains(open, 8444) || !slices.Contains(open, 6443) {
		t.Errorf("ports open to all in knest-knestd: %v, want the API port and the health port", open)
	}
}

func TestWithoutSleepKnestdRunsAsBefore(t *testing.T) {
	t.Parallel()
	sts, _ := knestdStatefulSet(t, nil)
	c := sts.Spec.Template.Spec.Containers[0]
	if len(c.Command) != 0 || slices.ContainsFunc(c.Args, func(a string) bool { return a == "--" || strings.HasPrefix(a, "--sleep-after") }) {
		t.Errorf("without sleep: command %v, args %v; want knestd as the entrypoint, no sleep", c.Command, c.Args)
	}
	for _, p := range []*corev1.Probe{c.StartupProbe, c.LivenessProbe, c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Port != intstr.FromString("https") || p.HTTPGet.Scheme != corev1.URISchemeHTTPS {
			t.Errorf("without sleep, a probe is %+v: want knestd's own on the API port", p)
		}
	}
}

func TestTheSchemaRejectsBadSleepValues(t *testing.T) {
	t.Parallel()
	for name, s := range map[string]map[string]any{
		"a wake timeout of zero":     {"wakeTimeout": "0s"},
		"a duration without a unit":  {"after": "15"},
		"an unknown key":             {"afer": "15m"},
		"a health port out of range": {"healthPort": 70000},
	} {
		v := map[string]any{"enabled": true}
		for k, x := range s {
			v[k] = x
		}
		if _, err := render(t, map[string]any{"sleep": v}); err == nil {
			t.Errorf("%s: the schema accepts sleep %v", name, v)
		}
	}
	if _, err := render(t, map[string]any{"sleep": map[string]any{"enabled": true, "after": "0"}}); err != nil {
		t.Errorf("sleep only on request (after 0): %v", err)
	}
}

func TestGlobalImageRegistryReplacesTheRegistryOfKnestdsImage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ registry, repository, want string }{
		{"", "ghcr.io/knest-dev/knestd", "ghcr.io/knest-dev/knestd:v0.1.0"},
		{"registry.example.com", "ghcr.io/knest-dev/knestd", "registry.example.com/knest-dev/knestd:v0.1.0"},
		{"mirror.example.com:5000/ghcr/", "ghcr.io/knest-dev/knestd", "mirror.example.com:5000/ghcr/knest-dev/knestd:v0.1.0"},
		{"registry.example.com", "localhost/knestd", "registry.example.com/knestd:v0.1.0"},
		// A Docker Hub name has no registry part: it is kept whole.
		{"registry.example.com", "knest/knestd", "registry.example.com/knest/knestd:v0.1.0"},
	} {
		values := map[string]any{"knestd": map[string]any{"image": map[string]any{"repository": tt.repository}}}
		if tt.registry != "" {
			values["global"] = map[string]any{"imageRegistry": tt.registry}
		}
		sts, _ := knestdStatefulSet(t, values)
		if got := sts.Spec.Template.Spec.Containers[0].Image; got != tt.want {
			t.Errorf("global.imageRegistry %q, repository %s: image %s, want %s", tt.registry, tt.repository, got, tt.want)
		}
	}
}
