package knestd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/test/integration/framework"
)

// quota64MiB is the acceptance check's quota: knestd --etcd-quota-bytes 67108864.
const quota64MiB = 64 << 20

// TestIntegrationDatastoreLimits fills a tenant with 500 KB ConfigMaps until
// its datastore is read-only, and checks that etcd's own alarm never fires,
// that the tenant stays ready and can clean up, that the mode survives a
// restart and ends by itself within a minute of the cleanup, and that no
// acknowledged write is lost. It also checks the object-count cap.
func TestIntegrationDatastoreLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	dir := t.TempDir()
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policyFile, []byte("datastore:\n  objectCounts:\n    secrets: 20\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--name=fill", fmt.Sprintf("--secure-port=%d", framework.FreePort(t)),
		fmt.Sprintf("--etcd-quota-bytes=%d", quota64MiB), "--policy-file=" + policyFile, "--v=2"}
	k := framework.Start(t, dir, args...)
	logDatastoreLines(t, &k)
	k.WaitReady(t, readyTimeout)
	client := framework.Client(t, framework.AdminConfig(t, k.AdminKubeconfig()))
	ctx := t.Context()
	ns := createNamespace(t, client, "fill")

	t.Run("the object-count cap refuses one Secret too many, naming the limit", func(t *testing.T) {
		// The namespace may hold Secrets of its own; fill up to the cap.
		var err error
		for i := 0; i < 25 && err == nil; i++ {
			_, err = client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s-%d", i)}}, metav1.CreateOptions{})
		}
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "holds 20 secrets, its limit") || !strings.Contains(err.Error(), "datastore.objectCounts.secrets") {
			t.Fatalf("the 21st Secret: %v, want Forbidden naming the count and the limit", err)
		}
	})

	// Objects the tenant keeps through the mode: a Lease its controller
	// renews, and a ConfigMap held by a finalizer.
	lease, err := client.CoordinationV1().Leases(ns).Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "controller"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("a"), RenewTime: &metav1.MicroTime{Time: time.Now()}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "held", Finalizers: []string{"example.com/hold"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// The guard enters the mode on its estimate of writes it has not
	// measured yet (twice their size), and leaves it at the next
	// measurement if the data is below the lower mark: fill until the
	// measured mode holds.
	var acked []string
	for round := 0; ; round++ {
		acked = append(acked, fill(t, client, ns, round)...)
		if measuredReadOnly(t, client) || round == 20 {
			break
		}
	}
	t.Logf("%d ConfigMaps of 500 KB acknowledged before read-only mode", len(acked))
	size, inUse := metric(t, client, "knest_datastore_size_bytes"), metric(t, client, "knest_datastore_size_in_use_bytes")
	t.Logf("in the mode: %.1f MiB in use, a %.1f MiB file", inUse/(1<<20), size/(1<<20))
	if inUse >= quota64MiB {
		t.Errorf("the data reached the tenant's limit (%v bytes)", inUse)
	}
	if size >= 2*quota64MiB {
		t.Errorf("the file reached etcd's own quota (%v bytes)", size)
	}

	checkReadOnly(t, client, true)
	body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil || string(body) != "ok" {
		t.Errorf("/readyz in read-only mode: %q %v, want ok", body, err)
	}
	// The Event follows the condition.
	err = wait.PollUntilContextTimeout(ctx, time.Second, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		events, err := client.CoreV1().Events(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{FieldSelector: "reason=DatastoreReadOnly"})
		return err == nil && len(events.Items) > 0, nil
	})
	if err != nil {
		t.Errorf("no DatastoreReadOnly Event in kube-system: %v", err)
	}

	t.Run("in the mode, what cleans up and keeps controllers running works", func(t *testing.T) {
		cm, err := client.CoreV1().ConfigMaps(ns).Get(ctx, acked[0], metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		grown := cm.DeepCopy()
		grown.Data["more"] = "x"
		if _, err := client.CoreV1().ConfigMaps(ns).Update(ctx, grown, metav1.UpdateOptions{}); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "read-only") {
			t.Errorf("an update that grows a ConfigMap: %v, want Forbidden naming read-only mode", err)
		}
		// Shrunk by a little: once compacted, the update gives back what
		// it took off, and the fill may have ended less than a ConfigMap
		// above the lower mark (it did, 51.5 MiB against 51.2: cut to 1000
		// bytes, this one update ended the mode before the restart below).
		cm.Labels = nil
		cm.Data["k"] = cm.Data["k"][:len(cm.Data["k"])-1000]
		if _, err := client.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Errorf("an update that shrinks a ConfigMap: %v", err)
		}
		lease.Spec.HolderIdentity = ptr.To("b")
		lease.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
		if _, err := client.CoordinationV1().Leases(ns).Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
			t.Errorf("a Lease renewal: %v", err)
		}
		if err := client.CoreV1().ConfigMaps(ns).Delete(ctx, "held", metav1.DeleteOptions{}); err != nil {
			t.Fatalf("delete of a ConfigMap held by a finalizer: %v", err)
		}
		held, err := client.CoreV1().ConfigMaps(ns).Get(ctx, "held", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		held.Finalizers = nil
		if _, err := client.CoreV1().ConfigMaps(ns).Update(ctx, held, metav1.UpdateOptions{}); err != nil {
			t.Errorf("finalizer removal: %v", err)
		}
		nsObj, err := client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		nsObj.Status.Conditions = append(nsObj.Status.Conditions, corev1.NamespaceCondition{Type: "example.com/Audited", Status: corev1.ConditionTrue, Reason: "Audited", Message: "a status write that grows the object"})
		if _, err := client.CoreV1().Namespaces().UpdateStatus(ctx, nsObj, metav1.UpdateOptions{}); err != nil {
			t.Errorf("a status write: %v", err)
		}
	})

	// A restart in the mode comes up in it, before the first request. The
	// monitor's compactions move the measured use by small amounts, and the
	// fill may have ended just above the lower mark: make sure the mode
	// still holds before the restart, filling again if it ended.
	for round := 21; !measuredReadOnly(t, client); round++ {
		if round == 40 {
			t.Fatal("read-only mode does not come back")
		}
		acked = append(acked, fill(t, client, ns, round)...)
	}
	k.Stop(t, 30*time.Second)
	k = framework.Start(t, dir, args...)
	k.WaitReady(t, readyTimeout)
	_, err = client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after-restart"}}, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("a create right after a restart in read-only mode: %v, want Forbidden", err)
	}
	checkReadOnly(t, client, true)

	for _, name := range acked {
		if _, err := client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("acknowledged ConfigMap %s is lost: %v", name, err)
		}
	}

	// Clean up two thirds of the ConfigMaps; the mode ends by itself.
	kept := acked[:len(acked)/3]
	for _, name := range acked[len(kept):] {
		if err := deleteRetryingTimeouts(ctx, t, client, ns, name); err != nil {
			t.Fatalf("delete in read-only mode: %v", err)
		}
	}
	cleaned := time.Now()
	checkReadOnly(t, client, false)
	t.Logf("read-only mode ended %s after the cleanup", time.Since(cleaned).Round(time.Second))
	if took := time.Since(cleaned); took > time.Minute {
		t.Errorf("read-only mode ended %s after the cleanup, want within a minute", took)
	}
	// Writable again, knestd compacts every 30 s, and defragments the
	// file once that frees a tenth of the limit.
	var afterInUse, afterSize float64
	err = wait.PollUntilContextTimeout(ctx, 2*time.Second, 90*time.Second, true, func(context.Context) (bool, error) {
		afterInUse, afterSize = metric(t, client, "knest_datastore_size_in_use_bytes"), metric(t, client, "knest_datastore_size_bytes")
		return afterInUse < inUse*2/3 && afterSize < quota64MiB*8/10, nil
	})
	t.Logf("after the cleanup: %.1f MiB in use, a %.1f MiB file", afterInUse/(1<<20), afterSize/(1<<20))
	if err != nil {
		t.Errorf("the space is not given back within 90 s of the mode's end: %.1f MiB in use (%.1f before), a %.1f MiB file", afterInUse/(1<<20), inUse/(1<<20), afterSize/(1<<20))
	}
	if _, err := client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after-cleanup"}}, metav1.CreateOptions{}); err != nil {
		t.Errorf("a create after the mode ended: %v", err)
	}
	for _, name := range kept {
		if _, err := client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("acknowledged ConfigMap %s is lost: %v", name, err)
		}
	}
	if out := k.Output(); strings.Contains(out, "database space exceeded") || strings.Contains(out, "Cleared the tenant's etcd NOSPACE alarm") {
		t.Errorf("etcd's NOSPACE alarm fired:\n%s", out)
	}
}

// fill creates 500 KB ConfigMaps from two writers at once until the API
// server refuses them for read-only mode, and returns the names of those it
// acknowledged. Any other error fails the test: etcd's own "database space
// exceeded" above all.
func fill(t *testing.T, client kubernetes.Interface, ns string, round int) []string {
	t.Helper()
	value := strings.Repeat("x", 500_000)
	var (
		mu      sync.Mutex
		acked   []string
		refused error
		wg      sync.WaitGroup
	)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				name := fmt.Sprintf("big-%d-%d-%d", round, w, i)
				_, err := client.CoreV1().ConfigMaps(ns).Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"k": value}}, metav1.CreateOptions{})
				mu.Lock()
				switch {
				case err == nil:
					acked = append(acked, name)
				case apierrors.IsForbidden(err) || strings.Contains(err.Error(), "database space exceeded"):
					if refused == nil || !apierrors.IsForbidden(err) {
						refused = err
					}
				default:
					// A loaded machine times etcd out ("request timed
					// out"): not acknowledged, so not counted; go on.
					t.Logf("create %s: %v", name, err)
					err = nil
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	if !apierrors.IsForbidden(refused) || !strings.Contains(refused.Error(), "datastore is read-only") || !strings.Contains(refused.Error(), "of its 64.0 MiB limit") {
		t.Fatalf("filling the datastore ended with %v, want Forbidden naming read-only mode, the use and the limit", refused)
	}
	return acked
}

// measuredReadOnly says whether the kube-system Namespace's condition,
// which says what the monitor measured, is True after a few measurements.
func measuredReadOnly(t *testing.T, client kubernetes.Interface) bool {
	t.Helper()
	time.Sleep(10 * time.Second)
	sys, err := client.CoreV1().Namespaces().Get(t.Context(), metav1.NamespaceSystem, metav1.GetOptions{})
	if err != nil {
		t.Logf("kube-system: %v", err)
		return false
	}
	for _, c := range sys.Status.Conditions {
		if c.Type == "DatastoreReadOnly" {
			t.Logf("after the fill: %s %s", c.Status, c.Message)
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// checkReadOnly waits for the kube-system Namespace's DatastoreReadOnly
// condition and the read-only metric to say want.
func checkReadOnly(t *testing.T, client kubernetes.Interface, want bool) {
	t.Helper()
	status, value := corev1.ConditionFalse, 0.0
	if want {
		status, value = corev1.ConditionTrue, 1
	}
	var last string
	err := wait.PollUntilContextTimeout(t.Context(), time.Second, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		sys, err := client.CoreV1().Namespaces().Get(ctx, metav1.NamespaceSystem, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		for _, c := range sys.Status.Conditions {
			if c.Type == "DatastoreReadOnly" {
				last = fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
				return c.Status == status && metric(t, client, "knest_datastore_read_only") == value, nil
			}
		}
		last = "no DatastoreReadOnly condition"
		return false, nil
	})
	if err != nil {
		t.Fatalf("read-only mode is not %v: %s", want, last)
	}
}

// metric reads one gauge from the tenant API server's /metrics.
func metric(t *testing.T, client kubernetes.Interface, name string) float64 {
	t.Helper()
	body, err := client.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(t.Context())
	if err != nil {
		t.Fatalf("failed to read /metrics: %v", err)
	}
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("/metrics has no %s", name)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// logDatastoreLines logs knestd's datastore lines when the test fails: the
// framework's tail is full of the API server's retries.
func logDatastoreLines(t *testing.T, k **framework.Process) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, line := range strings.Split((*k).Output(), "\n") {
			if strings.Contains(line, "Datastore") || strings.Contains(line, "efragment") || strings.Contains(line, "NOSPACE") {
				t.Log(line)
			}
		}
	})
}

// deleteRetryingTimeouts deletes a ConfigMap as a client that retries
// would: a defragmentation blocks etcd for seconds (longer on a loaded
// machine), and a delete that etcd timed out on was not acknowledged; a
// retry finds it done or does it. Any other error is returned at once.
func deleteRetryingTimeouts(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, name string) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		err = client.CoreV1().ConfigMaps(ns).Delete(ctx, name, metav1.DeleteOptions{})
		if err == nil || apierrors.IsNotFound(err) && attempt > 0 {
			return nil
		}
		if !strings.Contains(err.Error(), "request timed out") && !apierrors.IsTimeout(err) && !apierrors.IsServerTimeout(err) {
			return err
		}
		t.Logf("delete of %s timed out (attempt %d), retrying: %v", name, attempt+1, err)
		time.Sleep(2 * time.Second)
	}
	return err
}
