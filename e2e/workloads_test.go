package e2e

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// podTemplate is a small long-running pod template labelled app=name.
func podTemplate(name string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			// Pod Security restricted, as the default hard profile requires.
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65534)},
			Containers:      []corev1.Container{{Name: "main", Image: "registry.k8s.io/pause:3.10"}},
		},
	}
}

// hostPodsOf lists the host pods of a tenant namespace.
func hostPodsOf(ctx SpecContext, g Gomega, ns string) []corev1.Pod {
	list, err := env.host.CoreV1().Pods(env.tenantHostNamespace).List(ctx, metav1.ListOptions{LabelSelector: "knest.io/namespace=" + ns})
	g.Expect(err).NotTo(HaveOccurred(), "listing host pods of tenant namespace %s", ns)
	return list.Items
}

// runningTenantPods lists the tenant pods with label app=name that are
// Running with an IP on a virtual node, and fails g otherwise.
func runningTenantPods(ctx SpecContext, g Gomega, ns, app string) []corev1.Pod {
	list, err := env.tenant.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	g.Expect(err).NotTo(HaveOccurred(), "listing tenant pods")
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			g.Expect(p.Status.PodIP).NotTo(BeEmpty(), "a Running tenant pod has an IP")
			g.Expect(p.Spec.NodeName).To(HavePrefix("knest-node-"), "a Running tenant pod is bound to a virtual node")
			out = append(out, p)
		}
	}
	return out
}

var _ = Describe("Tenant workloads", func() {
	BeforeEach(func() {
		if env.tenant == nil {
			Skip("no tenant: set KNEST_E2E_TENANT_KUBECONFIG and KNEST_E2E_TENANT_HOST_NAMESPACE")
		}
	})

	It("run a Deployment on the host, scale it down and back up", func(ctx SpecContext) {
		ns := createTenantNamespace(ctx, "deploy")
		_, err := env.tenant.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](3),
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
				Template: podTemplate("web"),
			},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "creating the Deployment")

		scaleTo := func(n int) {
			Eventually(func(g Gomega) {
				running := runningTenantPods(ctx, g, ns, "web")
				g.Expect(running).To(HaveLen(n), "Running tenant pods")
				hostRunning := 0
				for _, h := range hostPodsOf(ctx, g, ns) {
					if h.DeletionTimestamp == nil && h.Status.Phase == corev1.PodRunning {
						hostRunning++
					}
				}
				g.Expect(hostRunning).To(Equal(n), "Running host pods")
				ips := map[string]bool{}
				for _, h := range hostPodsOf(ctx, g, ns) {
					ips[h.Status.PodIP] = true
				}
				for _, p := range running {
					g.Expect(ips).To(HaveKey(p.Status.PodIP), "tenant pod %s shows its host pod's IP", p.Name)
				}
			}).WithContext(ctx).WithTimeout(90*time.Second).Should(Succeed(), "%d replicas Running in the tenant and on the host", n)
		}
		By("waiting for 3 replicas")
		scaleTo(3)
		By("checking their virtual nodes: Ready, untainted (pool nodes), with no host name")
		Eventually(func(g Gomega) {
			for _, p := range runningTenantPods(ctx, g, ns, "web") {
				node, err := env.tenant.CoreV1().Nodes().Get(ctx, p.Spec.NodeName, metav1.GetOptions{})
				g.Expect(err).NotTo(HaveOccurred(), "the virtual node of pod %s", p.Name)
				g.Expect(isNodeReady(*node)).To(BeTrue(), "virtual node %s is Ready", node.Name)
				g.Expect(node.Spec.Taints).To(BeEmpty(), "pool node %s has no taint (not the not-ready one it was created with)", node.Name)
				g.Expect(node.Labels).To(HaveKeyWithValue("kubernetes.io/hostname", node.Name), "virtual node %s names itself, not its host node", node.Name)
			}
		}).WithContext(ctx).WithTimeout(30*time.Second).Should(Succeed(), "the virtual nodes of the replicas")
		for _, replicas := range []int32{1, 3} {
			By(fmt.Sprintf("scaling to %d", replicas))
			Eventually(func() error {
				d, err := env.tenant.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
				if err != nil {
					return err
				}
				d.Spec.Replicas = ptr.To(replicas)
				_, err = env.tenant.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{})
				return err
			}).WithContext(ctx).WithTimeout(10*time.Second).Should(Succeed(), "scaling the Deployment")
			scaleTo(int(replicas))
		}
	})

	It("complete a Job", func(ctx SpecContext) {
		ns := createTenantNamespace(ctx, "job")
		_, err := env.tenant.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: "once"},
			Spec: batchv1.JobSpec{
				BackoffLimit: ptr.To[int32](2),
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					RestartPolicy:   corev1.RestartPolicyNever,
					SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65534)},
					Containers:      []corev1.Container{{Name: "main", Image: "busybox:1.36", Command: []string{"sh", "-c", "true"}}},
				}},
			},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "creating the Job")
		Eventually(func(g Gomega) {
			job, err := env.tenant.BatchV1().Jobs(ns).Get(ctx, "once", metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(job.Status.Succeeded).To(Equal(int32(1)), "succeeded pods")
			complete := false
			for _, c := range job.Status.Conditions {
				complete = complete || (c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue)
			}
			g.Expect(complete).To(BeTrue(), "Job condition Complete")
		}).WithContext(ctx).WithTimeout(90*time.Second).Should(Succeed(), "the Job completes in the tenant")
	})

	It("roll a StatefulSet to a new revision", func(ctx SpecContext) {
		ns := createTenantNamespace(ctx, "sts")
		_, err := env.tenant.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Name: "db"},
			Spec: appsv1.StatefulSetSpec{
				Replicas:    ptr.To[int32](2),
				ServiceName: "db",
				Selector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
				Template:    podTemplate("db"),
			},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "creating the StatefulSet")
		rolledOut := func(g Gomega) *appsv1.StatefulSet {
			sts, err := env.tenant.AppsV1().StatefulSets(ns).Get(ctx, "db", metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(sts.Status.ObservedGeneration).To(Equal(sts.Generation), "observed generation")
			g.Expect(sts.Status.ReadyReplicas).To(Equal(int32(2)), "ready replicas")
			g.Expect(sts.Status.UpdatedReplicas).To(Equal(int32(2)), "updated replicas")
			g.Expect(sts.Status.CurrentRevision).To(Equal(sts.Status.UpdateRevision), "current revision")
			return sts
		}
		var before *appsv1.StatefulSet
		Eventually(func(g Gomega) { before = rolledOut(g) }).WithContext(ctx).WithTimeout(90*time.Second).Should(Succeed(), "2 ready replicas")
		Eventually(func(g Gomega) {
			pods := runningTenantPods(ctx, g, ns, "db")
			g.Expect(pods).To(HaveLen(2))
			for _, p := range pods {
				g.Expect(p.Spec.Hostname).To(Equal(p.Name), "a StatefulSet pod keeps its hostname")
			}
		}).WithContext(ctx).WithTimeout(30*time.Second).Should(Succeed(), "StatefulSet pods Running")

		By("changing the pod template")
		Eventually(func() error {
			sts, err := env.tenant.AppsV1().StatefulSets(ns).Get(ctx, "db", metav1.GetOptions{})
			if err != nil {
				return err
			}
			sts.Spec.Template.Annotations = map[string]string{"rev": "2"}
			_, err = env.tenant.AppsV1().StatefulSets(ns).Update(ctx, sts, metav1.UpdateOptions{})
			return err
		}).WithContext(ctx).WithTimeout(10*time.Second).Should(Succeed(), "updating the StatefulSet")
		Eventually(func(g Gomega) {
			sts := rolledOut(g)
			g.Expect(sts.Status.UpdateRevision).NotTo(Equal(before.Status.UpdateRevision), "a new revision")
			for _, h := range hostPodsOf(ctx, g, ns) {
				if h.DeletionTimestamp == nil {
					// Tenant labels reach the host under knest's keys;
					// annotations only when the policy allows them.
					g.Expect(h.Labels).To(HaveKeyWithValue("t.knest.io/controller-revision-hash", sts.Status.UpdateRevision), "host pod %s is of the new revision", h.Name)
					g.Expect(h.Annotations).NotTo(HaveKey("rev"), "host pod %s carries a tenant annotation the policy does not allow", h.Name)
				}
			}
		}).WithContext(ctx).WithTimeout(2*time.Minute).Should(Succeed(), "the StatefulSet rolls to the new revision")
	})

	It("get service-account tokens on the host that only the tenant API server accepts", func(ctx SpecContext) {
		ns := createTenantNamespace(ctx, "token")
		_, err := env.tenant.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "robot"}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "creating the ServiceAccount")
		_, err = env.tenant.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "unused"}, StringData: map[string]string{"k": "v"}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "creating an unreferenced Secret")
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "app", Labels: map[string]string{"app": "app"}}, Spec: podTemplate("app").Spec}
		pod.Spec.ServiceAccountName = "robot"
		_, err = env.tenant.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "creating the pod")

		var hostPod corev1.Pod
		Eventually(func(g Gomega) {
			g.Expect(runningTenantPods(ctx, g, ns, "app")).To(HaveLen(1))
			hp := hostPodsOf(ctx, g, ns)
			g.Expect(hp).To(HaveLen(1))
			hostPod = hp[0]
		}).WithContext(ctx).WithTimeout(60*time.Second).Should(Succeed(), "the pod Running")

		// The default token is the host kubelet's, for the tenant's knest:
		// audience; with no kubelet on the devcluster, ask the host's
		// TokenRequest API for what a kubelet asks for the projection.
		var projection *corev1.ServiceAccountTokenProjection
		for _, v := range hostPod.Spec.Volumes {
			if v.Projected != nil {
				for _, s := range v.Projected.Sources {
					if s.ServiceAccountToken != nil {
						projection = s.ServiceAccountToken
					}
					Expect(s.Secret == nil || !strings.HasPrefix(s.Secret.Name, "knest-token-")).To(BeTrue(), "the default token needs no token Secret")
				}
			}
		}
		Expect(projection).NotTo(BeNil(), "the host pod projects a host token")
		Expect(projection.Audience).To(HavePrefix("knest:"), "the host token is for the tenant's audience only")
		tr, err := env.host.CoreV1().ServiceAccounts(env.tenantHostNamespace).CreateToken(ctx, hostPod.Spec.ServiceAccountName, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
			Audiences: []string{projection.Audience}, ExpirationSeconds: projection.ExpirationSeconds,
			BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: hostPod.Name, UID: hostPod.UID},
		}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "minting the host pod's token as its kubelet would")
		token := tr.Status.Token

		review, err := env.tenant.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "TokenReview on the tenant API server")
		Expect(review.Status.Authenticated).To(BeTrue(), "the tenant API server accepts the token: %s", review.Status.Error)
		Expect(review.Status.User.Username).To(Equal("system:serviceaccount:"+ns+":robot"), "the token is the pod's ServiceAccount's")

		hostReview, err := env.host.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "TokenReview on the host API server")
		Expect(hostReview.Status.Authenticated).To(BeFalse(), "the host API server must not accept a tenant token")

		By("checking no host object's metadata carries the token and the unused Secret stays in the tenant")
		secrets, err := env.host.CoreV1().Secrets(env.tenantHostNamespace).List(ctx, metav1.ListOptions{})
		Expect(err).NotTo(HaveOccurred())
		pods, err := env.host.CoreV1().Pods(env.tenantHostNamespace).List(ctx, metav1.ListOptions{})
		Expect(err).NotTo(HaveOccurred())
		var metas []metav1.ObjectMeta
		for _, s := range secrets.Items {
			metas = append(metas, s.ObjectMeta)
			Expect(s.Annotations["knest.io/name"] == "unused" && s.Annotations["knest.io/namespace"] == ns).To(BeFalse(), "the unreferenced Secret must not be on the host")
		}
		for _, p := range pods.Items {
			metas = append(metas, p.ObjectMeta)
		}
		for _, m := range metas {
			for k, v := range m.Annotations {
				Expect(v).NotTo(ContainSubstring(token), "annotation %s of host object %s", k, m.Name)
			}
		}
	})
})
