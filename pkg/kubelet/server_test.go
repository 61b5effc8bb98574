package kubelet

import (
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
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/pkg/pki"
	"github.com/knest-dev/knest/pkg/translate"
)

func TestCommandQuery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		in        url.Values
		container string
		exec      bool
		want      url.Values
	}{
		{
			name: "exec with every stream and a TTY keeps the command's order",
			in:   url.Values{"command": {"sh", "-c", "echo hi"}, "input": {"1"}, "output": {"1"}, "error": {"1"}, "tty": {"1"}},
			exec: true, container: "main",
			want: url.Values{"container": {"main"}, "command": {"sh", "-c", "echo hi"}, "stdin": {"true"}, "stdout": {"true"}, "stderr": {"true"}, "tty": {"true"}},
		},
		{
			name: "exec with stdout only leaves the other streams off",
			in:   url.Values{"command": {"date"}, "output": {"1"}},
			exec: true, container: "main",
			want: url.Values{"container": {"main"}, "command": {"date"}, "stdout": {"true"}},
		},
		{
			name:      "attach drops a command and anything the kubelet API does not know",
			in:        url.Values{"command": {"rm"}, "output": {"1"}, "input": {"0"}, "container": {"other"}, "insecureSkipTLSVerifyBackend": {"true"}},
			container: "sidecar",
			want:      url.Values{"container": {"sidecar"}, "stdout": {"true"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := commandQuery(tc.in, tc.container, tc.exec)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("commandQuery (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPortForwardQuery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   url.Values
		want url.Values
	}{
		{name: "comma-separated ports become repeated ports", in: url.Values{"port": {"8080,9090"}}, want: url.Values{"ports": {"8080", "9090"}}},
		{name: "no ports (SPDY sends them per stream)", in: url.Values{}, want: url.Values{}},
		{name: "other parameters are dropped", in: url.Values{"port": {"80"}, "ports": {"22"}}, want: url.Values{"ports": {"80"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, portForwardQuery(tc.in)); diff != "" {
				t.Errorf("portForwardQuery (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIsCopyOf(t *testing.T) {
	t.Parallel()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "api", UID: "u1"}}
	copyOf := func(tweak func(h *corev1.Pod)) *corev1.Pod {
		labels, annotations := translate.HostMeta("acme", translate.Object{Kind: "Pod", Namespace: "shop", Name: "api", UID: "u1"}, nil, nil, translate.Passthrough{})
		h := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
			Namespace: "knest-acme", Name: translate.HostName("acme", "shop", "api", translate.MaxSubdomainLength),
			Labels: labels, Annotations: annotations,
		}}
		if tweak != nil {
			tweak(h)
		}
		return h
	}
	tests := []struct {
		name string
		host *corev1.Pod
		want bool
	}{
		{name: "the tenant's copy of this pod", host: copyOf(nil), want: true},
		{name: "a host pod without the marker", host: copyOf(func(h *corev1.Pod) { delete(h.Labels, translate.LabelTenant) })},
		{name: "another tenant's pod", host: copyOf(func(h *corev1.Pod) { h.Labels[translate.LabelTenant] = "other" })},
		{name: "a copy of another pod", host: copyOf(func(h *corev1.Pod) { h.Annotations[translate.AnnotationName] = "db" })},
		{name: "a copy of a pod of another namespace", host: copyOf(func(h *corev1.Pod) { h.Annotations[translate.AnnotationNamespace] = "default" })},
		{name: "a copy of another kind", host: copyOf(func(h *corev1.Pod) { h.Annotations[translate.AnnotationKind] = "Secret" })},
		{name: "a stale copy of an earlier pod of the name", host: copyOf(func(h *corev1.Pod) { h.Annotations[translate.AnnotationUID] = "u0" })},
		{name: "a copy without a UID", host: copyOf(func(h *corev1.Pod) { delete(h.Annotations, translate.AnnotationUID) })},
		{name: "a pod without annotations", host: copyOf(func(h *corev1.Pod) { h.Annotations = nil })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := isCopyOf("acme", pod, tc.host); got != tc.want {
				t.Errorf("isCopyOf = %v, want %v", got, tc.want)
			}
		})
	}
}

// startServer runs a Server on loopback with a fresh tenant PKI; its
// clients point nowhere, so only requests that need no pod succeed.
func startServer(t *testing.T) (addr string, files pki.Files) {
	t.Helper()
	files, err := pki.Ensure(pki.Config{Dir: t.TempDir(), ClusterName: "acme", ServiceIP: net.ParseIP("10.96.0.1")}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nowhere := &rest.Config{Host: "https://127.0.0.1:1"}
	s, err := New(Config{
		Listener: l, Tenant: "acme", HostNamespace: "knest-acme",
		TenantPods: kubernetes.NewForConfigOrDie(nowhere).CoreV1(), HostConfig: nowhere,
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
	return l.Addr().String(), files
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

func TestOnlyTheAPIServersKubeletClientGetsIn(t *testing.T) {
	t.Parallel()
	addr, files := startServer(t)
	kubeletClient := pki.Leaf{Subject: pkix.Name{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"kubeadm:cluster-admins"}}}
	// What a tenant admin can get from the tenant's CSR signer: the right
	// name from the cluster CA, with a key of its own.
	fromTenantSigner, err := pki.Issue(files.CACert, files.CAKey, kubeletClient, time.Now())
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
		{name: "a certificate of the same name from the tenant's CSR signer", cert: &fromTenantSigner},
		{name: "the API server's key and name certified by the cluster CA", cert: ownKeyClusterCA},
		{name: "a certificate of the same name from the internal CA with another key", cert: &sameName},
		{name: "another tenant's kubelet client certificate", cert: loadPair(t, other.KubeletClientCert, other.KubeletClientKey)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, err := client(t, files.InternalCACert, tc.cert).Get("https://" + addr + "/healthz")
			if err != nil {
				if tc.accepted {
					t.Errorf("refused: %v", err)
				}
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			served := resp.StatusCode == http.StatusOK && string(body) == "ok"
			if served != tc.accepted {
				t.Errorf("GET /healthz: %s %q, want accepted=%v", resp.Status, body, tc.accepted)
			}
		})
	}
}

func TestOnlyTheStreamingPathsAreServed(t *testing.T) {
	t.Parallel()
	addr, files := startServer(t)
	c := client(t, files.InternalCACert, loadPair(t, files.KubeletClientCert, files.KubeletClientKey))
	for _, path := range []string{"/pods", "/runningpods/", "/stats/summary", "/configz", "/run/default/web/c", "/debug/pprof/", "/logs/", "/metrics", "/containerLogs/default/web"} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			resp, err := c.Get("https://" + addr + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("GET %s: %s, want 404", path, resp.Status)
			}
		})
	}
}

func TestServingCertificateNamesTheNodeAddressAndIsRenewed(t *testing.T) {
	t.Parallel()
	files, err := pki.Ensure(pki.Config{Dir: t.TempDir(), ClusterName: "acme", ServiceIP: net.ParseIP("10.96.0.1")}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s := &servingCert{caCertFile: files.InternalCACert, caKeyFile: files.InternalCAKey, addresses: []net.IP{net.ParseIP("10.1.2.3")}, now: func() time.Time { return now }}
	first, err := s.get(nil)
	if err != nil {
		t.Fatal(err)
	}
	// The API server checks it against the internal CA
	// (--kubelet-certificate-authority); a kubelet-serving certificate from
	// the tenant's signer must not pass, so neither may this one there.
	for _, tc := range []struct {
		ca       string
		verifies bool
	}{{files.InternalCACert, true}, {files.CACert, false}} {
		roots := x509.NewCertPool()
		caPEM, err := os.ReadFile(tc.ca)
		if err != nil {
			t.Fatal(err)
		}
		roots.AppendCertsFromPEM(caPEM)
		_, err = first.Leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "10.1.2.3", CurrentTime: now})
		if (err == nil) != tc.verifies {
			t.Errorf("serving certificate verified under %s: %v, want verified=%v", tc.ca, err, tc.verifies)
		}
	}
	if again, _ := s.get(nil); again != first {
		t.Error("a fresh certificate was issued again")
	}
	now = first.Leaf.NotAfter.Add(-pki.RenewBefore + time.Minute)
	renewed, err := s.get(nil)
	if err != nil {
		t.Fatal(err)
	}
	if renewed == first || !renewed.Leaf.NotAfter.After(first.Leaf.NotAfter) {
		t.Errorf("close to expiry: not renewed (NotAfter %s, was %s)", renewed.Leaf.NotAfter, first.Leaf.NotAfter)
	}
}

func TestConfigRequiresEverything(t *testing.T) {
	t.Parallel()
	if err := (Config{}).Validate(); err == nil {
		t.Error("an empty Config is valid")
	}
}

func TestLogOptions(t *testing.T) {
	t.Parallel()
	since := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	tests := []struct {
		name    string
		in      url.Values
		want    *corev1.PodLogOptions
		wantErr bool
	}{
		{name: "no options", in: url.Values{}, want: &corev1.PodLogOptions{}},
		{
			name: "every option the API server sends",
			in: url.Values{
				"follow": {"true"}, "previous": {"true"}, "timestamps": {"true"}, "sinceSeconds": {"60"},
				"tailLines": {"10"}, "limitBytes": {"4096"}, "stream": {"Stderr"},
			},
			want: &corev1.PodLogOptions{
				Follow: true, Previous: true, Timestamps: true, SinceSeconds: ptr.To[int64](60),
				TailLines: ptr.To[int64](10), LimitBytes: ptr.To[int64](4096), Stream: ptr.To("Stderr"),
			},
		},
		{name: "a since time", in: url.Values{"sinceTime": {"2026-01-02T03:04:05Z"}}, want: &corev1.PodLogOptions{SinceTime: &since}},
		{
			name: "what the kubelet API does not know is dropped",
			in:   url.Values{"container": {"other"}, "insecureSkipTLSVerifyBackend": {"true"}},
			want: &corev1.PodLogOptions{},
		},
		{name: "a flag that is not a boolean", in: url.Values{"follow": {"yes please"}}, wantErr: true},
		{name: "a count that is not a number", in: url.Values{"tailLines": {"ten"}}, wantErr: true},
		{name: "a time that is not RFC 3339", in: url.Values{"sinceTime": {"yesterday"}}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := logOptions(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Errorf("no error, got %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("logOptions (-want +got):\n%s", diff)
			}
		})
	}
}
