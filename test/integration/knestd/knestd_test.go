package knestd

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/test/integration/framework"
)

const readyTimeout = 90 * time.Second

// TestIntegrationControlPlane starts one knestd and checks what a tenant
// relies on: workload controllers, service-account tokens with RBAC,
// authentication on every path, and secrets encrypted at rest.
func TestIntegrationControlPlane(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	dir := t.TempDir()
	k := framework.Start(t, dir, "--name=it", "--secure-port=0")
	k.WaitReady(t, readyTimeout)
	cfg := framework.AdminConfig(t, k.AdminKubeconfig())
	client := framework.Client(t, cfg)

	t.Run("version reports the Kubernetes release", func(t *testing.T) {
		v, err := client.Discovery().ServerVersion()
		if err != nil {
			t.Fatal(err)
		}
		if v.GitVersion != "v1.37.2" || v.Major != "1" || v.Minor != "37" {
			t.Errorf("server version = %s (%s.%s), want v1.37.2", v.GitVersion, v.Major, v.Minor)
		}
	})

	t.Run("a deployment gets a replicaset and three pending pods", func(t *testing.T) {
		ctx := t.Context()
		ns := createNamespace(t, client, "deploy")
		labels := map[string]string{"app": "web"}
		_, err := client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](3),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{
						SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65534)},
						Containers:      []corev1.Container{{Name: "web", Image: "nginx"}},
					},
				},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var pods *corev1.PodList
		err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			pods, err = client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			return err == nil && len(pods.Items) == 3, nil
		})
		if err != nil {
			t.Fatalf("3 pods did not appear: %v (have %d)", err, len(pods.Items))
		}
		rs, err := client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil || len(rs.Items) != 1 {
			t.Fatalf("want 1 replicaset, got %v (err %v)", len(rs.Items), err)
		}
		for _, p := range pods.Items {
			if p.Status.Phase != corev1.PodPending || p.Spec.NodeName != "" {
				t.Errorf("pod %s: phase %s node %q, want Pending and unscheduled (the tenant has no nodes)", p.Name, p.Status.Phase, p.Spec.NodeName)
			}
			if len(p.OwnerReferences) != 1 || p.OwnerReferences[0].Name != rs.Items[0].Name {
				t.Errorf("pod %s is not owned by replicaset %s: %v", p.Name, rs.Items[0].Name, p.OwnerReferences)
			}
		}
	})

	t.Run("a service-account token authenticates and RBAC denies it until bound", func(t *testing.T) {
		ctx := t.Context()
		ns := createNamespace(t, client, "sa")
		tr := robotToken(t, client, ns, 600)
		review, err := client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
			Spec: authenticationv1.TokenReviewSpec{Token: tr.Status.Token},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		wantUser := "system:serviceaccount:" + ns + ":robot"
		if !review.Status.Authenticated || review.Status.User.Username != wantUser {
			t.Fatalf("token review: authenticated=%v user=%q error=%q, want %q", review.Status.Authenticated, review.Status.User.Username, review.Status.Error, wantUser)
		}

		robot := framework.Client(t, &rest.Config{Host: cfg.Host, TLSClientConfig: rest.TLSClientConfig{CAData: caData(t, cfg)}, BearerToken: tr.Status.Token})
		if _, err := robot.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Fatalf("listing pods before a binding: err = %v, want Forbidden", err)
		}
		if _, err := client.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "robot-view"},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "view"},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "robot", Namespace: ns}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
			_, err := robot.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			return err == nil, nil
		})
		if err != nil {
			t.Fatalf("listing pods after binding view never succeeded: %v", err)
		}
		if _, err := robot.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("listing pods in another namespace: err = %v, want Forbidden", err)
		}
		ssar, err := robot.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "delete", Resource: "pods"}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ssar.Status.Allowed {
			t.Errorf("view must not allow deleting pods")
		}
	})

	t.Run("unauthenticated requests get 401 except on health endpoints", func(t *testing.T) {
		anon := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		cases := map[string]int{
			"/readyz": 200, "/livez": 200, "/healthz": 200,
			// Only the three paths themselves: per-check paths need credentials.
			"/readyz/etcd": 401, "/livez/ping": 401,
			"/": 401, "/api": 401, "/apis": 401, "/version": 401, "/metrics": 401,
			"/openapi/v2": 401, "/openapi/v3": 401, "/api/v1/namespaces": 401,
			"/api/v1/namespaces/default/secrets": 401, "/apis/apps/v1/deployments": 401,
			"/.well-known/openid-configuration": 401, "/openid/v1/jwks": 401, "/debug/pprof/": 401,
		}
		for path, want := range cases {
			resp, err := anon.Get(cfg.Host + path)
			if err != nil {
				t.Errorf("GET %s: %v", path, err)
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("anonymous GET %s = %d, want %d", path, resp.StatusCode, want)
			}
		}
	})

	t.Run("the request headers authenticate only with the front proxy's certificate", func(t *testing.T) {
		// The API server's TLS layer and its request-header authenticator
		// read the front-proxy CA once (pkg/controlplane certfiles.go);
		// a client certificate of the cluster CA, which tenant users
		// hold, does not make the headers count.
		pkiDir := filepath.Join(dir, "pki")
		as := func(certFile, keyFile string) string {
			c := rest.CopyConfig(cfg)
			c.TLSClientConfig = rest.TLSClientConfig{CAData: cfg.CAData, CAFile: cfg.CAFile, CertFile: certFile, KeyFile: keyFile}
			c.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
				return transport.NewAuthProxyRoundTripper("alice", "", []string{"devs"}, nil, rt)
			}
			review, err := framework.Client(t, c).AuthenticationV1().SelfSubjectReviews().Create(t.Context(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return review.Status.UserInfo.Username + " " + strings.Join(review.Status.UserInfo.Groups, ",")
		}
		if got, want := as(filepath.Join(pkiDir, "front-proxy-client.crt"), filepath.Join(pkiDir, "front-proxy-client.key")), "alice devs,system:authenticated"; got != want {
			t.Errorf("front proxy with X-Remote-User alice: %q, want %q", got, want)
		}
		if got := as(filepath.Join(pkiDir, "admin.crt"), filepath.Join(pkiDir, "admin.key")); !strings.HasPrefix(got, "knest-admin ") {
			t.Errorf("admin certificate with X-Remote-User alice: %q, want knest-admin", got)
		}
	})

	t.Run("a secret value never reaches the disk in plain text", func(t *testing.T) {
		ctx := t.Context()
		ns := createNamespace(t, client, "secret")
		marker := "knest-marker-" + randomHex(t, 16)
		name := "s-" + randomHex(t, 6)
		if _, err := client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			StringData: map[string]string{"password": marker},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		got, err := client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil || string(got.Data["password"]) != marker {
			t.Fatalf("secret does not read back: %v", err)
		}
		// The key path is stored in clear, the value is not: finding the
		// name proves the search looks where the data is.
		if !dirContains(t, filepath.Join(dir, "etcd"), []byte("/registry/secrets/"+ns+"/"+name)) {
			t.Fatalf("the secret's key is not in the etcd files: the search does not look in the right place")
		}
		if !dirContains(t, filepath.Join(dir, "etcd"), []byte("k8s:enc:secretbox:v1:")) {
			t.Errorf("no secretbox-encrypted value in the etcd files")
		}
		if dirContains(t, dir, []byte(marker)) {
			t.Errorf("the secret's value appears in plain text under the data dir")
		}
		if dirContains(t, dir, []byte(base64.StdEncoding.EncodeToString([]byte(marker)))) {
			t.Errorf("the secret's value appears base64-encoded under the data dir")
		}
	})
}

// TestIntegrationRestart checks that a restart keeps objects and identity,
// that shutdown is quick, and that a second knestd cannot share the data dir.
func TestIntegrationRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	dir := t.TempDir()
	port := framework.FreePort(t)
	args := []string{"--name=restart", fmt.Sprintf("--secure-port=%d", port)}
	k := framework.Start(t, dir, args...)
	k.WaitReady(t, readyTimeout)
	oldKubeconfig := filepath.Join(t.TempDir(), "old-admin.kubeconfig")
	copyFile(t, k.AdminKubeconfig(), oldKubeconfig)
	client := framework.Client(t, framework.AdminConfig(t, oldKubeconfig))
	ctx := t.Context()
	ns := createNamespace(t, client, "keep")
	cm, err := client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "kept"}, StringData: map[string]string{"k": "secret"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	out, err := framework.Run(t, 30*time.Second, framework.KnestdPath(), "--data-dir="+dir, "--name=restart", "--secure-port=0")
	if err == nil || !strings.Contains(out, "is in use: locked by another process") {
		t.Errorf("a second knestd on the same data dir: err=%v output=%q, want an 'in use' error", err, out)
	}

	if took := k.Stop(t, 10*time.Second); took > 5*time.Second {
		t.Errorf("shutdown took %s, want under 5s", took)
	}

	k2 := framework.Start(t, dir, args...)
	k2.WaitReady(t, readyTimeout)
	got, err := client.CoreV1().ConfigMaps(ns).Get(ctx, "kept", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the admin kubeconfig from before the restart does not work: %v", err)
	}
	if got.UID != cm.UID || got.Data["k"] != "v" {
		t.Errorf("configmap after restart: uid %s data %v, want uid %s data k=v", got.UID, got.Data, cm.UID)
	}
	s, err := client.CoreV1().Secrets(ns).Get(ctx, "kept", metav1.GetOptions{})
	if err != nil || string(s.Data["k"]) != "secret" {
		t.Errorf("secret after restart: %v %v", s, err)
	}
}

// TestIntegrationBadInput checks that bad input gives one clear line, a
// non-zero exit, and leaves existing data alone.
func TestIntegrationBadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	busy := framework.FreePort(t)
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", busy))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	corruptKey := filepath.Join(t.TempDir(), "bad.key")
	if err := os.WriteFile(corruptKey, []byte("this is not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string)
		args    func(dir string) []string
		want    string
	}{
		{
			name: "an unwritable data dir",
			args: func(string) []string { return []string{"--data-dir=" + filepath.Join(notADir, "data")} },
			want: "is not usable",
		},
		{
			name: "a port already in use",
			args: func(dir string) []string { return []string{"--data-dir=" + dir, fmt.Sprintf("--secure-port=%d", busy)} },
			want: fmt.Sprintf("cannot listen on 127.0.0.1:%d", busy),
		},
		{
			name: "a corrupt encryption key file",
			args: func(dir string) []string {
				return []string{"--data-dir=" + dir, "--secure-port=0", "--encryption-key-file=" + corruptKey}
			},
			want: "encryption key file " + corruptKey + " is corrupt",
		},
		{
			name: "a corrupt generated key in the data dir",
			prepare: func(t *testing.T, dir string) {
				if err := os.WriteFile(filepath.Join(dir, "encryption.key"), []byte("garbage"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			args: func(dir string) []string { return []string{"--data-dir=" + dir, "--secure-port=0"} },
			want: "encryption.key is corrupt",
		},
		{
			name: "a CA certificate without its key",
			prepare: func(t *testing.T, dir string) {
				if err := os.MkdirAll(filepath.Join(dir, "pki"), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "pki", "ca.crt"), []byte("garbage"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			args: func(dir string) []string { return []string{"--data-dir=" + dir, "--secure-port=0"} },
			want: "ca.key is missing",
		},
		{
			name: "an invalid flag value",
			args: func(dir string) []string { return []string{"--data-dir=" + dir, "--service-cidr=10.96.0.1/12"} },
			want: "has host bits set",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			// Existing data that must survive the failed start.
			if err := os.WriteFile(filepath.Join(dir, "precious"), []byte("keep me"), 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.prepare != nil {
				tc.prepare(t, dir)
			}
			before := tree(t, dir)
			out, err := framework.Run(t, 60*time.Second, framework.KnestdPath(), tc.args(dir)...)
			if err == nil {
				t.Fatalf("knestd succeeded, want a failure; output:\n%s", out)
			}
			// Besides the line knestd logs its version with at start,
			// one line says what is wrong.
			var lines []string
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				if !strings.Contains(l, `"Starting knestd"`) {
					lines = append(lines, l)
				}
			}
			if len(lines) != 1 {
				t.Errorf("want exactly one line of output besides the version, got %d:\n%s", len(lines), out)
			}
			if !strings.HasPrefix(lines[len(lines)-1], "knestd: ") || !strings.Contains(out, tc.want) {
				t.Errorf("output %q does not name the problem (want %q)", out, tc.want)
			}
			after := tree(t, dir)
			for path, content := range before {
				if after[path] != content {
					t.Errorf("%s was changed or removed by the failed start", path)
				}
			}
		})
	}
}

func createNamespace(t *testing.T, client kubernetes.Interface, prefix string) string {
	t.Helper()
	ns, err := client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Pods need the namespace's default ServiceAccount.
	err = wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("default service account in %s: %v", ns.Name, err)
	}
	return ns.Name
}

func caData(t *testing.T, cfg *rest.Config) []byte {
	t.Helper()
	if len(cfg.CAData) > 0 {
		return cfg.CAData
	}
	data, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func dirContains(t *testing.T, dir string, needle []byte) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		// Sockets (knestd's egress socket) hold no data.
		if err != nil || !d.Type().IsRegular() || found {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		found = bytes.Contains(data, needle)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		out[path] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// robotToken creates ServiceAccount "robot" in ns and a token for it that
// lasts seconds.
func robotToken(t *testing.T, client kubernetes.Interface, ns string, seconds int64) *authenticationv1.TokenRequest {
	t.Helper()
	ctx := t.Context()
	if _, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "robot"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "robot", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(seconds)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}
