package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/pkg/translate"
	"github.com/knest-dev/knest/test/integration/framework"
)

// TestIntegrationSnapshotByName takes snapshots of a tenant named on the
// host (`knest snapshot create NAME`, reaching knestd with the admin
// kubeconfig it published, as `knest connect` does) into a directory and
// into an OCI registry (go-containerregistry's, in this process), lists
// them, refuses a corrupt one with the tenant untouched, and restores the
// registry's in place.
func TestIntegrationSnapshotByName(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	h := startHost(t)
	ctx := t.Context()
	h.addVolume(t, "tenant-data-1")

	create := h.knestAsync(t, "create", "shop", "--timeout=2m")
	pod := framework.StartKnestdAsPod(t, h.cfg, h.ca, "knest-shop", "knestd-0")
	pod.WaitReady(t, readyTimeout)
	mustSucceed(t, create(), "create shop")
	server := pod.Server(6443)

	// The chart keeps the snapshot key in a host Secret, which knestd
	// created at its first start, and off the data volume.
	keySecret, err := h.client.CoreV1().Secrets("knest-shop").Get(ctx, "knestd-snapshot-key", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the snapshot key Secret: %v", err)
	}
	if len(keySecret.Data["key"]) == 0 || keySecret.Labels["knest.io/control-plane"] != "shop" {
		t.Errorf("the snapshot key Secret holds %d bytes, labels %v", len(keySecret.Data["key"]), keySecret.Labels)
	}
	if pod.DataDir == "" {
		t.Fatal("knestd has no --data-dir")
	}
	if _, err := os.Stat(filepath.Join(pod.DataDir, "snapshot.key")); !os.IsNotExist(err) {
		t.Errorf("the data volume holds a snapshot key (%v)", err)
	}

	r := h.knest(t, "connect", "shop", "--print", "--server="+server)
	mustSucceed(t, r, "connect --print")
	tenantCfg, err := clientcmd.RESTConfigFromKubeConfig([]byte(r.stdout))
	if err != nil {
		t.Fatal(err)
	}
	tenant := framework.Client(t, tenantCfg)
	if _, err := tenant.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "kept"}, Data: map[string]string{"k": "v"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	repo := "oci://" + strings.TrimPrefix(reg.URL, "http://") + "/backups/shop"
	ociFlags := []string{"--plain-http", "--registry-config=" + filepath.Join(t.TempDir(), "config.json")}
	written := regexp.MustCompile(`written to (\S+):`)

	r = h.knest(t, append([]string{"snapshot", "create", "shop", "--server=" + server, "--to=" + repo}, ociFlags...)...)
	mustSucceed(t, r, "snapshot create shop --to oci://")
	m := written.FindStringSubmatch(r.stdout)
	if m == nil || !strings.HasPrefix(m[1], repo+":") {
		t.Fatalf("snapshot create did not say where it wrote in %s:\n%s", repo, r.stdout)
	}
	inRegistry := m[1]

	dir := t.TempDir()
	r = h.knest(t, "snapshot", "create", "shop", "--server="+server, "--to="+dir)
	mustSucceed(t, r, "snapshot create shop --to DIR")
	m = written.FindStringSubmatch(r.stdout)
	if m == nil || !strings.HasPrefix(m[1], "file://"+dir+"/shop-") {
		t.Fatalf("snapshot create did not write into %s:\n%s", dir, r.stdout)
	}
	inDir := strings.TrimPrefix(m[1], "file://")

	for _, in := range [][]string{{"--in=" + repo, ociFlags[0], ociFlags[1]}, {"--in=" + dir}} {
		r = knestLocal(t, append([]string{"snapshot", "list", "shop", "-o", "json"}, in...)...)
		mustSucceed(t, r, "snapshot list")
		var infos []struct{ Tenant, ID, Revision, Location string }
		if err := json.Unmarshal([]byte(r.stdout), &infos); err != nil {
			t.Fatalf("snapshot list -o json: %v\n%s", err, r.stdout)
		}
		if len(infos) != 1 || infos[0].Tenant != "shop" || infos[0].Revision == "" || (infos[0].Location != inRegistry && infos[0].Location != "file://"+inDir) {
			t.Errorf("snapshot list %v: %+v", in, infos)
		}
	}

	// The tenant moves on.
	if err := tenant.CoreV1().ConfigMaps("default").Delete(ctx, "kept", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := tenant.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "later"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Corrupt and truncated copies are refused with the reason, and the
	// tenant is unchanged.
	data, err := os.ReadFile(inDir)
	if err != nil {
		t.Fatal(err)
	}
	corrupt := filepath.Join(t.TempDir(), "corrupt.knest")
	bad := append([]byte(nil), data...)
	bad[len(bad)/2] ^= 0x55
	if err := os.WriteFile(corrupt, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(t.TempDir(), "truncated.knest")
	if err := os.WriteFile(truncated, data[:len(data)-100], 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{corrupt, truncated} {
		mustFail(t, h.knest(t, "snapshot", "restore", "shop", "--server="+server, "--from="+f), "restore of "+filepath.Base(f), "restore refused, the tenant is unchanged")
	}
	if _, err := tenant.CoreV1().ConfigMaps("default").Get(ctx, "later", metav1.GetOptions{}); err != nil {
		t.Errorf("after refused restores: %v", err)
	}

	r = h.knest(t, append([]string{"snapshot", "restore", "shop", "--server=" + server, "--from=" + inRegistry}, ociFlags...)...)
	mustSucceed(t, r, "snapshot restore shop --from oci://")
	if _, err := tenant.CoreV1().ConfigMaps("default").Get(ctx, "kept", metav1.GetOptions{}); err != nil {
		t.Errorf("after the restore, with the kubeconfig from before: ConfigMap kept: %v", err)
	}
	if _, err := tenant.CoreV1().ConfigMaps("default").Get(ctx, "later", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after the restore, ConfigMap later (made after the snapshot): %v, want NotFound", err)
	}
	mustFail(t, h.knest(t, "snapshot", "create", "nosuch"), "snapshot of a tenant that does not exist", "no tenant nosuch in namespace knest-nosuch")

	// The certificates of a tenant named on the host.
	r = h.knest(t, "certs", "check", "shop", "--server="+server)
	mustSucceed(t, r, "certs check shop")
	for _, want := range []string{"CERTIFICATE", "(served to this client)", "(this kubeconfig's client)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("certs check shop does not show %q:\n%s", want, r.stdout)
		}
	}
}

// knestLocal runs a knest command that does not reach a host.
func knestLocal(t *testing.T, args ...string) run {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), framework.KnestPath(), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Logf("knest %s:\n%s%s", strings.Join(args, " "), stderr.String(), stdout.String())
	return run{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// forwarder is a local TCP address whose target is set later: the new
// tenant's API address exists only once its knestd started, after `knest
// create` was given --server.
type forwarder struct {
	ln     net.Listener
	target atomic.Value
}

func newForwarder(t *testing.T) *forwarder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &forwarder{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				target, _ := f.target.Load().(string)
				if target == "" {
					return
				}
				u, err := url.Parse(target)
				if err != nil {
					return
				}
				up, err := net.Dial("tcp", u.Host)
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
	return f
}

func (f *forwarder) url() string { return "https://" + f.ln.Addr().String() }

func tenantConfig(t *testing.T, h *host, name, server string) *rest.Config {
	t.Helper()
	r := h.knest(t, "connect", name, "--print", "--server="+server)
	mustSucceed(t, r, "connect "+name)
	cfg, err := clientcmd.RESTConfigFromKubeConfig([]byte(r.stdout))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestIntegrationClone clones a tenant from its snapshot with `knest create
// NEW --from-snapshot`: the clone holds the source's objects, under its own
// CA and service-account key (the source's admin certificate and tokens
// are refused), both run side by side, and each syncer keeps to its own
// host namespace.
func TestIntegrationClone(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	h := startHost(t)
	ctx := t.Context()
	h.addVolume(t, "tenant-data-1")
	h.addVolume(t, "tenant-data-2")

	create := h.knestAsync(t, "create", "shop", "--timeout=2m", "--isolation=soft")
	a := framework.StartKnestdAsPod(t, h.cfg, h.ca, "knest-shop", "knestd-0")
	a.WaitReady(t, readyTimeout)
	mustSucceed(t, create(), "create shop")
	aCfg := tenantConfig(t, h, "shop", a.Server(6443))
	aClient := framework.Client(t, aCfg)
	if _, err := aClient.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "catalog"}, Data: map[string]string{"items": "3"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := aClient.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "synced"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := aClient.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "creds"}, StringData: map[string]string{"pw": "s3cret"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := aClient.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := aClient.CoreV1().ServiceAccounts("default").CreateToken(ctx, "default", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	aToken := tr.Status.Token

	dir := t.TempDir()
	r := h.knest(t, "snapshot", "create", "shop", "--server="+a.Server(6443), "--to="+dir)
	mustSucceed(t, r, "snapshot create shop")
	m := regexp.MustCompile(`written to file://(\S+):`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("snapshot create did not say where it wrote:\n%s", r.stdout)
	}
	snap := m[1]

	mustFail(t, h.knest(t, "create", "shop", "--from-snapshot="+snap, "--upgrade"), "clone onto an existing tenant", "creates a new tenant")

	fw := newForwarder(t)
	create = h.knestAsync(t, "create", "shop-copy", "--from-snapshot="+snap, "--server="+fw.url(), "--timeout=3m", "--isolation=soft")
	b := framework.StartKnestdAsPod(t, h.cfg, h.ca, "knest-shop-copy", "knestd-0")
	fw.target.Store(b.Server(6443))
	b.WaitReady(t, readyTimeout)
	r = create()
	mustSucceed(t, r, "create shop-copy --from-snapshot")
	if !strings.Contains(r.stderr, "Cloning tenant shop") || !strings.Contains(r.stdout, "Restored snapshot") {
		t.Errorf("create --from-snapshot did not say it cloned:\n%s%s", r.stderr, r.stdout)
	}
	if _, err := h.client.CoreV1().Secrets("knest-shop-copy").Get(ctx, "knestd-clone-key", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the source's snapshot key stayed in the clone's namespace (err %v)", err)
	}
	aKey, _ := h.client.CoreV1().Secrets("knest-shop").Get(ctx, "knestd-snapshot-key", metav1.GetOptions{})
	bKey, err := h.client.CoreV1().Secrets("knest-shop-copy").Get(ctx, "knestd-snapshot-key", metav1.GetOptions{})
	if err != nil || aKey == nil || bytes.Equal(aKey.Data["key"], bKey.Data["key"]) {
		t.Errorf("the clone's snapshot key is not its own (err %v)", err)
	}

	bCfg := tenantConfig(t, h, "shop-copy", b.Server(6443))
	bClient := framework.Client(t, bCfg)
	cm, err := bClient.CoreV1().ConfigMaps("default").Get(ctx, "catalog", metav1.GetOptions{})
	if err != nil || cm.Data["items"] != "3" {
		t.Fatalf("the clone lacks the source's ConfigMap: %v %v", cm, err)
	}
	if s, err := bClient.CoreV1().Secrets("default").Get(ctx, "creds", metav1.GetOptions{}); err != nil || string(s.Data["pw"]) != "s3cret" {
		t.Errorf("the clone lacks the source's Secret: %v", err)
	}
	if bytes.Equal(aCfg.CAData, bCfg.CAData) {
		t.Error("the clone serves under the source's CA")
	}

	// The source's credentials do not work on the clone: its admin
	// certificate and its service-account token, presented to the clone
	// (trusting the clone's CA), are refused.
	for what, cfg := range map[string]*rest.Config{
		"the source's admin certificate": {Host: bCfg.Host, TLSClientConfig: rest.TLSClientConfig{CAData: bCfg.CAData, ServerName: bCfg.ServerName, CertData: aCfg.CertData, KeyData: aCfg.KeyData}},
		"the source's token":             {Host: bCfg.Host, TLSClientConfig: rest.TLSClientConfig{CAData: bCfg.CAData, ServerName: bCfg.ServerName}, BearerToken: aToken},
	} {
		_, err := framework.Client(t, cfg).CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
		if !apierrors.IsUnauthorized(err) {
			t.Errorf("%s on the clone: %v, want 401 Unauthorized", what, err)
		}
	}
	// The token still works on the source.
	if _, err := framework.Client(t, &rest.Config{Host: aCfg.Host, TLSClientConfig: rest.TLSClientConfig{CAData: aCfg.CAData, ServerName: aCfg.ServerName}, BearerToken: aToken}).
		CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err != nil && !apierrors.IsForbidden(err) {
		t.Errorf("the source's token on the source: %v", err)
	}

	// Side by side: a change in one is not in the other, and each syncer
	// copies to its own host namespace only.
	if _, err := bClient.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "only-in-copy"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := aClient.CoreV1().ConfigMaps("default").Get(ctx, "only-in-copy", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a ConfigMap made in the clone is in the source (err %v)", err)
	}
	hostServices := func(ns, tenantName string) int {
		l, err := h.client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{LabelSelector: translate.LabelTenant + "=" + tenantName})
		if err != nil {
			t.Fatal(err)
		}
		return len(l.Items)
	}
	err = wait.PollUntilContextTimeout(ctx, time.Second, 2*time.Minute, true, func(context.Context) (bool, error) {
		return hostServices("knest-shop-copy", "shop-copy") > 0 && hostServices("knest-shop", "shop") > 0, nil
	})
	if err != nil {
		t.Errorf("the tenants' Services are not on the host: source %d, clone %d", hostServices("knest-shop", "shop"), hostServices("knest-shop-copy", "shop-copy"))
	}
	// The clone's kubernetes Service is its own knestd's, not the source's.
	own, err := h.client.CoreV1().Services("knest-shop-copy").Get(ctx, "knestd", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		k, err := bClient.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
		return err == nil && k.Spec.ClusterIP == own.Spec.ClusterIP, nil
	})
	if err != nil {
		t.Errorf("the clone's default/kubernetes Service does not have its knestd's address %s", own.Spec.ClusterIP)
	}
	if n := hostServices("knest-shop", "shop-copy") + hostServices("knest-shop-copy", "shop"); n != 0 {
		t.Errorf("%d host Services of one tenant in the other's namespace", n)
	}
	if _, err := aClient.CoreV1().ConfigMaps("default").Get(ctx, "catalog", metav1.GetOptions{}); err != nil {
		t.Errorf("the source after the clone: %v", err)
	}
}
