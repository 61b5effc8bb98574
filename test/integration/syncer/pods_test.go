package syncer

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/pkg/syncer/podsync"
	"github.com/knest-dev/knest/pkg/syncer/resources/nodes"
	"github.com/knest-dev/knest/pkg/syncer/resources/pods"
	"github.com/knest-dev/knest/pkg/translate"
)

func simplePod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			// Pod Security restricted, as the default hard profile requires.
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65534)},
			Containers:      []corev1.Container{{Name: "c", Image: "busybox"}},
		},
	}
}

func (e *env) tenantPod(ctx context.Context, ns, name string) (*corev1.Pod, error) {
	return e.tenant.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
}

func (e *env) hostPod(ctx context.Context, ns, name string) (*corev1.Pod, error) {
	return e.host.CoreV1().Pods(hostNamespace).Get(ctx, hostName(ns, name), metav1.GetOptions{})
}

func TestIntegrationPods(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := setUp(t)
	ctx := t.Context()
	const ns = "default"
	if _, err := e.tenant.CoreV1().Pods(ns).Create(ctx, simplePod("web"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	var tenantPod *corev1.Pod
	t.Run("a tenant pod runs on the host and its status comes back", func(t *testing.T) {
		within(t, 30*time.Second, "tenant pod Running with an IP", func(ctx context.Context) (bool, error) {
			p, err := e.tenantPod(ctx, ns, "web")
			if err != nil {
				return false, err
			}
			tenantPod = p
			return p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" && p.Spec.NodeName != "", nil
		})
		h, err := e.hostPod(ctx, ns, "web")
		if err != nil {
			t.Fatal(err)
		}
		if tenantPod.Status.PodIP != h.Status.PodIP {
			t.Errorf("tenant pod IP %s, host pod IP %s", tenantPod.Status.PodIP, h.Status.PodIP)
		}
		if tenantPod.Spec.NodeName == h.Spec.NodeName || !strings.HasPrefix(tenantPod.Spec.NodeName, "knest-node-") {
			t.Errorf("tenant pod bound to %q: want a virtual node alias, never the host node %q", tenantPod.Spec.NodeName, h.Spec.NodeName)
		}
		if h.Spec.ServiceAccountName != pods.HostServiceAccount || ptr.Deref(h.Spec.AutomountServiceAccountToken, true) {
			t.Errorf("host pod runs as %q (automount %v), want %q without a token", h.Spec.ServiceAccountName, h.Spec.AutomountServiceAccountToken, pods.HostServiceAccount)
		}
		api, err := e.tenant.CoreV1().Services(ns).Get(ctx, "kubernetes", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		env := map[string]string{}
		for _, v := range h.Spec.Containers[0].Env {
			env[v.Name] = v.Value
		}
		if env["KUBERNETES_SERVICE_HOST"] != api.Spec.ClusterIP || env["KUBERNETES_SERVICE_PORT"] != "443" {
			t.Errorf("KUBERNETES_SERVICE_HOST/PORT = %q/%q, want the tenant API server's Service %s:443", env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"], api.Spec.ClusterIP)
		}
	})

	t.Run("the virtual node is Ready with a fresh Lease", func(t *testing.T) {
		node, err := e.tenant.CoreV1().Nodes().Get(ctx, tenantPod.Spec.NodeName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ready := false
		for _, c := range node.Status.Conditions {
			ready = ready || (c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue)
		}
		if len(node.Status.Addresses) == 0 || tenantPod.Status.HostIP != node.Status.Addresses[0].Address {
			t.Errorf("tenant pod hostIP %q, want its virtual node's address %v", tenantPod.Status.HostIP, node.Status.Addresses)
		}
		if !ready || len(node.Status.Images) != 0 || node.Labels[nodes.LabelVirtual] != "true" {
			t.Errorf("virtual node: ready=%v images=%d labels=%v", ready, len(node.Status.Images), node.Labels)
		}
		lease, err := e.tenant.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, node.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if age := time.Since(lease.Spec.RenewTime.Time); age > nodes.LeaseDuration {
			t.Errorf("lease renewed %s ago", age)
		}
	})

	t.Run("NetworkPolicies reach the host confined; host pods follow namespace labels", func(t *testing.T) {
		np := &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
				Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{
					{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}},
				}}},
				Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{
					{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0"}},
				}}},
			},
		}
		if _, err := e.tenant.NetworkingV1().NetworkPolicies(ns).Create(ctx, np, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var host *networkingv1.NetworkPolicy
		within(t, 5*time.Second, "host NetworkPolicy", func(ctx context.Context) (bool, error) {
			h, err := e.host.NetworkingV1().NetworkPolicies(hostNamespace).Get(ctx, hostName(ns, "web"), metav1.GetOptions{})
			host = h
			return err == nil, nil
		})
		if host.Spec.PodSelector.MatchLabels[translate.LabelTenant] != tenantName || host.Spec.PodSelector.MatchLabels[translate.LabelNamespace] != ns {
			t.Errorf("host pod selector %v is not confined to the tenant namespace", host.Spec.PodSelector)
		}
		if len(host.Spec.Egress) != 0 {
			t.Errorf("egress to 0.0.0.0/0 reached the host: %+v", host.Spec.Egress)
		}
		from := host.Spec.Ingress[0].From[0].PodSelector
		if from == nil || from.MatchLabels[translate.NamespaceLabelKey("team")] != "a" || from.MatchLabels[translate.LabelTenant] != tenantName {
			t.Errorf("namespace selector not turned into a tenant pod selector: %+v", host.Spec.Ingress)
		}
		nsObj, err := e.tenant.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		nsObj.Labels["team"] = "a"
		if _, err := e.tenant.CoreV1().Namespaces().Update(ctx, nsObj, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		within(t, 5*time.Second, "host pod labelled with its namespace's new label", func(ctx context.Context) (bool, error) {
			h, err := e.hostPod(ctx, ns, "web")
			return err == nil && h.Labels[translate.NamespaceLabelKey("team")] == "a", nil
		})
	})

	t.Run("ephemeral containers reach the running host pod", func(t *testing.T) {
		p, err := e.tenantPod(ctx, ns, "web")
		if err != nil {
			t.Fatal(err)
		}
		p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, corev1.EphemeralContainer{
			EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: "busybox"}, TargetContainerName: "c",
		})
		if _, err := e.tenant.CoreV1().Pods(ns).UpdateEphemeralContainers(ctx, "web", p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		within(t, 5*time.Second, "debug container on the host pod", func(ctx context.Context) (bool, error) {
			h, err := e.hostPod(ctx, ns, "web")
			return err == nil && len(h.Spec.EphemeralContainers) == 1 && h.Spec.EphemeralContainers[0].Name == "debug", nil
		})
		h, err := e.hostPod(ctx, ns, "web")
		if err != nil {
			t.Fatal(err)
		}
		if sc := h.Spec.EphemeralContainers[0].SecurityContext; sc == nil || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "NET_RAW") ||
			h.Spec.EphemeralContainers[0].ImagePullPolicy != corev1.PullAlways {
			t.Errorf("the ephemeral container lacks the hard profile's forced fields: %+v", h.Spec.EphemeralContainers[0])
		}
		// In-place resize is covered by unit tests (pods.Build) only: the
		// API server allows it only for pods whose container statuses report
		// resources, which KWOK's simulated containers do not.
	})

	t.Run("kubectl debug --profile=sysadmin is refused: no privileged ephemeral container reaches the host", func(t *testing.T) {
		p, err := e.tenantPod(ctx, ns, "web")
		if err != nil {
			t.Fatal(err)
		}
		p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, corev1.EphemeralContainer{
			EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "root", Image: "busybox",
				SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}}, TargetContainerName: "c",
		})
		_, err = e.tenant.CoreV1().Pods(ns).UpdateEphemeralContainers(ctx, "web", p, metav1.UpdateOptions{})
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "privileged") {
			t.Fatalf("a privileged ephemeral container: %v, want a refusal naming privileged", err)
		}
	})

	t.Run("a pod the tenant marks Failed through pods/status is stopped on the host", func(t *testing.T) {
		if _, err := e.tenant.CoreV1().Pods(ns).Create(ctx, simplePod("marked"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		within(t, 20*time.Second, "tenant pod Running", func(ctx context.Context) (bool, error) {
			p, err := e.tenantPod(ctx, ns, "marked")
			return err == nil && p.Status.Phase == corev1.PodRunning, nil
		})
		p, err := e.tenantPod(ctx, ns, "marked")
		if err != nil {
			t.Fatal(err)
		}
		p.Status.Phase = corev1.PodFailed
		if _, err := e.tenant.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		within(t, 20*time.Second, "host pod stopped", func(ctx context.Context) (bool, error) {
			h, err := e.hostPod(ctx, ns, "marked")
			return apierrors.IsNotFound(err) || (err == nil && h.DeletionTimestamp != nil), nil
		})
		// A finished pod stays bound to its virtual node; the subtests below
		// expect the node to empty.
		if err := e.tenant.CoreV1().Pods(ns).Delete(ctx, "marked", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
			t.Fatal(err)
		}
		within(t, 20*time.Second, "the finished pod gone", func(ctx context.Context) (bool, error) {
			_, err := e.tenantPod(ctx, ns, "marked")
			return apierrors.IsNotFound(err), nil
		})
	})

	t.Run("a host pod removed by the host fails the tenant pod, which is not recreated", func(t *testing.T) {
		if err := e.host.CoreV1().Pods(hostNamespace).Delete(ctx, hostName(ns, "web"), metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
			t.Fatal(err)
		}
		within(t, 20*time.Second, "tenant pod Failed", func(ctx context.Context) (bool, error) {
			p, err := e.tenantPod(ctx, ns, "web")
			return err == nil && p.Status.Phase == corev1.PodFailed && p.Status.Reason == podsync.ReasonHostPodGone, nil
		})
		time.Sleep(2 * time.Second)
		if _, err := e.hostPod(ctx, ns, "web"); !apierrors.IsNotFound(err) {
			t.Errorf("the host pod was recreated for a failed tenant pod: %v", err)
		}
	})

	t.Run("a tenant delete deletes the host pod, then the tenant pod ends terminal", func(t *testing.T) {
		if _, err := e.tenant.CoreV1().Pods(ns).Create(ctx, simplePod("gone"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		within(t, 30*time.Second, "pod Running", func(ctx context.Context) (bool, error) {
			p, err := e.tenantPod(ctx, ns, "gone")
			return err == nil && p.Status.Phase == corev1.PodRunning, nil
		})
		w, err := e.tenant.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=gone"})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		if err := e.tenant.CoreV1().Pods(ns).Delete(ctx, "gone", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](1)}); err != nil {
			t.Fatal(err)
		}
		var lastPhase corev1.PodPhase
		timeout := time.After(30 * time.Second)
		for deleted := false; !deleted; {
			select {
			case ev := <-w.ResultChan():
				p, ok := ev.Object.(*corev1.Pod)
				if !ok {
					continue
				}
				if ev.Type == "DELETED" {
					deleted = true
					continue
				}
				lastPhase = p.Status.Phase
			case <-timeout:
				t.Fatal("tenant pod not deleted within 30s")
			}
		}
		if lastPhase != corev1.PodFailed && lastPhase != corev1.PodSucceeded {
			t.Errorf("the tenant pod was deleted in phase %q: a terminal phase must come first", lastPhase)
		}
		if _, err := e.hostPod(ctx, ns, "gone"); !apierrors.IsNotFound(err) {
			t.Errorf("host pod still there: %v", err)
		}
	})

	t.Run("a claim reaches the host and its status comes back", func(t *testing.T) {
		claim := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: "data"},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
				VolumeName:  "someone-elses-volume",
			},
		}
		// A claim naming a host volume would bind another tenant's data.
		_, err := e.tenant.CoreV1().PersistentVolumeClaims(ns).Create(ctx, claim, metav1.CreateOptions{})
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "spec.volumeName") {
			t.Fatalf("a claim naming a host volume: %v, want a refusal naming spec.volumeName", err)
		}
		claim.Spec.VolumeName = ""
		if _, err := e.tenant.CoreV1().PersistentVolumeClaims(ns).Create(ctx, claim, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var hostClaim *corev1.PersistentVolumeClaim
		within(t, 5*time.Second, "host claim", func(ctx context.Context) (bool, error) {
			c, err := e.host.CoreV1().PersistentVolumeClaims(hostNamespace).Get(ctx, hostName(ns, "data"), metav1.GetOptions{})
			hostClaim = c
			return err == nil, nil
		})
		if hostClaim.Spec.VolumeName != "" {
			t.Errorf("the host claim names volume %q: a tenant must not pick host volumes", hostClaim.Spec.VolumeName)
		}
		// The devcluster has no provisioner: give its volume binder a
		// volume that fits, as an operator's storage would.
		pv := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: "it-data-" + strings.ToLower(string(hostClaim.UID))[:8]},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
				AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/knest-it"}},
			},
		}
		if _, err := e.host.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		within(t, 30*time.Second, "tenant claim Bound", func(ctx context.Context) (bool, error) {
			c, err := e.tenant.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
			return err == nil && c.Status.Phase == corev1.ClaimBound && c.Status.Capacity.Storage().String() == "1Gi", nil
		})
	})

	t.Run("an unused virtual node is removed", func(t *testing.T) {
		if err := e.tenant.CoreV1().Pods(ns).Delete(ctx, "web", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
			t.Fatal(err)
		}
		within(t, 2*time.Minute, "virtual node gone", func(ctx context.Context) (bool, error) {
			_, err := e.tenant.CoreV1().Nodes().Get(ctx, tenantPod.Spec.NodeName, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
	})
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestIntegrationPodsSurviveACrash kills knestd (SIGKILL) while 300 tenant
// pods are being synced; after a restart every tenant pod has exactly one
// host pod and runs.
func TestIntegrationPodsSurviveACrash(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	const n = 300
	e := setUp(t)
	ctx := t.Context()
	const ns = "default"

	// Eight creators at about 100 pods a second; a create that fails while
	// knestd is down is retried until it lands (AlreadyExists: it landed).
	var created atomic.Int32
	var wg sync.WaitGroup
	names := make(chan string, n)
	for i := range n {
		names <- "crash-" + strconv.Itoa(i)
	}
	close(names)
	tenant := func() kubernetes.Interface {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.tenant
	}
	for range 8 {
		wg.Go(func() {
			for name := range names {
				for {
					_, err := tenant().CoreV1().Pods(ns).Create(ctx, simplePod(name), metav1.CreateOptions{})
					if err == nil || apierrors.IsAlreadyExists(err) {
						break
					}
					if ctx.Err() != nil {
						return
					}
					time.Sleep(200 * time.Millisecond)
				}
				created.Add(1)
				time.Sleep(80 * time.Millisecond)
			}
		})
	}
	// Kill mid-way: tenant pods still being created, host pods being made.
	within(t, time.Minute, "half the tenant pods created and host pods appearing", func(ctx context.Context) (bool, error) {
		list, err := e.host.CoreV1().Pods(hostNamespace).List(ctx, metav1.ListOptions{LabelSelector: translate.LabelTenant + "=" + tenantName})
		return err == nil && created.Load() >= n/2 && len(list.Items) >= 10, nil
	})
	e.knestd.Kill()
	hostBefore, err := e.host.CoreV1().Pods(hostNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killed knestd (SIGKILL) with %d of %d tenant pods created and %d host pods", created.Load(), n, len(hostBefore.Items))
	e.mu.Lock()
	e.startKnestd(t)
	e.mu.Unlock()
	wg.Wait()
	restarted := time.Now()

	within(t, 3*time.Minute, "all tenant pods Running", func(ctx context.Context) (bool, error) {
		list, err := e.tenant.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		running := 0
		for _, p := range list.Items {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		return running == n, nil
	})
	t.Logf("all %d tenant pods Running %s after the restart", n, time.Since(restarted).Round(time.Second))
	hosts, err := e.host.CoreV1().Pods(hostNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tenants, err := e.tenant.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	byUID := map[string]int{}
	for _, p := range tenants.Items {
		byUID[string(p.UID)] = 0
	}
	for _, h := range hosts.Items {
		uid := h.Annotations[translate.AnnotationUID]
		if _, ok := byUID[uid]; !ok {
			t.Errorf("host pod %s is an orphan (tenant uid %q)", h.Name, uid)
			continue
		}
		byUID[uid]++
	}
	for uid, count := range byUID {
		if count != 1 {
			t.Errorf("tenant pod %s has %d host pods, want exactly 1", uid, count)
		}
	}
	if len(hosts.Items) != n {
		t.Errorf("%d host pods, want exactly %d", len(hosts.Items), n)
	}
}
