package snapshot

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/test/integration/framework"
)

// TestIntegrationRestoredPodsMeetTheCurrentPolicy is the attack of a tenant
// that keeps a snapshot from a looser policy: a root pod admitted under the
// Pod Security baseline floor, restored into a knestd whose operator has
// since raised the floor to restricted. The restore
// never went through admission, so knestd checks the restored pods before
// its syncer starts: the root pod is deleted with an Event saying why, the
// compliant one stays.
func TestIntegrationRestoredPodsMeetTheCurrentPolicy(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	ctx := t.Context()
	dir := t.TempDir()
	k := framework.Start(t, dir, "--name=pol", "--secure-port="+strconv.Itoa(framework.FreePort(t)), "--isolation=soft")
	k.WaitReady(t, readyTimeout)
	client := framework.Client(t, framework.AdminConfig(t, k.AdminKubeconfig()))
	for _, p := range []*corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Name: "root", Namespace: "default"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "nonroot", Namespace: "default"}, Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65534),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{Name: "c", Image: "busybox", SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr.To(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			}}},
		}},
	} {
		if _, err := client.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatalf("soft profile refused pod %s: %v", p.Name, err)
		}
	}
	file := filepath.Join(t.TempDir(), "soft.knest")
	if out, err := framework.Run(t, 2*time.Minute, framework.KnestPath(), "snapshot", "create", "--tenant-kubeconfig", k.AdminKubeconfig(), "--to", "file://"+file); err != nil {
		t.Fatalf("knest snapshot create: %v\n%s", err, out)
	}
	k.Stop(t, 30*time.Second)

	dir2 := t.TempDir()
	strict := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(strict, []byte("profile: soft\npodSecurityLevel: restricted\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k2 := framework.Start(t, dir2, "--name=pol", "--secure-port="+strconv.Itoa(framework.FreePort(t)), "--isolation=soft", "--policy-file="+strict,
		"--restore-from="+file, "--snapshot-key-file="+filepath.Join(dir, "snapshot.key"))
	k2.WaitReady(t, readyTimeout)
	client2 := framework.Client(t, framework.AdminConfig(t, k2.AdminKubeconfig()))
	if _, err := client2.CoreV1().Pods("default").Get(ctx, "root", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the restored root pod survived the restricted policy: %v", err)
	}
	if _, err := client2.CoreV1().Pods("default").Get(ctx, "nonroot", metav1.GetOptions{}); err != nil {
		t.Errorf("the compliant restored pod is gone: %v", err)
	}
	events, err := client2.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range events.Items {
		if e.Reason == "RestoredPodRefused" && e.InvolvedObject.Name == "root" && strings.Contains(e.Message, "current policy") {
			found = true
		}
	}
	if !found {
		t.Error("no RestoredPodRefused Event tells the tenant why its pod is gone")
	}
}
