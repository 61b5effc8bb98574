package kubelettest

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/knest-dev/knest/pkg/kubelet"
	"github.com/knest-dev/knest/pkg/pki"
)

// Started is when Pod's container main started.
var Started = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// Pod is the pod the checks call on: default/app, with the containers main
// and sidecar, Running.
func Pod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "default", UID: "uid-1"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main"}, {Name: "sidecar"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
			{Name: "main", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(Started)}}},
		}},
	}
}

// Backend is a kubelet.Backend under test.
type Backend struct {
	// New builds the backend for a cluster whose API server holds Pod and
	// whose pods client is pods (the one the server reads pods with).
	New func(t *testing.T, pods corev1client.PodsGetter) kubelet.Backend
	// MainLog is the log of Pod's container main.
	MainLog string
}

// RunBackendChecks serves b with a kubelet.Server and checks what every
// backend must do behind it: the calls the server refuses never reach the
// backend, and logs and exec reach the pod.
func RunBackendChecks(t *testing.T, b Backend) {
	t.Helper()
	files, err := pki.Ensure(pki.Config{Dir: t.TempDir(), ClusterName: "acme", ServiceIP: net.ParseIP("10.96.0.1")}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pods := fake.NewClientset(Pod()).CoreV1()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := kubelet.New(kubelet.Config{
		Listener: l, Pods: pods, Backend: b.New(t, pods),
		CACertFile: files.InternalCACert, CAKeyFile: files.InternalCAKey, ClientCertFile: files.KubeletClientCert,
		Addresses: []net.IP{net.ParseIP("127.0.0.1")},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	base := "https://" + l.Addr().String()
	apiServer := client(t, files.InternalCACert, loadPair(t, files.KubeletClientCert, files.KubeletClientKey))

	t.Run("only the API server's kubelet client gets in", func(t *testing.T) {
		checkClients(t, base, files)
	})

	t.Run("only the calls of one pod are served", func(t *testing.T) {
		for _, path := range []string{"/pods", "/runningpods/", "/stats/summary", "/configz", "/run/default/app/main", "/debug/pprof/", "/logs/", "/metrics", "/containerLogs/default/app"} {
			got := call(t, apiServer, "GET", base+path)
			if got.status != http.StatusNotFound && got.status != http.StatusMethodNotAllowed {
				t.Errorf("GET %s: %d %q, want 404", path, got.status, got.body)
			}
		}
	})

	t.Run("calls for another pod or container are not found", func(t *testing.T) {
		tests := []struct{ name, method, path, body string }{
			{"logs of a container not in the pod", "GET", "/containerLogs/default/app/nope", `container "nope" not found in pod default/app`},
			{"exec in a container not in the pod", "POST", "/exec/default/app/nope?command=true&output=1", `container "nope" not found in pod default/app`},
			{"exec in a container not in the pod of the UID", "POST", "/exec/default/app/uid-1/nope?command=true&output=1", `container "nope" not found in pod default/app`},
			{"attach to a container not in the pod", "POST", "/attach/default/app/nope?output=1", `container "nope" not found in pod default/app`},
			{"logs of a pod that does not exist", "GET", "/containerLogs/default/gone/main", "pod default/gone not found"},
			{"exec in a pod that does not exist", "POST", "/exec/default/gone/main?command=true&output=1", "pod default/gone not found"},
			{"port-forward to a pod that does not exist", "POST", "/portForward/default/gone", "pod default/gone not found"},
			{"exec in an earlier pod of the name", "POST", "/exec/default/app/uid-0/main?command=true&output=1", "pod default/app not found"},
			{"attach to an earlier pod of the name", "POST", "/attach/default/app/uid-0/main?output=1", "pod default/app not found"},
			{"port-forward to an earlier pod of the name", "POST", "/portForward/default/app/uid-0", "pod default/app not found"},
		}
		for _, tc := range tests {
			got := call(t, apiServer, tc.method, base+tc.path)
			if got.status != http.StatusNotFound || !strings.Contains(got.body, tc.body) {
				t.Errorf("%s: %s %s: %d %q, want 404 %q", tc.name, tc.method, tc.path, got.status, got.body, tc.body)
			}
		}
	})

	t.Run("options the kubelet would refuse are a bad request", func(t *testing.T) {
		tests := []struct{ name, method, path string }{
			{"a negative tailLines", "GET", "/containerLogs/default/app/main?tailLines=-1"},
			{"a negative tail", "GET", "/containerLogs/default/app/main?tail=-1"},
			{"a tailLines that is not a number", "GET", "/containerLogs/default/app/main?tailLines=ten"},
			{"a zero limitBytes", "GET", "/containerLogs/default/app/main?limitBytes=0"},
			{"a sinceTime that is not RFC 3339", "GET", "/containerLogs/default/app/main?sinceTime=yesterday"},
			{"both sinceSeconds and sinceTime", "GET", "/containerLogs/default/app/main?sinceSeconds=5&sinceTime=2030-01-02T03:04:05Z"},
			{"an unknown stream", "GET", "/containerLogs/default/app/main?stream=Stdlog"},
			{"exec without a stream", "POST", "/exec/default/app/main?command=true"},
			{"attach without a stream", "POST", "/attach/default/app/main"},
		}
		for _, tc := range tests {
			if got := call(t, apiServer, tc.method, base+tc.path); got.status != http.StatusBadRequest {
				t.Errorf("%s: %s %s: %d %q, want 400", tc.name, tc.method, tc.path, got.status, got.body)
			}
		}
	})

	t.Run("logs show the container's log", func(t *testing.T) {
		got := call(t, apiServer, "GET", base+"/containerLogs/default/app/main")
		if got.status != http.StatusOK {
			t.Fatalf("logs: %d %q", got.status, got.body)
		}
		if diff := cmp.Diff(b.MainLog, got.body); diff != "" || b.MainLog == "" {
			t.Errorf("logs (-want +got):\n%s", diff)
		}
	})

	t.Run("exec echo hello over SPDY prints hello", func(t *testing.T) {
		u, err := url.Parse(base + "/exec/default/app/main")
		if err != nil {
			t.Fatal(err)
		}
		u.RawQuery = url.Values{"command": {"echo", "hello"}, "output": {"1"}}.Encode()
		cfg := &rest.Config{Host: base, TLSClientConfig: rest.TLSClientConfig{
			CAFile: files.InternalCACert, CertFile: files.KubeletClientCert, KeyFile: files.KubeletClientKey,
		}}
		executor, err := remotecommand.NewSPDYExecutor(cfg, "POST", u)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := executor.StreamWithContext(t.Context(), remotecommand.StreamOptions{Stdout: &out}); err != nil || out.String() != "hello\n" {
			t.Errorf("exec echo hello: %q, %v", out.String(), err)
		}
	})
}

// checkClients calls /healthz with the certificates that could be had by
// someone other than the API server.
func checkClients(t *testing.T, base string, files pki.Files) {
	kubeletClient := pki.Leaf{Subject: pkix.Name{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"kubeadm:cluster-admins"}}}
	// What a cluster admin can get from the cluster's CSR signer: the
	// right name from the cluster CA, with a key of its own.
	fromSigner, err := pki.Issue(files.CACert, files.CAKey, kubeletClient, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sameName, err := pki.Issue(files.InternalCACert, files.InternalCAKey, kubeletClient, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// The API server's own key under the cluster CA: only the CA tells it
	// from the real one.
	ownKeyClusterCA := certifyKey(t, loadPair(t, files.KubeletClientCert, files.KubeletClientKey), files.CACert, files.CAKey)
	other, err := pki.Ensure(pki.Config{Dir: t.TempDir(), ClusterName: "other", ServiceIP: net.ParseIP("10.96.0.1")}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		cert     *tls.Certificate
		accepted bool
	}{
		{name: "the API server's kubelet client certificate", cert: loadPair(t, files.KubeletClientCert, files.KubeletClientKey), accepted: true},
		{name: "no client certificate"},
		{name: "the admin's certificate, from the cluster CA", cert: loadPair(t, files.AdminCert, files.AdminKey)},
		{name: "the controller-manager's certificate, from the internal CA", cert: loadPair(t, files.ControllerManagerCert, files.ControllerManagerKey)},
		{name: "a certificate of the same name from the cluster's CSR signer", cert: &fromSigner},
		{name: "the API server's key and name certified by the cluster CA", cert: ownKeyClusterCA},
		{name: "a certificate of the same name from the internal CA with another key", cert: &sameName},
		{name: "another cluster's kubelet client certificate", cert: loadPair(t, other.KubeletClientCert, other.KubeletClientKey)},
	}
	for _, tc := range tests {
		resp, err := client(t, files.InternalCACert, tc.cert).Get(base + "/healthz")
		if err != nil {
			if tc.accepted {
				t.Errorf("%s: refused: %v", tc.name, err)
			}
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		served := resp.StatusCode == http.StatusOK && string(body) == "ok"
		if served != tc.accepted {
			t.Errorf("%s: GET /healthz: %s %q, want accepted=%v", tc.name, resp.Status, body, tc.accepted)
		}
	}
}

type response struct {
	status int
	body   string
}

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
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return response{status: resp.StatusCode, body: string(body)}
}

// client trusts the CA in caFile and presents cert, if any.
func client(t *testing.T, caFile string, cert *tls.Certificate) *http.Client {
	t.Helper()
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	conf := &tls.Config{RootCAs: roots}
	if cert != nil {
		conf.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: conf}, Timeout: 10 * time.Second}
}

// certifyKey has the CA in caCert and caKey sign a certificate for the key
// and subject of pair.
func certifyKey(t *testing.T, pair *tls.Certificate, caCert, caKey string) *tls.Certificate {
	t.Helper()
	ca := loadPair(t, caCert, caKey)
	caLeaf, err := x509.ParseCertificate(ca.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: leaf.Subject,
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caLeaf, leaf.PublicKey, ca.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: pair.PrivateKey}
}

func loadPair(t *testing.T, cert, key string) *tls.Certificate {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return &pair
}
