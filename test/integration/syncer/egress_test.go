package syncer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/test/integration/framework"
)

// hostListener is a service of the host network that no tenant may reach:
// it counts the connections it gets.
type hostListener struct {
	ip       string
	port     int
	accepted atomic.Int32
}

func (h *hostListener) addr() string { return net.JoinHostPort(h.ip, strconv.Itoa(h.port)) }

// hostAddress is a global unicast address of this machine, as a host
// node's or the host API server's would be; the test is skipped without
// one. (The API server itself refuses to proxy to loopback addresses, so
// they would prove nothing about knestd.)
func hostAddress(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
			return n.IP.String()
		}
	}
	t.Skip("no global unicast IPv4 address on this machine to play the host network")
	return ""
}

func listenOnHost(t *testing.T, ip string) *hostListener {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	h := &hostListener{ip: ip, port: l.Addr().(*net.TCPAddr).Port}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			h.accepted.Add(1)
			c.Close()
		}
	}()
	return h
}

// refusedByKnest fails unless err is knestd's refusal of a connection to
// target, as the tenant sees it.
func refusedByKnest(t *testing.T, what string, err error, target string) {
	t.Helper()
	want := "knest refused the tenant API server's connection to " + target
	text := errorText(err)
	if !strings.Contains(text, want) {
		t.Errorf("%s: got %q, want knestd's refusal %q with its reason", what, text, want)
		return
	}
	t.Logf("%s: %s", what, text)
}

// errorText is what a client shows of err: its message, and the body of a
// response that was no API status (client-go keeps it in the causes).
func errorText(err error) string {
	if err == nil {
		return "<nil>"
	}
	text := err.Error()
	if s, ok := err.(apierrors.APIStatus); ok && s.Status().Details != nil {
		for _, c := range s.Status().Details.Causes {
			text += "; " + c.Message
		}
	}
	return text
}

// TestIntegrationAPIServerEgress is a tenant cluster-admin trying to make
// the tenant API server, which runs in the host network, connect to a host
// service: through Nodes, pod status, Endpoints, webhooks and APIServices.
// Every attempt is refused with the reason, and the host service never sees
// a connection; the tenant's own use of the kubelet API keeps working.
// The profile does not matter to the dialer; both are run.
func TestIntegrationAPIServerEgress(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	ip := hostAddress(t)
	for _, profile := range []string{"hard", "soft"} {
		t.Run(profile, func(t *testing.T) { apiServerEgressAttacks(t, ip, profile) })
	}
}

func apiServerEgressAttacks(t *testing.T, ip, profile string) {
	kubeletLike, other := listenOnHost(t, ip), listenOnHost(t, ip)
	// The operator lists the host address and localhost as webhook hosts,
	// but not their networks in apiServerEgressCIDRs: admission lets those
	// urls through, the dial must still refuse them.
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(fmt.Sprintf("profile: %s\nwebhookURLHosts: [%q, localhost]\n", profile, ip)), 0o600); err != nil {
		t.Fatal(err)
	}
	e := setUp(t, "--isolation="+profile, "--policy-file="+policyFile)
	ctx := t.Context()
	const ns = "default"
	adminCfg := framework.AdminConfig(t, e.kubeconfig())
	dyn, err := dynamic.NewForConfig(adminCfg)
	if err != nil {
		t.Fatal(err)
	}
	httpClient, err := rest.HTTPClientFor(adminCfg)
	if err != nil {
		t.Fatal(err)
	}
	// get is kubectl get --raw: the API server's answer as JSON text.
	get := func(path string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, adminCfg.Host+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", "application/json")
		resp, err := httpClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			return fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
		}
		return nil
	}
	// create creates an object of any group from JSON, as kubectl would.
	create := func(gvr schema.GroupVersionResource, manifest string) error {
		var obj map[string]any
		if err := json.Unmarshal([]byte(manifest), &obj); err != nil {
			t.Fatal(err)
		}
		_, err := dyn.Resource(gvr).Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{})
		return err
	}
	// Refusals this knestd made, all of them by the end of the test.
	dialRefusals := 0

	t.Run("nodes/proxy to a Node the tenant made with a host address is refused, on the kubelet port and any other", func(t *testing.T) {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "evil"}, Status: corev1.NodeStatus{
			Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(kubeletLike.port)}},
		}}
		created, err := e.tenant.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		created.Status = node.Status
		if _, err := e.tenant.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		// The kubelet client, as for logs and exec.
		err = get("/api/v1/nodes/evil/proxy/configz")
		refusedByKnest(t, "nodes/evil/proxy", err, kubeletLike.addr())
		// The proxy transport, for any other port.
		err = get(fmt.Sprintf("/api/v1/nodes/evil:%d/proxy/", other.port))
		refusedByKnest(t, "nodes/evil:port/proxy", err, other.addr())
		dialRefusals += 2
	})

	t.Run("pods/proxy to a pod whose status IP the tenant set to a host address is refused", func(t *testing.T) {
		victim := simplePod("victim")
		victim.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: int32(other.port)}}
		if _, err := e.tenant.CoreV1().Pods(ns).Create(ctx, victim, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		within(t, 30*time.Second, "victim Running", func(ctx context.Context) (bool, error) {
			p, err := e.tenantPod(ctx, ns, "victim")
			return err == nil && p.Status.Phase == corev1.PodRunning, nil
		})
		// The pod finishes (here: its host pod is lost), so the syncer no
		// longer writes its status, and the tenant writes the IP.
		if err := e.host.CoreV1().Pods(hostNamespace).Delete(ctx, hostName(ns, "victim"), metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
			t.Fatal(err)
		}
		var p *corev1.Pod
		within(t, 30*time.Second, "victim Failed", func(ctx context.Context) (bool, error) {
			got, err := e.tenantPod(ctx, ns, "victim")
			p = got
			return err == nil && got.Status.Phase == corev1.PodFailed, nil
		})
		p.Status.PodIP, p.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
		if _, err := e.tenant.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("the tenant's write of pod status: %v", err)
		}
		err := get(fmt.Sprintf("/api/v1/namespaces/%s/pods/victim:%d/proxy/", ns, other.port))
		refusedByKnest(t, "pods/victim/proxy", err, other.addr())
		dialRefusals++
	})

	t.Run("services/proxy: Endpoints and EndpointSlices at a host address are admitted, and the proxy refused at dial time", func(t *testing.T) {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "laundered"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
		if _, err := e.tenant.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		ref := &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "victim"}
		_, err := e.tenant.CoreV1().Endpoints(ns).Create(ctx, &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "laundered"}, Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: ip, TargetRef: ref}}, Ports: []corev1.EndpointPort{{Port: int32(other.port)}},
		}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("Endpoints at %s: %v (admission only warns; the host is guarded where it is touched)", ip, err)
		}
		_, err = e.tenant.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: "laundered", Labels: map[string]string{discoveryv1.LabelServiceName: "laundered"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip}, TargetRef: ref}},
			Ports:       []discoveryv1.EndpointPort{{Port: ptr.To(int32(other.port))}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("EndpointSlice at %s: %v", ip, err)
		}
		err = get(fmt.Sprintf("/api/v1/namespaces/%s/services/laundered:80/proxy/", ns))
		refusedByKnest(t, "services/laundered/proxy", err, other.addr())
		dialRefusals++
	})

	// Webhooks fire for ConfigMaps in this namespace only.
	hooked := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "hooked", Labels: map[string]string{"egress-test": "hooked"}}}
	if _, err := e.tenant.CoreV1().Namespaces().Create(ctx, hooked, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	webhook := func(name string, cc admissionregistrationv1.WebhookClientConfig) *admissionregistrationv1.ValidatingWebhookConfiguration {
		return &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name}, Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: name + ".egress.knest.example", ClientConfig: cc,
			Rules: []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}}}},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: hooked.Labels},
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To[int32](5),
		}}}
	}
	// callWebhook creates a ConfigMap the webhook named name is called
	// for, and returns the error, with the webhook removed afterwards.
	callWebhook := func(t *testing.T, name string) error {
		t.Helper()
		defer func() {
			_ = e.tenant.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(context.WithoutCancel(ctx), name, metav1.DeleteOptions{})
		}()
		var err error
		// The API server picks a new webhook up from its informer.
		within(t, 10*time.Second, "webhook "+name+" called", func(ctx context.Context) (bool, error) {
			_, err = e.tenant.CoreV1().ConfigMaps("hooked").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "c-"}}, metav1.CreateOptions{})
			return err != nil, nil
		})
		return err
	}

	t.Run("a webhook url outside the operator's list is refused when written", func(t *testing.T) {
		_, err := e.tenant.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx,
			webhook("unlisted", admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://10.96.0.1/validate")}), metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), "webhooks[0].clientConfig.url") || !strings.Contains(err.Error(), "webhookURLHosts") {
			t.Errorf("webhook url https://10.96.0.1: got %v, want a refusal naming the field and webhookURLHosts", err)
		}
	})

	t.Run("a webhook url the operator lists is still refused at dial time, outside apiServerEgressCIDRs (controlplane egress)", func(t *testing.T) {
		url := fmt.Sprintf("https://%s/validate", other.addr())
		if _, err := e.tenant.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx,
			webhook("listed", admissionregistrationv1.WebhookClientConfig{URL: &url}), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		refusedByKnest(t, "ConfigMap create calling "+url, callWebhook(t, "listed"), other.addr())
		dialRefusals++
	})

	t.Run("a webhook url naming a listed host is resolved by knestd, and refused for what it resolves to", func(t *testing.T) {
		url := fmt.Sprintf("https://localhost:%d/validate", other.port)
		if _, err := e.tenant.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx,
			webhook("localhost", admissionregistrationv1.WebhookClientConfig{URL: &url}), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		err := callWebhook(t, "localhost")
		refusedByKnest(t, "ConfigMap create calling "+url, err, "localhost:"+strconv.Itoa(other.port))
		if !strings.Contains(errorText(err), "localhost resolves to") {
			t.Errorf("the refusal does not say what localhost resolved to: %v", err)
		}
		dialRefusals++
	})

	t.Run("a CRD conversion webhook url is refused when written", func(t *testing.T) {
		crd := fmt.Sprintf(`{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"widgets.egress.knest.example"},
			"spec":{"group":"egress.knest.example","scope":"Namespaced","names":{"plural":"widgets","singular":"widget","kind":"Widget"},
			"versions":[{"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object"}}},
			            {"name":"v2","served":true,"storage":false,"schema":{"openAPIV3Schema":{"type":"object"}}}],
			"conversion":{"strategy":"Webhook","webhook":{"conversionReviewVersions":["v1"],"clientConfig":{"url":"https://%s/convert"}}}}}`, "127.0.0.1:2379")
		err := create(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}, crd)
		if err == nil || !strings.Contains(err.Error(), "spec.conversion.webhook.clientConfig.url") || !strings.Contains(err.Error(), "webhookURLHosts") {
			t.Errorf("CRD with conversion url https://127.0.0.1:2379: got %v, want a refusal naming the field and webhookURLHosts", err)
		}
	})

	t.Run("the tenant's own pods keep their logs, through knestd's kubelet API", func(t *testing.T) {
		if _, err := e.tenant.CoreV1().Pods(ns).Create(ctx, simplePod("app"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		within(t, 30*time.Second, "app Running", func(ctx context.Context) (bool, error) {
			p, err := e.tenantPod(ctx, ns, "app")
			return err == nil && p.Status.Phase == corev1.PodRunning, nil
		})
		stream, err := e.tenant.CoreV1().Pods(ns).GetLogs("app", &corev1.PodLogOptions{Container: "c"}).Stream(ctx)
		if err != nil {
			t.Fatalf("logs of a tenant pod: %v", err)
		}
		defer stream.Close()
		if _, err := io.ReadAll(stream); err != nil {
			t.Errorf("reading logs: %v", err)
		}
	})

	t.Run("a tenant pod's IP as the host reports it is reached through pods/proxy", func(t *testing.T) {
		// The host's pod network is simulated: the host (its CNI) gives the
		// tenant's host pod this machine's address, where a server of the
		// pod listens.
		served := listenOnHost(t, ip)
		pod := simplePod("served")
		pod.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: int32(served.port)}}
		if _, err := e.tenant.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		within(t, 30*time.Second, "served Running", func(ctx context.Context) (bool, error) {
			p, err := e.tenantPod(ctx, ns, "served")
			return err == nil && p.Status.Phase == corev1.PodRunning, nil
		})
		h, err := e.hostPod(ctx, ns, "served")
		if err != nil {
			t.Fatal(err)
		}
		h.Status.PodIP, h.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
		if _, err := e.host.CoreV1().Pods(hostNamespace).UpdateStatus(ctx, h, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		within(t, 10*time.Second, "the host pod's IP in the tenant pod's status", func(ctx context.Context) (bool, error) {
			p, err := e.tenantPod(ctx, ns, "served")
			return err == nil && p.Status.PodIP == ip, nil
		})
		err = get(fmt.Sprintf("/api/v1/namespaces/%s/pods/served:%d/proxy/", ns, served.port))
		if strings.Contains(errorText(err), "knest refused") {
			t.Fatalf("pods/served/proxy to the tenant's own host pod was refused: %v", err)
		}
		if served.accepted.Load() == 0 {
			t.Errorf("the tenant's pod got no connection (pods/proxy: %v)", err)
		}
	})

	if n := kubeletLike.accepted.Load() + other.accepted.Load(); n != 0 {
		t.Errorf("the host service got %d connections from the tenant API server", n)
	}
	if got, _ := metricSum(t, e.metrics, "knest_apiserver_egress_refusals_total{"); got < float64(dialRefusals) {
		t.Errorf("knest_apiserver_egress_refusals_total grew by %v, want at least %d", got, dialRefusals)
	}
}
