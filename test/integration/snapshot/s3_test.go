package snapshot

import (
	"encoding/json"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/knest-dev/knest/test/integration/framework"
)

// TestIntegrationSnapshotS3 takes a running tenant's snapshot into an
// S3-protocol server (gofakes3 with its in-memory backend, in this test's
// process; it does not check signatures), lists it there, and restores it
// in place from there, all with the knest CLI configured by the usual AWS
// environment variables.
func TestIntegrationSnapshotS3(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	backend := s3mem.New()
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	defer srv.Close()
	if err := backend.CreateBucket("backups"); err != nil {
		t.Fatal(err)
	}
	// The CLI processes inherit these.
	t.Setenv("AWS_ACCESS_KEY_ID", "knest-test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "knest-test-secret")
	t.Setenv("AWS_ENDPOINT_URL_S3", srv.URL)

	dir := t.TempDir()
	k := framework.Start(t, dir, "--name=s3shop", "--secure-port="+strconv.Itoa(framework.FreePort(t)))
	k.WaitReady(t, readyTimeout)
	ctx := t.Context()
	client := framework.Client(t, framework.AdminConfig(t, k.AdminKubeconfig()))
	if _, err := client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	out, err := framework.Run(t, 2*time.Minute, framework.KnestPath(), "snapshot", "create", "--tenant-kubeconfig", k.AdminKubeconfig(), "--to", "s3://backups/s3shop/")
	if err != nil {
		t.Fatalf("knest snapshot create --to s3://: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`written to (s3://backups/s3shop/s3shop-\S+\.knest)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("snapshot create did not say where in the bucket it wrote:\n%s", out)
	}
	out, err = framework.Run(t, time.Minute, framework.KnestPath(), "snapshot", "list", "--in", "s3://backups/s3shop/", "-o", "json")
	if err != nil {
		t.Fatalf("knest snapshot list --in s3://: %v\n%s", err, out)
	}
	var infos []struct{ Tenant, Location, Revision string }
	if err := json.Unmarshal([]byte(out), &infos); err != nil || len(infos) != 1 || infos[0].Tenant != "s3shop" || infos[0].Location != m[1] || infos[0].Revision == "" {
		t.Fatalf("snapshot list: %+v (%v)\n%s", infos, err, out)
	}

	if err := client.CoreV1().ConfigMaps("default").Delete(ctx, "kept", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	out, err = framework.Run(t, 5*time.Minute, framework.KnestPath(), "snapshot", "restore", "--tenant-kubeconfig", k.AdminKubeconfig(), "--from", m[1])
	if err != nil {
		t.Fatalf("knest snapshot restore --from s3://: %v\n%s", err, out)
	}
	if _, err := client.CoreV1().ConfigMaps("default").Get(ctx, "kept", metav1.GetOptions{}); err != nil {
		t.Errorf("after the restore from S3, ConfigMap kept: %v", err)
	}
	out, err = framework.Run(t, time.Minute, framework.KnestPath(), "snapshot", "restore", "--tenant-kubeconfig", k.AdminKubeconfig(), "--from", "s3://backups/s3shop/nope.knest")
	if err == nil {
		t.Errorf("restore of a key that does not exist succeeded:\n%s", out)
	}
}
