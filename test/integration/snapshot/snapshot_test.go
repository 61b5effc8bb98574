package snapshot

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/pkg/snapshot"
	"github.com/knest-dev/knest/test/integration/framework"
)

const readyTimeout = 120 * time.Second

var widgets = schema.GroupVersionResource{Group: "example.knest.io", Version: "v1", Resource: "widgets"}

// tenantState is what the test writes before the snapshot and expects back.
type tenantState struct {
	ns, secretValue, token string
}

// TestIntegrationSnapshotRestoreInPlace snapshots a running tenant, changes
// it, refuses bad snapshots without touching it, restores the good one in
// place (knestd re-executes itself, same PID), and finds every object back
// with the old admin kubeconfig and an old service-account token still
// working; then starts a fresh data dir from the same snapshot.
func TestIntegrationSnapshotRestoreInPlace(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	dir := t.TempDir()
	// A fixed port: knestd re-executes with the same flags, and the admin
	// kubeconfig names the port.
	port := framework.FreePort(t)
	k := framework.Start(t, dir, "--name=snap", "--secure-port="+strconv.Itoa(port))
	k.WaitReady(t, readyTimeout)
	kubeconfig := k.AdminKubeconfig()
	cfg := framework.AdminConfig(t, kubeconfig)
	client := framework.Client(t, cfg)
	state := populate(t, cfg, client)

	file := filepath.Join(t.TempDir(), "snap.knest")
	start := time.Now()
	out, err := framework.Run(t, 2*time.Minute, framework.KnestPath(), "snapshot", "create", "--tenant-kubeconfig", kubeconfig, "--to", "file://"+file)
	if err != nil {
		t.Fatalf("knest snapshot create: %v\n%s", err, out)
	}
	t.Logf("snapshot create took %s: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
	sealed, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{state.secretValue, "PRIVATE KEY", "BEGIN CERTIFICATE", "kind-of-blue"} {
		if bytes.Contains(sealed, []byte(secret)) {
			t.Errorf("the snapshot file holds %q in clear", secret)
		}
	}

	t.Run("only an authorized identity reaches the snapshot endpoint", func(t *testing.T) {
		noRights := tokenFor(t, client, state.ns, "nobody")
		for name, c := range map[string]*rest.Config{
			"a service account without the grant": withToken(cfg, noRights),
			"an anonymous client":                 withToken(cfg, ""),
		} {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				code := status(t, c, method, "/knest/snapshot")
				if code != http.StatusForbidden && code != http.StatusUnauthorized {
					t.Errorf("%s: %s /knest/snapshot = %d, want 401 or 403", name, method, code)
				}
			}
		}
	})

	// Changes after the snapshot that the restore must undo.
	ctx := t.Context()
	if err := client.CoreV1().ConfigMaps(state.ns).Delete(ctx, "settings", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().Secrets(state.ns).Delete(ctx, "creds", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.AppsV1().Deployments(state.ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(cfg)
	if err := dyn.Resource(widgets).Namespace(state.ns).Delete(ctx, "w1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	later, err := client.CoreV1().ConfigMaps(state.ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after-snapshot"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pid := k.Pid()

	t.Run("bad snapshots are refused with the reason and change nothing", func(t *testing.T) {
		key := key(t, dir)
		otherKey := make([]byte, snapshot.KeySize)
		rand.Read(otherKey)
		corrupt := bytes.Clone(sealed)
		corrupt[len(corrupt)/2] ^= 0x40
		bad := []struct {
			name, want string
			data       []byte
		}{
			{"a corrupt file", "corrupt", corrupt},
			{"a truncated file", "truncated", sealed[:len(sealed)*2/3]},
			{"a file sealed with another key", "another snapshot key", reseal(t, sealed, key, otherKey, nil)},
			{"a snapshot of a newer Kubernetes", "newer than this knestd", reseal(t, sealed, key, key, func(m *snapshot.Manifest) { m.KubernetesVersion = "v1.99.0" })},
			{"a snapshot of another tenant", `tenant "other"`, reseal(t, sealed, key, key, func(m *snapshot.Manifest) { m.Tenant = "other" })},
			{"not a snapshot at all", "not a knest snapshot", []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n")},
		}
		for _, b := range bad {
			path := filepath.Join(t.TempDir(), "bad.knest")
			if err := os.WriteFile(path, b.data, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := framework.Run(t, 2*time.Minute, framework.KnestPath(), "snapshot", "restore", "--tenant-kubeconfig", kubeconfig, "--from", "file://"+path)
			if err == nil {
				t.Errorf("%s: restore succeeded:\n%s", b.name, out)
				continue
			}
			if !strings.Contains(out, b.want) || !strings.Contains(out, "the tenant is unchanged") {
				t.Errorf("%s: restore failed without the reason %q:\n%s", b.name, b.want, out)
			}
		}
		if got := strings.Count(k.Output(), framework.ReadyMessage); got != 1 {
			t.Errorf("knestd became ready %d times, want once: a refused restore restarted it", got)
		}
		if _, err := client.CoreV1().ConfigMaps(state.ns).Get(ctx, "after-snapshot", metav1.GetOptions{}); err != nil {
			t.Errorf("the tenant's data changed after refused restores: %v", err)
		}
		for _, name := range []string{"restore-staging", "restore-ready"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				t.Errorf("a refused restore left %s in the data dir", name)
			}
		}
	})

	// A watch from a revision the restored data never had must be told to
	// relist, not wait for revisions that mean something else.
	w, err := client.CoreV1().ConfigMaps(state.ns).Watch(ctx, metav1.ListOptions{ResourceVersion: later.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	start = time.Now()
	out, err = framework.Run(t, 5*time.Minute, framework.KnestPath(), "snapshot", "restore", "--tenant-kubeconfig", kubeconfig, "--from", "file://"+file)
	if err != nil {
		t.Fatalf("knest snapshot restore: %v\n%s", err, out)
	}
	t.Logf("snapshot restore took %s: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
	if got := strings.Count(k.Output(), framework.ReadyMessage); got != 2 {
		t.Errorf("knestd became ready %d times, want twice (start, restore)", got)
	}
	if k.Exited() || k.Pid() != pid {
		t.Errorf("knestd's process changed across the restore (pid %d, was %d, exited %v)", k.Pid(), pid, k.Exited())
	}

	t.Run("every object is back and later ones are gone", func(t *testing.T) {
		checkState(t, cfg, state)
		if _, err := client.CoreV1().ConfigMaps(state.ns).Get(ctx, "after-snapshot", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("a ConfigMap created after the snapshot survived the restore: %v", err)
		}
	})

	t.Run("a watch from before the restore is told to relist", func(t *testing.T) {
		var gone bool
		timeout := time.After(30 * time.Second)
	loop:
		for {
			select {
			case ev, ok := <-w.ResultChan():
				if !ok {
					break loop
				}
				if ev.Type == watch.Error {
					if st := apierrors.FromObject(ev.Object); apierrors.IsResourceExpired(st) || apierrors.IsGone(st) {
						gone = true
					}
					break loop
				}
			case <-timeout:
				break loop
			}
		}
		// The restart ended that watch; a new one from its revision
		// must be expired (compacted) rather than accepted.
		w2, err := client.CoreV1().ConfigMaps(state.ns).Watch(ctx, metav1.ListOptions{ResourceVersion: later.ResourceVersion})
		if err != nil {
			gone = gone || apierrors.IsResourceExpired(err) || apierrors.IsGone(err)
		} else {
			select {
			case ev := <-w2.ResultChan():
				if ev.Type == watch.Error {
					st := apierrors.FromObject(ev.Object)
					gone = apierrors.IsResourceExpired(st) || apierrors.IsGone(st)
				} else {
					t.Errorf("a watch from revision %s got %s after the restore, want expired", later.ResourceVersion, ev.Type)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("a watch from revision %s was accepted after the restore, want expired", later.ResourceVersion)
			}
			w2.Stop()
		}
		if !gone {
			t.Error("watchers from before the restore were not told to relist")
		}
	})

	t.Run("a fresh data dir starts from the snapshot", func(t *testing.T) {
		dir2 := t.TempDir()
		start := time.Now()
		k2 := framework.Start(t, dir2, "--name=snap", "--secure-port="+strconv.Itoa(framework.FreePort(t)),
			"--restore-from="+file, "--snapshot-key-file="+filepath.Join(dir, "snapshot.key"))
		k2.WaitReady(t, readyTimeout)
		t.Logf("knestd --restore-from ready in %s", time.Since(start).Round(time.Millisecond))
		cfg2 := framework.AdminConfig(t, k2.AdminKubeconfig())
		checkState(t, cfg2, state)
		// The restored PKI is the tenant's: its first admin kubeconfig
		// works against the new process.
		old := rest.CopyConfig(cfg)
		old.Host = cfg2.Host
		if _, err := framework.Client(t, old).CoreV1().Namespaces().Get(t.Context(), state.ns, metav1.GetOptions{}); err != nil {
			t.Errorf("the original admin credentials do not work on the restored data dir: %v", err)
		}
		k2.Stop(t, 30*time.Second)

		// Starting again with the same flags is a no-op restore.
		k3 := framework.Start(t, dir2, k2.Args[1:]...)
		k3.WaitReady(t, readyTimeout)
		k3.Stop(t, 30*time.Second)

		// A data dir that holds a tenant is never overwritten.
		other := filepath.Join(t.TempDir(), "other.knest")
		if err := os.WriteFile(other, reseal(t, sealed, key(t, dir), key(t, dir), nil), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := framework.Run(t, time.Minute, framework.KnestdPath(), "--data-dir="+dir2, "--name=snap", "--secure-port=0",
			"--restore-from="+other, "--snapshot-key-file="+filepath.Join(dir, "snapshot.key"))
		if err == nil || !strings.Contains(out, "already holds a tenant") {
			t.Errorf("--restore-from onto a used data dir: err %v, want a refusal:\n%s", err, out)
		}
	})
}

// populate writes the objects the snapshot must keep.
func populate(t *testing.T, cfg *rest.Config, client kubernetes.Interface) tenantState {
	t.Helper()
	ctx := t.Context()
	st := tenantState{ns: "shop", secretValue: "s3cret-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: st.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().ConfigMaps(st.ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"mood": "kind-of-blue"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Secrets(st.ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "creds"}, StringData: map[string]string{"password": st.secretValue},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "web"}
	if _, err := client.AppsV1().Deployments(st.ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65534)},
					Containers:      []corev1.Container{{Name: "web", Image: "nginx"}},
				},
			},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ext := apiextensionsclient.NewForConfigOrDie(cfg)
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.example.knest.io"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "example.knest.io", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"spec": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{"size": {Type: "integer"}}},
					},
				}},
			}},
		},
	}
	if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(cfg)
	for i, name := range []string{"w1", "w2"} {
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "example.knest.io/v1", "kind": "Widget",
			"metadata": map[string]any{"name": name}, "spec": map[string]any{"size": int64(i + 1)},
		}}
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			_, err := dyn.Resource(widgets).Namespace(st.ns).Create(ctx, obj, metav1.CreateOptions{})
			return err == nil, nil
		})
		if err != nil {
			t.Fatalf("failed to create Widget %s: %v", name, err)
		}
	}
	// A service account that may read ConfigMaps, and a long-lived token.
	if _, err := client.CoreV1().ServiceAccounts(st.ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "reader"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.RbacV1().RoleBindings(st.ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "reader", Namespace: st.ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	st.token = tokenFor(t, client, st.ns, "reader")
	return st
}

// checkState finds every object populate wrote, through cfg and through
// the old service-account token.
func checkState(t *testing.T, cfg *rest.Config, st tenantState) {
	t.Helper()
	ctx := t.Context()
	client := framework.Client(t, cfg)
	cm, err := client.CoreV1().ConfigMaps(st.ns).Get(ctx, "settings", metav1.GetOptions{})
	if err != nil || cm.Data["mood"] != "kind-of-blue" {
		t.Errorf("ConfigMap settings = %v, %v; want it back", cm.Data, err)
	}
	secret, err := client.CoreV1().Secrets(st.ns).Get(ctx, "creds", metav1.GetOptions{})
	if err != nil || string(secret.Data["password"]) != st.secretValue {
		t.Errorf("Secret creds: %v; want it back, readable", err)
	}
	if d, err := client.AppsV1().Deployments(st.ns).Get(ctx, "web", metav1.GetOptions{}); err != nil || *d.Spec.Replicas != 2 {
		t.Errorf("Deployment web: %v; want it back", err)
	}
	list, err := dynamic.NewForConfigOrDie(cfg).Resource(widgets).Namespace(st.ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 2 {
		t.Errorf("Widgets: %v items, %v; want 2", itemsLen(list), err)
	}
	sa := framework.Client(t, withToken(cfg, st.token))
	if _, err := sa.CoreV1().ConfigMaps(st.ns).Get(ctx, "settings", metav1.GetOptions{}); err != nil {
		t.Errorf("the service-account token from before the snapshot does not work: %v", err)
	}
}

func itemsLen(l *unstructured.UnstructuredList) int {
	if l == nil {
		return 0
	}
	return len(l.Items)
}

func tokenFor(t *testing.T, client kubernetes.Interface, ns, name string) string {
	t.Helper()
	ctx := t.Context()
	if _, err := client.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		if _, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	tr, err := client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](24 * 3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// withToken is cfg's server with a bearer token instead of the admin's
// client certificate ("" for an anonymous client).
func withToken(cfg *rest.Config, token string) *rest.Config {
	c := rest.AnonymousClientConfig(cfg)
	c.BearerToken = token
	return c
}

func status(t *testing.T, cfg *rest.Config, method, path string) int {
	t.Helper()
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), method, cfg.Host+path, strings.NewReader("x"))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// reseal opens a sealed snapshot with key, lets change edit its manifest,
// and seals it again with newKey: what only the holder of the snapshot key
// could do, to make snapshots the restore must refuse for other reasons.
func reseal(t *testing.T, sealed, key, newKey []byte, change func(*snapshot.Manifest)) []byte {
	t.Helper()
	r, err := snapshot.Open(bytes.NewReader(sealed), key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	m, err := snapshot.Extract(r, dir)
	if err != nil {
		t.Fatal(err)
	}
	if change != nil {
		change(&m)
	}
	files := []snapshot.File{}
	for _, name := range []string{snapshot.EtcdName, snapshot.EncryptionKeyName, snapshot.ValuesName} {
		files = append(files, snapshot.File{Name: name, Path: filepath.Join(dir, name)})
	}
	entries, _ := os.ReadDir(filepath.Join(dir, snapshot.PKIDir))
	for _, e := range entries {
		files = append(files, snapshot.File{Name: snapshot.PKIDir + "/" + e.Name(), Path: filepath.Join(dir, snapshot.PKIDir, e.Name())})
	}
	var out bytes.Buffer
	w, err := snapshot.Seal(&out, newKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := snapshot.WriteArchive(w, m, files); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// key is the snapshot key of the knestd on data dir dir.
func key(t *testing.T, dir string) []byte {
	t.Helper()
	key, err := snapshot.LoadKey(filepath.Join(dir, "snapshot.key"))
	if err != nil {
		t.Fatal(err)
	}
	return key
}
