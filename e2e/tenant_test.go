package e2e

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
)

// createTenantNamespace creates a namespace with a random suffix in the
// tenant cluster and deletes it after the spec.
func createTenantNamespace(ctx SpecContext, prefix string) string {
	name := prefix + "-" + rand.String(6)
	_, err := env.tenant.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred(), "creating tenant namespace %s", name)
	DeferCleanup(func(ctx SpecContext) {
		err := env.tenant.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
		Expect(ignoreNotFound(err)).To(Succeed(), "deleting tenant namespace %s", name)
	})
	Eventually(func(g Gomega) {
		_, err := env.tenant.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		g.Expect(err).NotTo(HaveOccurred())
	}).WithContext(ctx).WithTimeout(30*time.Second).Should(Succeed(), "default service account in tenant namespace %s", name)
	return name
}

var _ = Describe("A tenant", func() {
	BeforeEach(func() {
		if env.tenant == nil {
			Skip("no tenant: set KNEST_E2E_TENANT_KUBECONFIG and KNEST_E2E_TENANT_HOST_NAMESPACE")
		}
	})

	It("deletes a VolumeAttributesClass (its protection finalizer is removed by the tenant's controllers)", func(ctx SpecContext) {
		name := "e2e-vac-" + rand.String(5)
		_, err := env.tenant.StorageV1().VolumeAttributesClasses().Create(ctx, &storagev1.VolumeAttributesClass{
			ObjectMeta: metav1.ObjectMeta{Name: name}, DriverName: "e2e.example.com", Parameters: map[string]string{"iops": "1000"},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "creating a VolumeAttributesClass")
		Expect(env.tenant.StorageV1().VolumeAttributesClasses().Delete(ctx, name, metav1.DeleteOptions{})).To(Succeed())
		Eventually(func(g Gomega) {
			_, err := env.tenant.StorageV1().VolumeAttributesClasses().Get(ctx, name, metav1.GetOptions{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "still there: %v", err)
		}).WithContext(ctx).WithTimeout(30*time.Second).Should(Succeed(), "the class gone")
	})

	It("gets host ClusterIPs for its Services and cannot claim host addresses", func(ctx SpecContext) {
		ns := createTenantNamespace(ctx, "svc")
		svc, err := env.tenant.CoreV1().Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "creating a ClusterIP Service in the tenant")
		hostSvcs, err := env.host.CoreV1().Services(env.tenantHostNamespace).List(ctx, metav1.ListOptions{LabelSelector: "knest.io/namespace=" + ns})
		Expect(err).NotTo(HaveOccurred(), "listing the tenant's Services on the host")
		Expect(hostSvcs.Items).To(HaveLen(1), "one host Service for the tenant Service")
		Expect(svc.Spec.ClusterIP).To(Equal(hostSvcs.Items[0].Spec.ClusterIP), "the tenant Service carries the host Service's ClusterIP")

		// Services named by generateName (the conformance suite's latency
		// spec makes 200): each its own host copy and IP.
		ips := map[string]bool{svc.Spec.ClusterIP: true}
		for range 3 {
			generated, err := env.tenant.CoreV1().Services(ns).Create(ctx, &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "gen-"},
				Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}},
			}, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred(), "creating a Service by generateName in the tenant")
			Expect(ips).NotTo(HaveKey(generated.Spec.ClusterIP), "a generated Service gets an IP of its own")
			ips[generated.Spec.ClusterIP] = true
			hostSvcs, err := env.host.CoreV1().Services(env.tenantHostNamespace).List(ctx, metav1.ListOptions{LabelSelector: "knest.io/namespace=" + ns})
			Expect(err).NotTo(HaveOccurred(), "listing the tenant's Services on the host")
			var copies []string
			for _, h := range hostSvcs.Items {
				if h.Annotations["knest.io/name"] == generated.Name {
					copies = append(copies, h.Spec.ClusterIP)
				}
			}
			Expect(copies).To(Equal([]string{generated.Spec.ClusterIP}), "one host copy of %s, with its IP", generated.Name)
		}

		_, err = env.tenant.CoreV1().Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "exposed"},
			Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80}}},
		}, metav1.CreateOptions{})
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "a NodePort Service is refused, got %v", err)
	})

	It("sends a ConfigMap to the host only while a pod references it", func(ctx SpecContext) {
		ns := createTenantNamespace(ctx, "cfg")
		_, err := env.tenant.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"mode": "e2e"}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "creating the ConfigMap")
		hostCopies := func(g Gomega) []corev1.ConfigMap {
			list, err := env.host.CoreV1().ConfigMaps(env.tenantHostNamespace).List(ctx, metav1.ListOptions{LabelSelector: "knest.io/namespace=" + ns})
			g.Expect(err).NotTo(HaveOccurred())
			var out []corev1.ConfigMap
			for _, cm := range list.Items {
				if cm.Annotations["knest.io/name"] == "settings" {
					out = append(out, cm)
				}
			}
			return out
		}
		Consistently(func(g Gomega) { g.Expect(hostCopies(g)).To(BeEmpty()) }).WithContext(ctx).WithTimeout(2*time.Second).Should(Succeed(), "an unreferenced ConfigMap stays in the tenant")

		By("creating a pod that uses it")
		_, err = env.tenant.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "app"},
			Spec: corev1.PodSpec{SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65534)}, Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10",
				EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}}}}},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "creating the pod")
		Eventually(func(g Gomega) {
			copies := hostCopies(g)
			g.Expect(copies).To(HaveLen(1))
			g.Expect(copies[0].Data).To(HaveKeyWithValue("mode", "e2e"))
		}).WithContext(ctx).WithTimeout(10*time.Second).Should(Succeed(), "the referenced ConfigMap reaches the host")

		By("deleting the pod")
		Expect(env.tenant.CoreV1().Pods(ns).Delete(ctx, "app", metav1.DeleteOptions{GracePeriodSeconds: new(int64)})).To(Succeed(), "deleting the pod")
		Eventually(func(g Gomega) { g.Expect(hostCopies(g)).To(BeEmpty()) }).WithContext(ctx).WithTimeout(10*time.Second).Should(Succeed(), "the host copy goes with the last reference")
	})
})
