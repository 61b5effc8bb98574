package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/rand"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
)

// tenantOf returns the suite's tenant of a profile, or skips the spec.
func tenantOf(profile string) tenantEnv {
	GinkgoHelper()
	for _, t := range env.tenants {
		if t.profile == profile {
			return t
		}
	}
	Skip("no " + profile + "-profile tenant in this environment")
	return tenantEnv{}
}

// namespaceIn creates a namespace in tenant t, labelled as given, and
// deletes it after the spec.
func namespaceIn(ctx SpecContext, t tenantEnv, prefix string, labels map[string]string) string {
	GinkgoHelper()
	name := prefix + "-" + rand.String(6)
	_, err := t.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred(), "creating tenant namespace %s with labels %v", name, labels)
	DeferCleanup(func(ctx SpecContext) {
		Expect(ignoreNotFound(t.client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}))).To(Succeed(), "deleting tenant namespace %s", name)
	})
	Eventually(func(g Gomega) {
		_, err := t.client.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		g.Expect(err).NotTo(HaveOccurred())
	}).WithContext(ctx).WithTimeout(30*time.Second).Should(Succeed(), "default service account in tenant namespace %s", name)
	return name
}

// expectRunning waits until n pods of ns matching selector run in tenant t,
// bound to virtual nodes.
func expectRunning(ctx SpecContext, t tenantEnv, ns, selector string, n int) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		list, err := t.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		g.Expect(err).NotTo(HaveOccurred())
		running := 0
		for _, p := range list.Items {
			if p.Status.Phase == corev1.PodRunning && strings.HasPrefix(p.Spec.NodeName, "knest-node-") {
				running++
			}
		}
		g.Expect(running).To(Equal(n), "Running tenant pods %s in %s", selector, ns)
	}).WithContext(ctx).WithTimeout(60*time.Second).Should(Succeed(), "%d pods %s Running in the %s tenant", n, selector, t.profile)
}

// hostPodOf returns the host pod of tenant pod ns/name.
func hostPodOf(ctx SpecContext, t tenantEnv, ns, name string) *corev1.Pod {
	GinkgoHelper()
	var found *corev1.Pod
	Eventually(func(g Gomega) {
		list, err := env.host.CoreV1().Pods(t.hostNamespace).List(ctx, metav1.ListOptions{LabelSelector: "knest.io/namespace=" + ns})
		g.Expect(err).NotTo(HaveOccurred())
		for i := range list.Items {
			if list.Items[i].Annotations["knest.io/name"] == name {
				found = &list.Items[i]
			}
		}
		g.Expect(found).NotTo(BeNil(), "host pod of %s/%s", ns, name)
	}).WithContext(ctx).WithTimeout(30 * time.Second).Should(Succeed())
	return found
}

// testingManifests reads a manifest of Kubernetes' own e2e suite from the
// k8s.io/kubernetes module this build uses (test/e2e/testing-manifests),
// filling in the image placeholders of the .yaml.in templates.
func testingManifests(path string) []runtime.Object {
	GinkgoHelper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "k8s.io/kubernetes").Output()
	Expect(err).NotTo(HaveOccurred(), "finding the k8s.io/kubernetes module")
	data, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "test", "e2e", "testing-manifests", path))
	Expect(err).NotTo(HaveOccurred(), "reading %s", path)
	data = []byte(strings.NewReplacer(
		"{{.AgnhostImage}}", "registry.k8s.io/e2e-test-images/agnhost:2.53",
		"{{.RedisImage}}", "registry.k8s.io/e2e-test-images/redis:5.0.5-3",
	).Replace(string(data)))
	var objs []runtime.Object
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if err != nil {
			break
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		Expect(err).NotTo(HaveOccurred(), "decoding %s", path)
		objs = append(objs, obj)
	}
	return objs
}

// apply creates objects in a tenant namespace as kubectl apply would.
func apply(ctx SpecContext, c kubernetes.Interface, ns string, objs []runtime.Object) {
	GinkgoHelper()
	for _, obj := range objs {
		var err error
		switch o := obj.(type) {
		case *appsv1.Deployment:
			_, err = c.AppsV1().Deployments(ns).Create(ctx, o, metav1.CreateOptions{})
		case *appsv1.StatefulSet:
			_, err = c.AppsV1().StatefulSets(ns).Create(ctx, o, metav1.CreateOptions{})
		case *corev1.Service:
			_, err = c.CoreV1().Services(ns).Create(ctx, o, metav1.CreateOptions{})
		case *corev1.ConfigMap:
			_, err = c.CoreV1().ConfigMaps(ns).Create(ctx, o, metav1.CreateOptions{})
		default:
			Fail(fmt.Sprintf("no create for %T", obj))
		}
		Expect(err).NotTo(HaveOccurred(), "applying %T", obj)
	}
}

var _ = Describe("Ordinary usage", func() {
	for _, profile := range []string{"hard", "soft"} {
		Context("in the "+profile+" profile", func() {
			It("runs kubectl create deployment nginx --image=nginx and kubectl run --image=busybox", func(ctx SpecContext) {
				t := tenantOf(profile)
				ns := namespaceIn(ctx, t, "ordinary", nil)
				By("creating the Deployment kubectl create deployment makes: a root image, no securityContext")
				labels := map[string]string{"app": "nginx"}
				_, err := t.client.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
					ObjectMeta: metav1.ObjectMeta{Name: "nginx", Labels: labels},
					Spec: appsv1.DeploymentSpec{
						Replicas: ptr.To[int32](1),
						Selector: &metav1.LabelSelector{MatchLabels: labels},
						Template: corev1.PodTemplateSpec{
							ObjectMeta: metav1.ObjectMeta{Labels: labels},
							Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx"}}},
						},
					},
				}, metav1.CreateOptions{})
				Expect(err).NotTo(HaveOccurred(), "kubectl create deployment nginx --image=nginx")
				expectRunning(ctx, t, ns, "app=nginx", 1)

				By("creating the Pod kubectl run makes")
				_, err = t.client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: "hello", Labels: map[string]string{"run": "hello"}},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{
						Name: "hello", Image: "busybox", Args: []string{"sleep", "3600"},
					}}},
				}, metav1.CreateOptions{})
				Expect(err).NotTo(HaveOccurred(), "kubectl run hello --image=busybox -- sleep 3600")
				expectRunning(ctx, t, ns, "run=hello", 1)

				By("checking what the host runs")
				h := hostPodOf(ctx, t, ns, "hello")
				c := h.Spec.Containers[0]
				Expect(c.SecurityContext).NotTo(BeNil(), "the host container has the forced security context")
				Expect(c.SecurityContext.Capabilities.Drop).To(ConsistOf(corev1.Capability("NET_RAW")), "NET_RAW, and only NET_RAW, dropped: root images keep CHOWN, SETUID, SETGID")
				Expect(c.SecurityContext.RunAsNonRoot).To(BeNil(), "root is not refused")
				Expect(h.Labels).NotTo(HaveKey("run"), "tenant labels reach the host only under knest's keys")
				Expect(h.Labels).To(HaveKeyWithValue("t.knest.io/run", "hello"))
				if profile == "hard" {
					Expect(ptr.Deref(h.Spec.RuntimeClassName, "")).To(Equal("kata"), "hard runs every pod sandboxed")
					Expect(c.ImagePullPolicy).To(Equal(corev1.PullAlways), "hard always pulls")
				} else {
					Expect(h.Spec.RuntimeClassName).To(BeNil(), "soft runs on the host's runtime")
				}
			})

			It("accepts a namespace labelled privileged and still refuses what the host must never run in it", func(ctx SpecContext) {
				t := tenantOf(profile)
				ns := namespaceIn(ctx, t, "privileged", map[string]string{
					"pod-security.kubernetes.io/enforce": "privileged",
					"pod-security.kubernetes.io/warn":    "privileged",
				})
				_, err := t.client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: "root", Labels: map[string]string{"app": "root"}},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "busybox"}}},
				}, metav1.CreateOptions{})
				Expect(err).NotTo(HaveOccurred(), "a root pod in a privileged-labelled namespace")
				expectRunning(ctx, t, ns, "app=root", 1)
				for _, c := range []struct {
					name  string
					tweak func(*corev1.PodSpec)
					want  string
				}{
					{"privileged", func(s *corev1.PodSpec) {
						s.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
					}, "privileged"},
					{"hostpath", func(s *corev1.PodSpec) {
						s.Volumes = []corev1.Volume{{Name: "root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
					}, "hostPath"},
					{"hostnetwork", func(s *corev1.PodSpec) { s.HostNetwork = true }, "hostNetwork"},
				} {
					By("creating a " + c.name + " pod")
					p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: c.name}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "busybox"}}}}
					c.tweak(&p.Spec)
					_, err := t.client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
					Expect(err).To(HaveOccurred(), "a %s pod must be refused, whatever the namespace labels say", c.name)
					Expect(err.Error()).To(And(ContainSubstring(c.want), ContainSubstring("the "+profile+" profile")), "the refusal names the field and the profile")
				}
			})

			It("runs the guestbook of Kubernetes' testing manifests and accepts its StatefulSet manifests", func(ctx SpecContext) {
				t := tenantOf(profile)
				ns := namespaceIn(ctx, t, "guestbook", nil)
				for _, f := range []string{
					"agnhost-primary-service.yaml", "agnhost-primary-deployment.yaml.in",
					"agnhost-replica-service.yaml", "agnhost-replica-deployment.yaml.in",
					"frontend-service.yaml", "frontend-deployment.yaml.in",
				} {
					apply(ctx, t.client, ns, testingManifests(filepath.Join("guestbook", f)))
				}
				expectRunning(ctx, t, ns, "app=guestbook,tier=frontend", 3)
				expectRunning(ctx, t, ns, "app=agnhost,role=primary", 1)
				expectRunning(ctx, t, ns, "app=agnhost,role=replica", 2)

				By("applying the zookeeper StatefulSet (root images, init containers, downward API, claims)")
				sts := namespaceIn(ctx, t, "zk", nil)
				apply(ctx, t.client, sts, testingManifests("statefulset/zookeeper/service.yaml"))
				apply(ctx, t.client, sts, testingManifests("statefulset/zookeeper/statefulset.yaml"))
				// Its claims stay Pending on a host without storage (the
				// devcluster), so its first pod is checked for reaching
				// the host, not for running.
				hostPodOf(ctx, t, sts, "zoo-0")
			})
		})
	}
})
