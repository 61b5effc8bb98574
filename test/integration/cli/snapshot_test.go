package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

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
