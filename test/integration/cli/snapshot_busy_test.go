package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/knest-dev/knest/pkg/translate"
	"github.com/knest-dev/knest/test/integration/framework"
)

// busyPods is how many pods the tenant creates while its snapshot is taken.
const busyPods = 300

// TestIntegrationSnapshotWhilePodsAreCreated takes a snapshot of a tenant
// on the devcluster while it creates 300 pods, lets the syncer run all 300
// on the host, and restores the snapshot in place: the tenant holds exactly
// the pods whose creation etcd had committed at the snapshot's revision
// (each create's resourceVersion is its etcd revision), and once the
// syncer has caught up the host runs exactly those pods, one host pod each
// with the restored pod's UID, and no orphan of the pods the restore took
// away.
func TestIntegrationSnapshotWhilePodsAreCreated(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	h := startHost(t)
	ctx := t.Context()
	h.addVolume(t, "tenant-data-1")
	create := h.knestAsync(t, "create", "busy", "--timeout=2m")
	pod := framework.StartKnestdAsPod(t, h.cfg, h.ca, "knest-busy", "knestd-0")
	pod.WaitReady(t, readyTimeout)
	mustSucceed(t, create(), "create busy")
	server := pod.Server(6443)

	// The chart's host quota allows 200 pods: this test needs 300.
	quotas, err := h.client.CoreV1().ResourceQuotas("knest-busy").List(ctx, metav1.ListOptions{})
	if err != nil || len(quotas.Items) == 0 {
		t.Fatalf("the tenant's host quota: %v (%d)", err, len(quotas.Items))
	}
	for _, q := range quotas.Items {
		if _, ok := q.Spec.Hard[corev1.ResourcePods]; ok {
			q.Spec.Hard[corev1.ResourcePods] = resource.MustParse(strconv.Itoa(2 * busyPods))
			if _, err := h.client.CoreV1().ResourceQuotas("knest-busy").Update(ctx, &q, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}

	r := h.knest(t, "connect", "busy", "--print", "--server="+server)
	mustSucceed(t, r, "connect --print")
	tenantCfg, err := clientcmd.RESTConfigFromKubeConfig([]byte(r.stdout))
	if err != nil {
		t.Fatal(err)
	}
	tenantCfg.QPS, tenantCfg.Burst = 200, 400
	tenant := framework.Client(t, tenantCfg)

	// Create the pods from a few workers; the snapshot starts after the
	// first 100.
	created := map[string]int64{} // name: etcd revision of its creation
	var mu sync.Mutex
	var wg sync.WaitGroup
	names := make(chan string)
	errs := make(chan error, busyPods)
	startSnapshot := make(chan struct{})
	var once sync.Once
	for range 8 {
		wg.Go(func() {
			for name := range names {
				p, err := tenant.CoreV1().Pods("default").Create(ctx, busyPod(name), metav1.CreateOptions{})
				if err != nil {
					errs <- fmt.Errorf("pod %s: %w", name, err)
					continue
				}
				rv, err := strconv.ParseInt(p.ResourceVersion, 10, 64)
				if err != nil {
					errs <- err
					continue
				}
				mu.Lock()
				created[name] = rv
				n := len(created)
				mu.Unlock()
				if n == 100 {
					once.Do(func() { close(startSnapshot) })
				}
			}
		})
	}
	go func() {
		for i := range busyPods {
			names <- fmt.Sprintf("busy-%03d", i)
		}
		close(names)
	}()
	<-startSnapshot
	dir := t.TempDir()
	r = h.knest(t, "snapshot", "create", "busy", "--server="+server, "--to="+dir)
	mustSucceed(t, r, "snapshot create busy while pods are being created")
	m := regexp.MustCompile(`written to file://(\S+):`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("snapshot create did not say where it wrote:\n%s", r.stdout)
	}
	file := m[1]
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	r = knestLocal(t, "snapshot", "list", "busy", "-o", "json", "--in="+dir)
	mustSucceed(t, r, "snapshot list")
	var infos []struct{ Revision string }
	if err := json.Unmarshal([]byte(r.stdout), &infos); err != nil || len(infos) != 1 {
		t.Fatalf("snapshot list -o json: %v\n%s", err, r.stdout)
	}
	revision, err := strconv.ParseInt(infos[0].Revision, 10, 64)
	if err != nil {
		t.Fatalf("snapshot revision %q: %v", infos[0].Revision, err)
	}
	var want []string // the pods committed at the snapshot's revision
	for name, rv := range created {
		if rv <= revision {
			want = append(want, name)
		}
	}
	slices.Sort(want)
	t.Logf("snapshot at etcd revision %d holds %d of the %d pods", revision, len(want), busyPods)
	if len(want) == 0 || len(want) == busyPods {
		t.Fatalf("the snapshot at revision %d holds %d of %d pods: it was not taken while they were being created", revision, len(want), busyPods)
	}

	// The syncer runs all of them on the host first.
	waitHostPods(t, ctx, h.client, tenant, busyPods, "before the restore")

	start := time.Now()
	r = h.knest(t, "snapshot", "restore", "busy", "--server="+server, "--from="+file)
	mustSucceed(t, r, "snapshot restore busy")
	t.Logf("restore took %s", time.Since(start).Round(time.Millisecond))
	pods, err := tenant.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range pods.Items {
		got = append(got, p.Name)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("after the restore the tenant has %d pods, want the %d committed at revision %d\nmissing: %v\nextra: %v",
			len(got), len(want), revision, minus(want, got), minus(got, want))
	}
	if rv, _ := strconv.ParseInt(pods.ResourceVersion, 10, 64); rv <= revision {
		t.Errorf("after the restore the list's resourceVersion is %d, want past the snapshot's %d (the restore raises it)", rv, revision)
	}
	waitHostPods(t, ctx, h.client, tenant, len(want), "after the restore")
}

func busyPod(name string) *corev1.Pod {
	small := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "busy"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "web", Image: "nginx",
			Resources: corev1.ResourceRequirements{Requests: small, Limits: small},
		}}},
	}
}

// waitHostPods waits until the host runs exactly one pod for each of the
// tenant's pods (same name and UID), n of them, and nothing else of the
// tenant's.
func waitHostPods(t *testing.T, ctx context.Context, host, tenant kubernetes.Interface, n int, when string) {
	t.Helper()
	var problem string
	err := wait.PollUntilContextTimeout(ctx, 2*time.Second, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		tp, err := tenant.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			problem = err.Error()
			return false, nil
		}
		hp, err := host.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: translate.LabelTenant + "=busy"})
		if err != nil {
			problem = err.Error()
			return false, nil
		}
		uids := map[string]string{}
		for _, p := range tp.Items {
			uids[p.Name] = string(p.UID)
		}
		seen := map[string]int{}
		var orphans []string
		for _, p := range hp.Items {
			a := p.Annotations
			if a[translate.AnnotationKind] != "Pod" {
				continue
			}
			name := a[translate.AnnotationName]
			if uid, ok := uids[name]; !ok || a[translate.AnnotationNamespace] != "default" || a[translate.AnnotationUID] != uid {
				orphans = append(orphans, p.Namespace+"/"+p.Name)
				continue
			}
			seen[name]++
		}
		var dups []string
		for name, c := range seen {
			if c > 1 {
				dups = append(dups, name)
			}
		}
		problem = fmt.Sprintf("tenant pods %d (want %d), host pods for them %d, orphans %d %v, duplicated %v",
			len(tp.Items), n, len(seen), len(orphans), orphans[:min(len(orphans), 5)], dups)
		return len(tp.Items) == n && len(seen) == n && len(orphans) == 0 && len(dups) == 0, nil
	})
	if err != nil {
		t.Fatalf("%s, the host pods did not match the tenant's: %s", when, problem)
	}
	t.Logf("%s: %s", when, problem)
}

func minus(a, b []string) []string {
	in := map[string]bool{}
	for _, s := range b {
		in[s] = true
	}
	var out []string
	for _, s := range a {
		if !in[s] {
			out = append(out, s)
		}
	}
	return out
}
