package e2e

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
)

const (
	poolLabel     = "knest.io/pool"
	sandboxedPool = "sandboxed"
)

// createNamespace creates a namespace with a random suffix on the host and
// deletes it after the spec.
func createNamespace(ctx SpecContext, prefix string) string {
	name := prefix + "-" + rand.String(6)
	_, err := env.host.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred(), "creating namespace %s", name)
	DeferCleanup(func(ctx SpecContext) {
		err := env.host.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
		Expect(ignoreNotFound(err)).To(Succeed(), "deleting namespace %s", name)
	})
	Eventually(func(g Gomega) {
		_, err := env.host.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		g.Expect(err).NotTo(HaveOccurred())
	}).WithContext(ctx).WithTimeout(30*time.Second).Should(Succeed(), "default service account in %s", name)
	return name
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func smallPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "c", Image: "registry.k8s.io/pause:3.10",
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
			},
		}}},
	}
}

var _ = Describe("The host cluster", func() {
	It("has Ready nodes, with a sandboxed pool", func(ctx SpecContext) {
		nodes, err := env.host.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		Expect(err).NotTo(HaveOccurred(), "listing nodes")
		Expect(nodes.Items).NotTo(BeEmpty(), "the host has nodes")
		sandboxed := 0
		for _, n := range nodes.Items {
			Expect(isNodeReady(n)).To(BeTrue(), "node %s is Ready", n.Name)
			if n.Labels[poolLabel] == sandboxedPool {
				sandboxed++
			}
		}
		Expect(sandboxed).To(BeNumerically(">=", 1), "at least one node is in the sandboxed pool")
	})

	It("runs a Deployment's pods", func(ctx SpecContext) {
		ns := createNamespace(ctx, "deploy")
		labels := map[string]string{"app": "web"}
		pod := smallPod("web")
		By("creating a Deployment of 3 replicas")
		_, err := env.host.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](3),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: pod.Spec},
			},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "creating the deployment")
		By("waiting for 3 Running and Ready pods with IPs on nodes")
		Eventually(func(g Gomega) {
			pods, err := env.host.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(pods.Items).To(HaveLen(3))
			for _, p := range pods.Items {
				g.Expect(p.Status.Phase).To(Equal(corev1.PodRunning), "pod %s phase", p.Name)
				g.Expect(p.Spec.NodeName).NotTo(BeEmpty(), "pod %s is scheduled", p.Name)
				g.Expect(p.Status.PodIP).NotTo(BeEmpty(), "pod %s has an IP", p.Name)
				g.Expect(isPodReady(p)).To(BeTrue(), "pod %s is Ready", p.Name)
			}
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed(), "the deployment's pods run")
		Eventually(func(g Gomega) {
			d, err := env.host.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(d.Status.AvailableReplicas).To(Equal(int32(3)))
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed(), "the deployment reports 3 available replicas")
	})

	It("rejects pods over a ResourceQuota", func(ctx SpecContext) {
		ns := createNamespace(ctx, "quota")
		By("creating a quota of 2 pods")
		_, err := env.host.CoreV1().ResourceQuotas(ns).Create(ctx, &corev1.ResourceQuota{
			ObjectMeta: metav1.ObjectMeta{Name: "pods"},
			Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("2")}},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "creating the quota")
		// Admission only enforces a quota once the quota controller has
		// filled in its status.
		Eventually(func(g Gomega) {
			q, err := env.host.CoreV1().ResourceQuotas(ns).Get(ctx, "pods", metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(q.Status.Hard).To(HaveKey(corev1.ResourcePods))
		}).WithContext(ctx).WithTimeout(30*time.Second).Should(Succeed(), "the quota controller has processed the quota")
		for i := range 2 {
			_, err := env.host.CoreV1().Pods(ns).Create(ctx, smallPod(fmt.Sprintf("p%d", i)), metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred(), "pod %d of 2 is within the quota", i)
		}
		By("creating a third pod")
		_, err = env.host.CoreV1().Pods(ns).Create(ctx, smallPod("p2"), metav1.CreateOptions{})
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "a third pod is Forbidden, got %v", err)
		Expect(err.Error()).To(ContainSubstring("exceeded quota"), "the error names the quota")
	})

	It("places pods of RuntimeClass kata on the sandboxed pool only", func(ctx SpecContext) {
		ns := createNamespace(ctx, "kata")
		for i := range 3 {
			p := smallPod(fmt.Sprintf("sandboxed-%d", i))
			p.Spec.RuntimeClassName = ptr.To("kata")
			_, err := env.host.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred(), "creating a kata pod")
		}
		plain := smallPod("plain")
		_, err := env.host.CoreV1().Pods(ns).Create(ctx, plain, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "creating a pod without a RuntimeClass")
		Eventually(func(g Gomega) {
			pods, err := env.host.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(pods.Items).To(HaveLen(4))
			for _, p := range pods.Items {
				g.Expect(p.Spec.NodeName).NotTo(BeEmpty(), "pod %s is scheduled", p.Name)
				node, err := env.host.CoreV1().Nodes().Get(ctx, p.Spec.NodeName, metav1.GetOptions{})
				g.Expect(err).NotTo(HaveOccurred())
				if p.Spec.RuntimeClassName != nil {
					g.Expect(node.Labels[poolLabel]).To(Equal(sandboxedPool), "kata pod %s runs on the sandboxed pool", p.Name)
				} else {
					g.Expect(node.Labels[poolLabel]).NotTo(Equal(sandboxedPool), "pod %s without kata stays off the tainted sandboxed pool", p.Name)
				}
			}
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed(), "pods are placed by RuntimeClass")
	})
})

func isNodeReady(n corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func isPodReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
