package syncer

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/pkg/translate"
	"github.com/knest-dev/knest/test/integration/framework"
)

// TestIntegrationKubeletAPI drives kubectl's logs, exec, attach and
// port-forward for a tenant pod through the tenant API server, with
// client-go as kubectl uses it: the tenant API server calls knestd's
// kubelet API, which replays each call against the devcluster's pod
// subresources of the host pod, where the devcluster serves them for its
// simulated pods.
func TestIntegrationKubeletAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := setUp(t)
	ctx := t.Context()
	tenantCfg := framework.AdminConfig(t, e.kubeconfig())
	const ns, name = "default", "app"
	pod := simplePod(name)
	pod.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 8080}}
	pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "sidecar", Image: "busybox"})
	if _, err := e.tenant.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	within(t, 30*time.Second, "tenant pod Running on a virtual node", func(ctx context.Context) (bool, error) {
		p, err := e.tenantPod(ctx, ns, name)
		if err != nil {
			return false, err
		}
		pod = p
		return p.Status.Phase == corev1.PodRunning && p.Spec.NodeName != "", nil
	})
	hostPod := hostName(ns, name)
	hostDir, err := filepath.EvalSymlinks(e.hostDir)
	if err != nil {
		t.Fatal(err)
	}
	logOf := func(container string) string {
		return filepath.Join(hostDir, "pods", hostNamespace, hostPod, container+".log")
	}
	tenantLogs := func(client kubernetes.Interface, opts *corev1.PodLogOptions) (string, error) {
		stream, err := client.CoreV1().Pods(ns).GetLogs(name, opts).Stream(ctx)
		if err != nil {
			return "", err
		}
		defer stream.Close()
		out, err := io.ReadAll(stream)
		return string(out), err
	}
	// What the host serves for the host pod, read with host admin: the
	// tenant must see exactly this.
	hostLogs := func(opts *corev1.PodLogOptions) string {
		t.Helper()
		out, err := e.host.CoreV1().Pods(hostNamespace).GetLogs(hostPod, opts).DoRaw(ctx)
		if err != nil {
			t.Fatalf("host logs of %s: %v", hostPod, err)
		}
		return string(out)
	}

	t.Run("logs show the host pod's container log", func(t *testing.T) {
		for _, c := range []string{"c", "sidecar"} {
			want := hostLogs(&corev1.PodLogOptions{Container: c})
			got, err := tenantLogs(e.tenant, &corev1.PodLogOptions{Container: c})
			if err != nil || got != want || want == "" {
				t.Errorf("logs -c %s: %v\ngot:\n%s\nwant (the host's):\n%s", c, err, got, want)
			}
		}
	})

	t.Run("logs --tail=1 shows the last line only", func(t *testing.T) {
		lines := strings.SplitAfter(hostLogs(&corev1.PodLogOptions{Container: "c"}), "\n")
		want := lines[len(lines)-2]
		got, err := tenantLogs(e.tenant, &corev1.PodLogOptions{Container: "c", TailLines: ptr.To[int64](1)})
		if err != nil || got != want {
			t.Errorf("logs --tail=1: %v\ngot:  %q\nwant: %q", err, got, want)
		}
	})

	t.Run("logs --previous is refused with the host's reason, in the tenant's names", func(t *testing.T) {
		got, err := tenantLogs(e.tenant, &corev1.PodLogOptions{Container: "c", Previous: true})
		if err == nil || !strings.Contains(err.Error(), "previous terminated container") {
			t.Fatalf("logs --previous: want the kubelet's 'previous terminated container ... not found', got %v (output %q)", err, got)
		}
		if strings.Contains(err.Error(), hostPod) || strings.Contains(err.Error(), hostNamespace) {
			t.Errorf("logs --previous: the error names host objects: %v", err)
		}
	})

	t.Run("logs -f follows lines appended to the container's log", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		initial := strings.Count(hostLogs(&corev1.PodLogOptions{Container: "sidecar"}), "\n")
		stream, err := e.tenant.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{Container: "sidecar", Follow: true}).Stream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer stream.Close()
		r := bufio.NewReader(stream)
		for range initial {
			if _, err := r.ReadString('\n'); err != nil {
				t.Fatalf("reading the initial lines: %v", err)
			}
		}
		if err := framework.AppendCRILog(logOf("sidecar"), "followed line"); err != nil {
			t.Fatal(err)
		}
		line, err := r.ReadString('\n')
		if err != nil || line != "followed line\n" {
			t.Errorf("logs -f: after appending a line got %q, %v", line, err)
		}
	})

	t.Run("exec echo hello, with and without a TTY, over SPDY and WebSocket", func(t *testing.T) {
		for _, transport := range framework.Transports {
			for _, tty := range []bool{false, true} {
				want := "hello\n"
				if tty {
					// The terminal turns newlines into CRLF: proof of a TTY.
					want = "hello\r\n"
				}
				got, err := framework.Exec(ctx, tenantCfg, ns, name, "c", []string{"echo", "hello"}, tty, transport)
				if err != nil || got != want {
					t.Errorf("exec over %s, tty=%v: got %q, %v; want %q", transport, tty, got, err, want)
				}
			}
		}
	})

	t.Run("exec passes the command's exit code on", func(t *testing.T) {
		for _, transport := range framework.Transports {
			_, err := framework.Exec(ctx, tenantCfg, ns, name, "c", []string{"sh", "-c", "exit 3"}, false, transport)
			var exit utilexec.CodeExitError
			if !errors.As(err, &exit) || exit.Code != 3 {
				t.Errorf("exec exit 3 over %s: got %v, want exit code 3", transport, err)
			}
		}
	})

	t.Run("attach follows the container's output and ends with the client", func(t *testing.T) {
		for _, transport := range framework.Transports {
			req := framework.AttachRequest(e.tenant, ns, name, &corev1.PodAttachOptions{Container: "sidecar", Stdout: true})
			executor, err := framework.Executor(tenantCfg, req, transport)
			if err != nil {
				t.Fatal(err)
			}
			out := &framework.Buffer{}
			attachCtx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- executor.StreamWithContext(attachCtx, remotecommand.StreamOptions{Stdout: out}) }()
			// Attach starts at the output's end once the stream is up:
			// append until a line comes through.
			line := "attached over " + transport
			within(t, 20*time.Second, "a line through attach over "+transport, func(context.Context) (bool, error) {
				if err := framework.AppendCRILog(logOf("sidecar"), line); err != nil {
					return false, err
				}
				time.Sleep(200 * time.Millisecond)
				return strings.Contains(out.String(), line+"\n"), nil
			})
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Errorf("attach over %s did not end after the client cancelled", transport)
			}
		}
	})

	t.Run("port-forward reaches the pod's port", func(t *testing.T) {
		for _, transport := range framework.Transports {
			msg := "ping over " + transport + "\n"
			got, err := framework.ForwardAndSend(ctx, tenantCfg, ns, name, 8080, transport, msg)
			if err != nil || got != msg {
				t.Errorf("port-forward over %s: got %q, %v; want the devcluster's echo %q", transport, got, err, msg)
			}
		}
	})

	t.Run("a tenant user without the RBAC right is forbidden, with it allowed", func(t *testing.T) {
		userCfg := serviceAccountConfig(t, e.tenant, tenantCfg, ns, "viewer")
		user := framework.Client(t, userCfg)
		if _, err := tenantLogs(user, &corev1.PodLogOptions{Container: "c"}); !apierrors.IsForbidden(err) {
			t.Errorf("logs without pods/log: got %v, want Forbidden", err)
		}
		for _, transport := range framework.Transports {
			out, err := framework.Exec(ctx, userCfg, ns, name, "c", []string{"echo", "hello"}, false, transport)
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), "forbidden") {
				t.Errorf("exec over %s without pods/exec: got %q, %v; want forbidden", transport, out, err)
			}
			got, err := framework.ForwardAndSend(ctx, userCfg, ns, name, 8080, transport, "ping\n")
			if err == nil {
				t.Errorf("port-forward over %s without pods/portforward: got %q, want it refused", transport, got)
			}
		}
		grant(t, e.tenant, ns, "viewer", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get"}})
		within(t, 10*time.Second, "logs once pods/log is granted", func(context.Context) (bool, error) {
			_, err := tenantLogs(user, &corev1.PodLogOptions{Container: "c"})
			return err == nil, nil
		})
	})

	t.Run("a container not in the tenant pod's spec is refused", func(t *testing.T) {
		if out, err := tenantLogs(e.tenant, &corev1.PodLogOptions{Container: "nope"}); err == nil {
			t.Errorf("logs -c nope succeeded: %q", out)
		}
		for _, transport := range framework.Transports {
			if out, err := framework.Exec(ctx, tenantCfg, ns, name, "nope", []string{"echo", "hello"}, false, transport); err == nil {
				t.Errorf("exec -c nope over %s succeeded: %q", transport, out)
			}
		}
	})

	// The tenant API server checks much of this itself; knestd's kubelet
	// API must hold on its own, for anyone who reaches its port.
	node, err := e.tenant.CoreV1().Nodes().Get(ctx, pod.Spec.NodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kubelet := "https://" + net.JoinHostPort(node.Status.Addresses[0].Address, strconv.Itoa(int(node.Status.DaemonEndpoints.KubeletEndpoint.Port)))
	pkiDir := filepath.Join(e.tenantDir, "pki")
	asAPIServer := kubeletClient(t, pkiDir, "apiserver-kubelet-client")

	t.Run("the kubelet port serves the tenant API server's kubelet client only", func(t *testing.T) {
		if got := call(t, asAPIServer, "GET", kubelet+"/healthz"); got.status != http.StatusOK {
			t.Errorf("the API server's kubelet client: %d %q", got.status, got.body)
		}
		for _, who := range []string{"", "admin"} {
			if resp, err := kubeletClient(t, pkiDir, who).Get(kubelet + "/healthz"); err == nil {
				resp.Body.Close()
				t.Errorf("client certificate %q: served %s, want the connection refused", who, resp.Status)
			}
		}
		// The serving certificate is not the cluster CA's, whose
		// kubelet-serving signer the tenant drives.
		resp, err := kubeletClientTrusting(t, pkiDir, "ca.crt", "apiserver-kubelet-client").Get(kubelet + "/healthz")
		if err == nil {
			resp.Body.Close()
			t.Errorf("the kubelet's serving certificate verified under the cluster CA: %s", resp.Status)
		} else if !strings.Contains(err.Error(), "certificate signed by unknown authority") {
			t.Errorf("trusting the cluster CA only: %v, want an unknown authority", err)
		}
	})

	t.Run("the kubelet port refuses containers not in the tenant spec", func(t *testing.T) {
		for _, req := range []struct{ method, path string }{
			{"GET", "/containerLogs/default/app/nope"},
			{"POST", "/exec/default/app/nope?command=echo&output=1"},
			{"POST", "/attach/default/app/nope?output=1"},
			{"POST", "/exec/default/app/" + string(pod.UID) + "/nope?command=echo&output=1"},
		} {
			got := call(t, asAPIServer, req.method, kubelet+req.path)
			if got.status != http.StatusNotFound || !strings.Contains(got.body, `container "nope" not found`) {
				t.Errorf("%s %s: %d %q, want 404 container not found", req.method, req.path, got.status, got.body)
			}
		}
	})

	t.Run("the kubelet port refuses pods that are not the tenant's", func(t *testing.T) {
		// A host pod that holds the name of a tenant pod's copy but is not
		// the tenant's: the syncer leaves it alone, and so must logs.
		const intruder = "intruder"
		foreign := simplePod("foreign")
		foreign.Name, foreign.Namespace = hostName(ns, intruder), hostNamespace
		if _, err := e.host.CoreV1().Pods(hostNamespace).Create(ctx, foreign, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		within(t, 30*time.Second, "the foreign host pod Running", func(ctx context.Context) (bool, error) {
			p, err := e.host.CoreV1().Pods(hostNamespace).Get(ctx, foreign.Name, metav1.GetOptions{})
			return err == nil && p.Status.Phase == corev1.PodRunning, nil
		})
		if _, err := e.tenant.CoreV1().Pods(ns).Create(ctx, simplePod(intruder), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		within(t, 10*time.Second, "the tenant pod of the taken name", func(ctx context.Context) (bool, error) {
			_, err := e.tenantPod(ctx, ns, intruder)
			return err == nil, nil
		})
		tests := []struct {
			name, method, path string
		}{
			{"a tenant pod whose host name another host pod holds", "GET", "/containerLogs/default/" + intruder + "/c"},
			{"a tenant pod whose host name another host pod holds, exec", "POST", "/exec/default/" + intruder + "/c?command=echo&output=1"},
			{"a host pod named by its host namespace and name", "GET", "/containerLogs/" + hostNamespace + "/" + hostPod + "/c"},
			{"a pod that does not exist", "GET", "/containerLogs/default/ghost/c"},
			{"the tenant pod with another UID", "POST", "/exec/default/app/00000000-0000-0000-0000-000000000000/c?command=echo&output=1"},
			{"port-forward to the taken name", "POST", "/portForward/default/" + intruder},
		}
		for _, tc := range tests {
			got := call(t, asAPIServer, tc.method, kubelet+tc.path)
			named := strings.Contains(got.body, hostNamespace) && !strings.Contains(tc.path, hostNamespace)
			if got.status != http.StatusNotFound || strings.Contains(got.body, "knest devcluster") || named {
				t.Errorf("%s: %s %s: %d %q, want 404 naming no host object", tc.name, tc.method, tc.path, got.status, got.body)
			}
		}
		// The foreign pod's logs are there to be had, from the host itself.
		if out, err := e.host.CoreV1().Pods(hostNamespace).GetLogs(foreign.Name, &corev1.PodLogOptions{Container: "c"}).DoRaw(ctx); err != nil || len(out) == 0 {
			t.Errorf("the host serves no logs of the foreign pod (%v); the refusals above prove nothing", err)
		}
		h, err := e.host.CoreV1().Pods(hostNamespace).Get(ctx, foreign.Name, metav1.GetOptions{})
		if err != nil || h.Labels[translate.LabelTenant] != "" {
			t.Errorf("the foreign host pod was changed: %v, labels %v", err, h.Labels)
		}
	})
}

// serviceAccountConfig creates a ServiceAccount in the tenant and returns a
// client config that authenticates as it with a fresh token.
func serviceAccountConfig(t *testing.T, tenant kubernetes.Interface, admin *rest.Config, ns, name string) *rest.Config {
	t.Helper()
	ctx := t.Context()
	if _, err := tenant.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := tenant.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.AnonymousClientConfig(admin)
	cfg.BearerToken = tr.Status.Token
	return cfg
}

// grant gives a tenant ServiceAccount one rule in its namespace.
func grant(t *testing.T, tenant kubernetes.Interface, ns, serviceAccount string, rule rbacv1.PolicyRule) {
	t.Helper()
	ctx := t.Context()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: serviceAccount}, Rules: []rbacv1.PolicyRule{rule}}
	if _, err := tenant.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: serviceAccount},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: serviceAccount},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: serviceAccount, Namespace: ns}},
	}
	if _, err := tenant.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// kubeletClient trusts knestd's internal CA, as the tenant API server's
// --kubelet-certificate-authority does, and presents pkiDir's <cert>.crt
// and .key, if cert is set.
func kubeletClient(t *testing.T, pkiDir, cert string) *http.Client {
	t.Helper()
	return kubeletClientTrusting(t, pkiDir, "internal-ca.crt", cert)
}

// kubeletClientTrusting is kubeletClient trusting the CA in pkiDir's caFile.
func kubeletClientTrusting(t *testing.T, pkiDir, caFile, cert string) *http.Client {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(pkiDir, caFile))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatalf("%s holds no certificate", caFile)
	}
	conf := &tls.Config{RootCAs: roots}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(filepath.Join(pkiDir, cert+".crt"), filepath.Join(pkiDir, cert+".key"))
		if err != nil {
			t.Fatal(err)
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: conf}, Timeout: 10 * time.Second}
}

type response struct {
	status int
	body   string
}

// call makes one request and reads the whole answer.
func call(t *testing.T, c *http.Client, method, url string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, body: string(body)}
}
