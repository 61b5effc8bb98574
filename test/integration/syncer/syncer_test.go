package syncer

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/pkg/devenv"
	"github.com/knest-dev/knest/pkg/pki"
	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/translate"
	"github.com/knest-dev/knest/test/integration/framework"
)

const (
	tenantName    = "it"
	hostNamespace = "knest-it"
	readyTimeout  = 90 * time.Second
	// syncWithin is how fast a change must reach the other side.
	syncWithin = time.Second
)

type env struct {
	// mu guards tenant where a test restarts knestd under running clients.
	mu  sync.Mutex
	dev *devenv.Env
	it  *devenv.TenantEnv
	// hostDir is the devcluster's data directory, tenantDir knestd's,
	// identity the kubeconfig of the tenant's namespaced host identity.
	hostDir, tenantDir, identity string
	host, tenant                 kubernetes.Interface
	knestd                       *devenv.Child
	metrics                      string
	// knestdArgs are extra knestd flags, after (so over) devenv.Up's own.
	knestdArgs []string
}

// setUp starts a devcluster and the tenant the way knest dev up does
// (devenv.Up): its namespaced host identity, never host admin, and knestd
// syncing with it.
func setUp(t *testing.T, knestdArgs ...string) *env {
	t.Helper()
	e := setUpHost(t, devenv.DefaultHost(), nil)
	e.knestdArgs = knestdArgs
	e.startKnestd(t)
	return e
}

// setUpHost starts a devcluster sized by host and prepares the tenant
// (devenv.Up with the tenant deferred): its host namespace, the chart's
// policy part with values over the tests' own, and its namespaced host
// identity; it starts no knestd.
func setUpHost(t *testing.T, host devenv.HostOptions, values map[string]any) *env {
	t.Helper()
	// The chart's policy part, as knest dev installs it: the same chart CI
	// tests everywhere. Without its quota: some tests run hundreds of pods,
	// which the default quota (rightly) refuses. Without pool nodes: these
	// tests hold the model in which the host identity has no access to Nodes
	// at all and a virtual Node exists only while pods are bound to it; the
	// default, pool nodes, is tested by the e2e suite (devcluster and kind)
	// and the syncer's in-process suite.
	chartValues := map[string]any{"quota": map[string]any{"enabled": false}, "poolNodes": false}
	maps.Copy(chartValues, values)
	dev, err := devenv.Up(t.Context(), devenv.Options{
		Dir: t.TempDir(), KnestDev: framework.KnestDevPath(), Knestd: framework.KnestdPath(), Host: host,
		Tenants: []devenv.TenantOptions{{Tenant: devenv.Tenant{Name: tenantName, Profile: policy.DefaultProfile}, Values: chartValues, Deferred: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := dev.Stop(); err != nil {
			t.Error(err)
		}
	})
	framework.TailOnFailure(t, dev.Layout.Log("host"), dev.Layout.Log("tenant-"+tenantName))
	e := &env{dev: dev, it: dev.Tenant(tenantName), hostDir: dev.Layout.HostDir(), tenantDir: dev.Layout.TenantDir(tenantName),
		identity: dev.Layout.TenantHostKubeconfig(tenantName)}
	e.host = framework.Client(t, framework.AdminConfig(t, dev.Layout.HostKubeconfig()))
	return e
}

// startKnestd starts the tenant's knestd, as devenv.Up would, with the
// syncer's metrics on a free port and e.knestdArgs.
func (e *env) startKnestd(t *testing.T) {
	t.Helper()
	e.metrics = fmt.Sprintf("127.0.0.1:%d", framework.FreePort(t))
	if err := e.dev.StartKnestd(t.Context(), e.it, append([]string{"--syncer-metrics-address=" + e.metrics}, e.knestdArgs...)...); err != nil {
		t.Fatal(err)
	}
	e.knestd = e.it.Knestd
	e.tenant = framework.Client(t, framework.AdminConfig(t, e.kubeconfig()))
}

// stopKnestd stops the tenant's knestd with SIGTERM.
func (e *env) stopKnestd(t *testing.T) {
	t.Helper()
	if err := e.knestd.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// kubeconfig is the tenant's admin kubeconfig.
func (e *env) kubeconfig() string { return e.dev.Layout.TenantKubeconfig(tenantName) }

// knestdOutput is what the tenant's knestd processes logged so far.
func (e *env) knestdOutput(t *testing.T) string {
	t.Helper()
	out, err := os.ReadFile(e.knestd.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// internalClient is a tenant client with knestd's own identity
// (pki.InternalUser), which the tenant's admission plugins exempt.
func (e *env) internalClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	cfg := rest.CopyConfig(framework.AdminConfig(t, e.kubeconfig()))
	files := pki.FilesIn(filepath.Join(e.tenantDir, "pki"))
	cfg.TLSClientConfig = rest.TLSClientConfig{CAFile: files.CACert, CertFile: files.InternalCert, KeyFile: files.InternalKey}
	cfg.CAData, cfg.CertData, cfg.KeyData = nil, nil, nil
	return framework.Client(t, cfg)
}

func hostName(ns, name string) string {
	return translate.HostName(tenantName, ns, name, translate.MaxSubdomainLength)
}

func podUsing(name string, configMaps, secrets []string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{
		// Pod Security restricted, as the default hard profile requires.
		SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65534)},
		Containers:      []corev1.Container{{Name: "c", Image: "busybox"}},
	}}
	for _, cm := range configMaps {
		p.Spec.Containers[0].EnvFrom = append(p.Spec.Containers[0].EnvFrom, corev1.EnvFromSource{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: cm}}})
	}
	for _, s := range secrets {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: s, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: s}}})
	}
	return p
}

// within polls cond every 20 ms and fails the test unless it holds within d.
func within(t *testing.T, d time.Duration, what string, cond func(ctx context.Context) (bool, error)) time.Duration {
	t.Helper()
	start := time.Now()
	err := wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, d, true, cond)
	if err != nil {
		t.Fatalf("%s: not within %s: %v", what, d, err)
	}
	return time.Since(start)
}

func hostConfigMap(e *env, ns, name string) func(context.Context) (*corev1.ConfigMap, error) {
	return func(ctx context.Context) (*corev1.ConfigMap, error) {
		return e.host.CoreV1().ConfigMaps(hostNamespace).Get(ctx, hostName(ns, name), metav1.GetOptions{})
	}
}

func TestIntegrationSyncer(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := setUp(t)
	ctx := t.Context()
	const ns = "default"
	mustCreate := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := e.tenant.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "app"}, Data: map[string]string{"k": "v1"}}, metav1.CreateOptions{})
	mustCreate(err)
	_, err = e.tenant.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "unused"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{})
	mustCreate(err)
	_, err = e.tenant.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db"}, StringData: map[string]string{"pw": "s3cret"}}, metav1.CreateOptions{})
	mustCreate(err)
	_, err = e.tenant.CoreV1().Pods(ns).Create(ctx, podUsing("app", []string{"app"}, []string{"db"}), metav1.CreateOptions{})
	mustCreate(err)

	t.Run("referenced objects reach the host within a second, the rest never", func(t *testing.T) {
		took := within(t, syncWithin, "host copies of app and db", func(ctx context.Context) (bool, error) {
			cm, err := hostConfigMap(e, ns, "app")(ctx)
			if err != nil {
				return false, nil
			}
			s, err := e.host.CoreV1().Secrets(hostNamespace).Get(ctx, hostName(ns, "db"), metav1.GetOptions{})
			return err == nil && cm.Data["k"] == "v1" && string(s.Data["pw"]) == "s3cret", nil
		})
		t.Logf("copies appeared %s after the pod was created", took)
		cm, _ := hostConfigMap(e, ns, "app")(ctx)
		if cm.Labels[translate.LabelTenant] != tenantName || cm.Annotations[translate.AnnotationName] != "app" || cm.Annotations[translate.AnnotationKind] != "ConfigMap" {
			t.Errorf("host copy lacks the marker and identity: labels %v annotations %v", cm.Labels, cm.Annotations)
		}
		time.Sleep(500 * time.Millisecond)
		if _, err := hostConfigMap(e, ns, "unused")(ctx); !apierrors.IsNotFound(err) {
			t.Errorf("an unreferenced ConfigMap is on the host (err %v)", err)
		}
	})

	t.Run("host events about a copy appear on the tenant object, others never", func(t *testing.T) {
		hostEvent := func(name, involved, reason string) *corev1.Event {
			return &corev1.Event{
				ObjectMeta:     metav1.ObjectMeta{Name: name, Namespace: hostNamespace},
				InvolvedObject: corev1.ObjectReference{Kind: "ConfigMap", APIVersion: "v1", Namespace: hostNamespace, Name: involved},
				Type:           corev1.EventTypeWarning, Reason: reason, Message: "seen on the host", Count: 1,
				FirstTimestamp: metav1.Now(), LastTimestamp: metav1.Now(),
				Source: corev1.EventSource{Component: "host-test", Host: "host-node-1"},
			}
		}
		_, err := e.host.CoreV1().Events(hostNamespace).Create(ctx, hostEvent("ours.1", hostName(ns, "app"), "HostSaysHello"), metav1.CreateOptions{})
		mustCreate(err)
		_, err = e.host.CoreV1().Events(hostNamespace).Create(ctx, hostEvent("theirs.1", "operator-config", "NotForTenants"), metav1.CreateOptions{})
		mustCreate(err)
		within(t, syncWithin, "the host event on the tenant ConfigMap", func(ctx context.Context) (bool, error) {
			evs, err := e.tenant.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("involvedObject.name", "app").String()})
			if err != nil {
				return false, nil
			}
			for _, ev := range evs.Items {
				if ev.Reason == "HostSaysHello" {
					if ev.Source.Host != "" {
						t.Errorf("the copied event names a host node: %q", ev.Source.Host)
					}
					return ev.InvolvedObject.Kind == "ConfigMap" && ev.Message == "seen on the host", nil
				}
			}
			return false, nil
		})
		all, err := e.tenant.CoreV1().Events("").List(ctx, metav1.ListOptions{})
		mustCreate(err)
		for _, ev := range all.Items {
			if ev.Reason == "NotForTenants" {
				t.Errorf("a host event about an object that is not ours reached the tenant: %s/%s", ev.Namespace, ev.Name)
			}
		}
	})

	t.Run("a tenant update reaches the host within a second", func(t *testing.T) {
		cm, err := e.tenant.CoreV1().ConfigMaps(ns).Get(ctx, "app", metav1.GetOptions{})
		mustCreate(err)
		cm.Data["k"] = "v2"
		_, err = e.tenant.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{})
		mustCreate(err)
		within(t, syncWithin, "updated host copy", func(ctx context.Context) (bool, error) {
			h, err := hostConfigMap(e, ns, "app")(ctx)
			return err == nil && h.Data["k"] == "v2", nil
		})
	})

	t.Run("a host copy edited or deleted behind the syncer's back is restored", func(t *testing.T) {
		h, err := hostConfigMap(e, ns, "app")(ctx)
		mustCreate(err)
		h.Data["k"] = "tampered"
		_, err = e.host.CoreV1().ConfigMaps(hostNamespace).Update(ctx, h, metav1.UpdateOptions{})
		mustCreate(err)
		within(t, syncWithin, "edited host copy restored", func(ctx context.Context) (bool, error) {
			h, err := hostConfigMap(e, ns, "app")(ctx)
			return err == nil && h.Data["k"] == "v2", nil
		})
		mustCreate(e.host.CoreV1().Secrets(hostNamespace).Delete(ctx, hostName(ns, "db"), metav1.DeleteOptions{}))
		within(t, syncWithin, "deleted host copy recreated", func(ctx context.Context) (bool, error) {
			_, err := e.host.CoreV1().Secrets(hostNamespace).Get(ctx, hostName(ns, "db"), metav1.GetOptions{})
			return err == nil, nil
		})
	})

	t.Run("an unrelated host object with the same name is left alone and the tenant is told", func(t *testing.T) {
		intruder := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: hostName(ns, "clash"), Namespace: hostNamespace}, Data: map[string]string{"owner": "operator"}}
		_, err := e.host.CoreV1().ConfigMaps(hostNamespace).Create(ctx, intruder, metav1.CreateOptions{})
		mustCreate(err)
		_, err = e.tenant.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "clash"}, Data: map[string]string{"owner": "tenant"}}, metav1.CreateOptions{})
		mustCreate(err)
		_, err = e.tenant.CoreV1().Pods(ns).Create(ctx, podUsing("clasher", []string{"clash"}, nil), metav1.CreateOptions{})
		mustCreate(err)
		within(t, 5*time.Second, "a HostNameConflict event on the tenant ConfigMap", func(ctx context.Context) (bool, error) {
			evs, err := e.tenant.EventsV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("regarding.name", "clash").String()})
			if err != nil {
				return false, nil
			}
			for _, ev := range evs.Items {
				if ev.Reason == "HostNameConflict" && ev.Type == corev1.EventTypeWarning {
					return true, nil
				}
			}
			return false, nil
		})
		h, err := hostConfigMap(e, ns, "clash")(ctx)
		mustCreate(err)
		if h.Data["owner"] != "operator" || len(h.Labels) != 0 {
			t.Errorf("the unrelated host object was modified: data %v labels %v", h.Data, h.Labels)
		}
	})

	t.Run("an object no pod references any more leaves the host", func(t *testing.T) {
		mustCreate(e.tenant.CoreV1().Pods(ns).Delete(ctx, "clasher", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}))
		mustCreate(e.tenant.CoreV1().Pods(ns).Delete(ctx, "app", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}))
		within(t, syncWithin, "host copies removed", func(ctx context.Context) (bool, error) {
			_, err1 := hostConfigMap(e, ns, "app")(ctx)
			_, err2 := e.host.CoreV1().Secrets(hostNamespace).Get(ctx, hostName(ns, "db"), metav1.GetOptions{})
			return apierrors.IsNotFound(err1) && apierrors.IsNotFound(err2), nil
		})
		if _, err := hostConfigMap(e, ns, "clash")(ctx); err != nil {
			t.Errorf("the unrelated host object was deleted: %v", err)
		}
	})

	t.Run("a tenant Service carries its host Service's ClusterIP", func(t *testing.T) {
		created, err := e.tenant.CoreV1().Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
		}, metav1.CreateOptions{})
		mustCreate(err)
		hostSvc, err := e.host.CoreV1().Services(hostNamespace).Get(ctx, translate.HostName(tenantName, ns, "web", translate.MaxLabelLength), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the host Service must exist as soon as the tenant create returns: %v", err)
		}
		if created.Spec.ClusterIP == "" || created.Spec.ClusterIP != hostSvc.Spec.ClusterIP {
			t.Errorf("tenant ClusterIP %q, host ClusterIP %q: want the same", created.Spec.ClusterIP, hostSvc.Spec.ClusterIP)
		}
		wantSelector := map[string]string{translate.TenantKey("app"): "web", translate.LabelTenant: tenantName, translate.LabelNamespace: ns}
		if !reflect.DeepEqual(hostSvc.Spec.Selector, wantSelector) {
			t.Errorf("host selector %v, want %v", hostSvc.Spec.Selector, wantSelector)
		}
		within(t, syncWithin, "the host Service adopted (tenant UID recorded)", func(ctx context.Context) (bool, error) {
			h, err := e.host.CoreV1().Services(hostNamespace).Get(ctx, hostSvc.Name, metav1.GetOptions{})
			return err == nil && h.Annotations[translate.AnnotationUID] == string(created.UID), nil
		})
		for _, bad := range []struct {
			svc  corev1.Service
			want string
		}{
			{svc: corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "np"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80}}}}, want: "NodePort"},
			{svc: corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "lb"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}}}}, want: "LoadBalancer"},
			{svc: corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "ext"}, Spec: corev1.ServiceSpec{ExternalIPs: []string{"192.0.2.1"}, Ports: []corev1.ServicePort{{Port: 80}}}}, want: "spec.externalIPs"},
			{svc: corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "pinned"}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.9.9", Ports: []corev1.ServicePort{{Port: 80}}}}, want: "spec.clusterIP 10.96.9.9 cannot be chosen"},
		} {
			_, err := e.tenant.CoreV1().Services(ns).Create(ctx, &bad.svc, metav1.CreateOptions{})
			if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), bad.want) {
				t.Errorf("creating Service %s: err = %v, want Forbidden naming %q", bad.svc.Name, err, bad.want)
			}
			if _, err := e.host.CoreV1().Services(hostNamespace).Get(ctx, translate.HostName(tenantName, ns, bad.svc.Name, translate.MaxLabelLength), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("refused Service %s has a host copy (err %v)", bad.svc.Name, err)
			}
		}
		_, err = e.tenant.NetworkingV1().ServiceCIDRs().Create(ctx, &networkingv1.ServiceCIDR{
			ObjectMeta: metav1.ObjectMeta{Name: "mine"}, Spec: networkingv1.ServiceCIDRSpec{CIDRs: []string{"192.168.0.0/24"}},
		}, metav1.CreateOptions{})
		if !apierrors.IsForbidden(err) {
			t.Errorf("a tenant admin creating a ServiceCIDR: err = %v, want Forbidden", err)
		}
		mustCreate(e.tenant.CoreV1().Services(ns).Delete(ctx, "web", metav1.DeleteOptions{}))
		within(t, syncWithin, "host Service removed", func(ctx context.Context) (bool, error) {
			_, err := e.host.CoreV1().Services(hostNamespace).Get(ctx, hostSvc.Name, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
		if _, err := e.host.CoreV1().Services(hostNamespace).Get(ctx, translate.HostName(tenantName, "default", "kubernetes", translate.MaxLabelLength), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the tenant's own kubernetes Service must not get a host copy (err %v)", err)
		}
	})

	t.Run("EndpointSlices of selector-less Services reach the host only with the tenant's own pod IPs", func(t *testing.T) {
		// A host pod of this tenant, as the pod syncer will create them.
		hostPod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: hostName(ns, "db-0"), Namespace: hostNamespace, Labels: map[string]string{translate.LabelTenant: tenantName}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "postgres"}}},
		}
		_, err := e.host.CoreV1().Pods(hostNamespace).Create(ctx, hostPod, metav1.CreateOptions{})
		mustCreate(err)
		var podIP string
		within(t, 30*time.Second, "the host pod has an IP", func(ctx context.Context) (bool, error) {
			p, err := e.host.CoreV1().Pods(hostNamespace).Get(ctx, hostPod.Name, metav1.GetOptions{})
			if err == nil {
				podIP = p.Status.PodIP
			}
			return podIP != "", nil
		})
		_, err = e.tenant.CoreV1().Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "db"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 5432}}},
		}, metav1.CreateOptions{})
		mustCreate(err)
		mkSlice := func(name, addr string) *discoveryv1.EndpointSlice {
			return &discoveryv1.EndpointSlice{
				ObjectMeta:  metav1.ObjectMeta{Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: "db"}},
				AddressType: discoveryv1.AddressTypeIPv4,
				Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{addr}}},
				Ports:       []discoveryv1.EndpointPort{{Port: ptr.To[int32](5432)}},
			}
		}
		// The tenant admin may write a slice pointing anywhere (admission
		// only warns): what guards the host is the syncer's check against
		// the tenant's host pods, tested here. These host pods have no
		// tenant pod, so the slice of the tenant's own pod IP is written as
		// knestd itself, which admission exempts from its warnings too.
		_, err = e.tenant.DiscoveryV1().EndpointSlices(ns).Create(ctx, mkSlice("db-foreign", "10.99.0.99"), metav1.CreateOptions{})
		mustCreate(err)
		internal := e.internalClient(t)
		_, err = internal.DiscoveryV1().EndpointSlices(ns).Create(ctx, mkSlice("db-own", podIP), metav1.CreateOptions{})
		mustCreate(err)
		within(t, syncWithin, "the slice with the tenant's pod IP on the host, tied to the host Service", func(ctx context.Context) (bool, error) {
			h, err := e.host.DiscoveryV1().EndpointSlices(hostNamespace).Get(ctx, hostName(ns, "db-own"), metav1.GetOptions{})
			return err == nil && h.Labels[discoveryv1.LabelServiceName] == translate.HostName(tenantName, ns, "db", translate.MaxLabelLength) &&
				len(h.Endpoints) == 1 && h.Endpoints[0].Addresses[0] == podIP, nil
		})
		within(t, 5*time.Second, "a SyncRefused event on the foreign slice", func(ctx context.Context) (bool, error) {
			evs, err := e.tenant.EventsV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("regarding.name", "db-foreign").String()})
			if err != nil {
				return false, nil
			}
			for _, ev := range evs.Items {
				if ev.Reason == "SyncRefused" && strings.Contains(ev.Note, "10.99.0.99") {
					return true, nil
				}
			}
			return false, nil
		})
		if _, err := e.host.DiscoveryV1().EndpointSlices(hostNamespace).Get(ctx, hostName(ns, "db-foreign"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("a slice pointing outside the tenant reached the host (err %v)", err)
		}

		// A refused slice is looked at again as soon as the tenant's host pods
		// change, not only on its periodic retry: a host pod that is not the
		// tenant's has an address the tenant may not use, until it becomes one
		// of the tenant's pods.
		stranger := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "stranger", Namespace: hostNamespace},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "pause"}}},
		}
		_, err = e.host.CoreV1().Pods(hostNamespace).Create(ctx, stranger, metav1.CreateOptions{})
		mustCreate(err)
		var strangerIP string
		within(t, 30*time.Second, "the stranger pod has an IP", func(ctx context.Context) (bool, error) {
			p, err := e.host.CoreV1().Pods(hostNamespace).Get(ctx, stranger.Name, metav1.GetOptions{})
			if err == nil {
				strangerIP = p.Status.PodIP
			}
			return strangerIP != "", nil
		})
		_, err = internal.DiscoveryV1().EndpointSlices(ns).Create(ctx, mkSlice("db-later", strangerIP), metav1.CreateOptions{})
		mustCreate(err)
		time.Sleep(500 * time.Millisecond)
		if _, err := e.host.DiscoveryV1().EndpointSlices(hostNamespace).Get(ctx, hostName(ns, "db-later"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("a slice pointing at a pod that is not the tenant's reached the host (err %v)", err)
		}
		p, err := e.host.CoreV1().Pods(hostNamespace).Get(ctx, stranger.Name, metav1.GetOptions{})
		mustCreate(err)
		p.Labels = map[string]string{translate.LabelTenant: tenantName, translate.LabelNamespace: ns}
		_, err = e.host.CoreV1().Pods(hostNamespace).Update(ctx, p, metav1.UpdateOptions{})
		mustCreate(err)
		within(t, 2*time.Second, "the slice on the host once its address is a tenant pod's (well before the 10 s retry)", func(ctx context.Context) (bool, error) {
			_, err := e.host.DiscoveryV1().EndpointSlices(hostNamespace).Get(ctx, hostName(ns, "db-later"), metav1.GetOptions{})
			return err == nil, nil
		})
	})

	t.Run("the host identity is Forbidden outside its namespace", func(t *testing.T) {
		id := framework.Client(t, framework.AdminConfig(t, e.identity))
		if _, err := id.CoreV1().Secrets(hostNamespace).List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("the identity cannot list secrets in its own namespace: %v", err)
		}
		for _, other := range []string{"default", "kube-system"} {
			if _, err := id.CoreV1().Secrets(other).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
				t.Errorf("listing secrets in %s: err = %v, want Forbidden", other, err)
			}
			_, err := id.CoreV1().ConfigMaps(other).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "escape"}}, metav1.CreateOptions{})
			if !apierrors.IsForbidden(err) {
				t.Errorf("creating a ConfigMap in %s: err = %v, want Forbidden", other, err)
			}
		}
		if _, err := id.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("listing nodes: err = %v, want Forbidden", err)
		}
	})
}

func TestIntegrationSyncerCatchesUpAfterDowntime(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := setUp(t)
	ctx := t.Context()
	const ns = "default"
	for _, name := range []string{"keep", "drop"} {
		if _, err := e.tenant.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"k": name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.tenant.CoreV1().Pods(ns).Create(ctx, podUsing(name, []string{name}, nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	within(t, 5*time.Second, "both copies on the host", func(ctx context.Context) (bool, error) {
		_, err1 := hostConfigMap(e, ns, "keep")(ctx)
		_, err2 := hostConfigMap(e, ns, "drop")(ctx)
		return err1 == nil && err2 == nil, nil
	})

	// knestd without the syncer stands for the syncer being down: the
	// tenant API stays usable and changes pile up unsynced.
	e.stopKnestd(t)
	unsynced := framework.Start(t, e.tenantDir, "--name="+tenantName, "--secure-port=0")
	unsynced.WaitReady(t, readyTimeout)
	e.tenant = framework.Client(t, framework.AdminConfig(t, unsynced.AdminKubeconfig()))
	if err := e.tenant.CoreV1().Pods(ns).Delete(ctx, "drop", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	if err := e.tenant.CoreV1().ConfigMaps(ns).Delete(ctx, "drop", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := hostConfigMap(e, ns, "drop")(ctx); err != nil {
		t.Fatalf("without the syncer the host copy must still be there: %v", err)
	}
	unsynced.Stop(t, 10*time.Second)
	e.startKnestd(t)
	within(t, 5*time.Second, "the copy of the deleted object removed after restart", func(ctx context.Context) (bool, error) {
		_, err := hostConfigMap(e, ns, "drop")(ctx)
		return apierrors.IsNotFound(err), nil
	})
	if _, err := hostConfigMap(e, ns, "keep")(ctx); err != nil {
		t.Errorf("the copy of a live object was lost: %v", err)
	}

	t.Run("an idle minute produces no writes to synced objects on either side", func(t *testing.T) {
		// knestd's readiness probe namespaces are deleted in the background
		// after each start; their ConfigMaps go with them. Let that finish:
		// it is not the syncer's doing.
		within(t, time.Minute, "readiness probe namespaces gone", func(ctx context.Context) (bool, error) {
			nss, err := e.tenant.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: "knest.io/probe=true"})
			return err == nil && len(nss.Items) == 0, nil
		})
		writesBefore := syncerWrites(t, e.metrics)
		hostWatch, err := e.host.CoreV1().ConfigMaps(hostNamespace).Watch(ctx, metav1.ListOptions{LabelSelector: translate.LabelTenant + "=" + tenantName})
		if err != nil {
			t.Fatal(err)
		}
		defer hostWatch.Stop()
		tenantWatch, err := e.tenant.CoreV1().ConfigMaps("").Watch(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer tenantWatch.Stop()
		// Initial ADDED events describe the present state; only changes count.
		writes := 0
		idle := time.After(time.Minute)
		for {
			select {
			case ev := <-hostWatch.ResultChan():
				if ev.Type != watch.Added && ev.Type != watch.Bookmark {
					writes++
					t.Logf("host write during the idle minute: %s %v", ev.Type, ev.Object)
				}
			case ev := <-tenantWatch.ResultChan():
				if ev.Type != watch.Added && ev.Type != watch.Bookmark {
					writes++
					t.Logf("tenant write during the idle minute: %s", ev.Type)
				}
			case <-idle:
				if writes != 0 {
					t.Errorf("%d writes to synced ConfigMaps during an idle minute, want 0", writes)
				}
				if after := syncerWrites(t, e.metrics); after != writesBefore {
					t.Errorf("the syncer counted %v writes before and %v after an idle minute, want no change", writesBefore, after)
				}
				return
			}
		}
	})
}

// syncerWrites reads knest_syncer_writes_total (all kinds, both clusters)
// from knestd's metrics endpoint.
func syncerWrites(t *testing.T, addr string) float64 {
	t.Helper()
	total, found := metricSum(t, addr, "knest_syncer_writes_total{")
	if !found {
		t.Fatalf("no knest_syncer_writes_total in the syncer's metrics")
	}
	return total
}

// metricSum sums the samples of knestd's metrics endpoint whose line starts
// with prefix, and reports whether there was any.
func metricSum(t *testing.T, addr, prefix string) (float64, bool) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("syncer metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	total, found := 0.0, false
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, prefix) {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				t.Fatalf("bad metric line %q", line)
			}
			total += v
			found = true
		}
	}
	return total, found
}
