package e2e

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	nodev1 "k8s.io/api/node/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
)

// expectRefused checks that a tenant write was refused as Forbidden with a
// message naming each of want, and that nothing named name reached the host.
func expectRefused(ctx SpecContext, err error, ns, name string, want ...string) {
	GinkgoHelper()
	Expect(err).To(HaveOccurred(), "the write must be refused")
	Expect(apierrors.IsForbidden(err)).To(BeTrue(), "refused as Forbidden, got %v", err)
	for _, w := range want {
		Expect(err.Error()).To(ContainSubstring(w), "the refusal names %q", w)
	}
	Consistently(func(g Gomega) {
		for _, list := range []func() ([]metav1.ObjectMeta, error){
			func() ([]metav1.ObjectMeta, error) {
				l, err := env.host.CoreV1().Pods(env.tenantHostNamespace).List(ctx, metav1.ListOptions{LabelSelector: "knest.io/namespace=" + ns})
				var out []metav1.ObjectMeta
				for _, o := range l.Items {
					out = append(out, o.ObjectMeta)
				}
				return out, err
			},
			func() ([]metav1.ObjectMeta, error) {
				l, err := env.host.CoreV1().Services(env.tenantHostNamespace).List(ctx, metav1.ListOptions{LabelSelector: "knest.io/namespace=" + ns})
				var out []metav1.ObjectMeta
				for _, o := range l.Items {
					out = append(out, o.ObjectMeta)
				}
				return out, err
			},
		} {
			metas, err := list()
			g.Expect(err).NotTo(HaveOccurred())
			for _, m := range metas {
				g.Expect(strings.HasPrefix(m.Annotations["knest.io/name"], name)).To(BeFalse(), "host object %s stands for the refused %s", m.Name, name)
			}
		}
	}).WithContext(ctx).WithTimeout(2*time.Second).Should(Succeed(), "nothing of the refused object on the host")
}

// restrictedPod is a pod every floor admits, restricted included.
func restrictedPod(name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}}, Spec: podTemplate(name).Spec}
}

var _ = Describe("Confinement", func() {
	BeforeEach(func() {
		if env.tenant == nil {
			Skip("no tenant: set KNEST_E2E_TENANT_KUBECONFIG and KNEST_E2E_TENANT_HOST_NAMESPACE")
		}
	})

	It("refuses pods the host would not run, naming the field and the profile", func(ctx SpecContext) {
		ns := createTenantNamespace(ctx, "pods")
		// A tenant RuntimeClass object, so that the tenant API server's own
		// RuntimeClass admission lets the pod through to knest's check.
		rc := "runc-" + rand.String(5)
		_, err := env.tenant.NodeV1().RuntimeClasses().Create(ctx, &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: rc}, Handler: "runc"}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "creating a tenant RuntimeClass")
		DeferCleanup(func(ctx SpecContext) {
			Expect(env.tenant.NodeV1().RuntimeClasses().Delete(ctx, rc, metav1.DeleteOptions{})).To(Succeed())
		})
		cases := []struct {
			name  string
			tweak func(*corev1.Pod)
			want  []string
		}{
			{"privileged", func(p *corev1.Pod) {
				p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
			}, []string{"privileged", "profile"}},
			{"hostpath", func(p *corev1.Pod) {
				p.Spec.Volumes = []corev1.Volume{{Name: "root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
			}, []string{"hostPath"}},
			{"hostnetwork", func(p *corev1.Pod) { p.Spec.HostNetwork = true }, []string{"hostNetwork"}},
			{"tolerating", func(p *corev1.Pod) {
				p.Spec.Tolerations = []corev1.Toleration{{Key: "knest.io/pool", Operator: corev1.TolerationOpExists}}
			}, []string{"tolerations"}},
			{"runtime", func(p *corev1.Pod) { p.Spec.RuntimeClassName = ptr.To(rc) }, []string{"runtimeClassName"}},
		}
		for _, c := range cases {
			By("creating a " + c.name + " pod")
			p := restrictedPod(c.name)
			c.tweak(p)
			_, err := env.tenant.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
			expectRefused(ctx, err, ns, c.name, c.want...)
		}
	})

	It("leaves pods Pending that no tenant node matches, and never hands a host node name to the host", func(ctx SpecContext) {
		ns := createTenantNamespace(ctx, "unsched")
		cases := map[string]func(*corev1.Pod){
			// A host node's name is no tenant node's.
			"pinned": func(p *corev1.Pod) { p.Spec.NodeName = "kwok-general-0" },
			"hostname": func(p *corev1.Pod) {
				p.Spec.NodeSelector = map[string]string{"kubernetes.io/hostname": "kwok-general-0"}
			},
			// Kubernetes' own conformance quota specs use such a key.
			"unsatisfiable": func(p *corev1.Pod) {
				p.Spec.NodeSelector = map[string]string{"x-test.k8s.io/unsatisfiable": "not-schedulable"}
			},
		}
		for name, tweak := range cases {
			p := restrictedPod(name)
			tweak(p)
			_, err := env.tenant.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred(), "creating pod %s", name)
		}
		for name := range cases {
			Eventually(func(g Gomega) {
				p, err := env.tenant.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(p.Status.Phase).To(Equal(corev1.PodPending))
				var cond *corev1.PodCondition
				for i := range p.Status.Conditions {
					if p.Status.Conditions[i].Type == corev1.PodScheduled {
						cond = &p.Status.Conditions[i]
					}
				}
				g.Expect(cond).NotTo(BeNil(), "pod %s has no PodScheduled condition", name)
				g.Expect(cond.Status).To(Equal(corev1.ConditionFalse))
				g.Expect(cond.Reason).To(Equal(corev1.PodReasonUnschedulable))
			}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed(), "pod %s", name)
		}
		Consistently(func(g Gomega) {
			g.Expect(hostPodsOf(ctx, g, ns)).To(BeEmpty(), "no host pod for an unschedulable tenant pod")
		}).WithContext(ctx).WithTimeout(5 * time.Second).Should(Succeed())
	})

	It("places a pod pinned to a tenant node on that node's host node, through the host scheduler", func(ctx SpecContext) {
		ns := createTenantNamespace(ctx, "pin")
		_, err := env.tenant.CoreV1().Pods(ns).Create(ctx, restrictedPod("first"), metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "creating the first pod")
		var alias string
		Eventually(func(g Gomega) {
			pods := runningTenantPods(ctx, g, ns, "first")
			g.Expect(pods).To(HaveLen(1))
			alias = pods[0].Spec.NodeName
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())
		first := hostPodsOf(ctx, Default, ns)
		Expect(first).To(HaveLen(1))
		hostNode := first[0].Spec.NodeName

		pinned := restrictedPod("pinned")
		pinned.Spec.NodeName = alias
		_, err = env.tenant.CoreV1().Pods(ns).Create(ctx, pinned, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "creating a pod pinned to tenant node %s", alias)
		Eventually(func(g Gomega) {
			pods := runningTenantPods(ctx, g, ns, "pinned")
			g.Expect(pods).To(HaveLen(1))
			g.Expect(pods[0].Spec.NodeName).To(Equal(alias))
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())
		for _, h := range hostPodsOf(ctx, Default, ns) {
			if h.Labels["t.knest.io/app"] != "pinned" {
				continue
			}
			Expect(h.Spec.NodeName).To(Equal(hostNode), "the pinned pod runs on the first pod's host node")
			terms := h.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
			Expect(terms).To(HaveLen(1))
			Expect(terms[0].MatchFields).To(ContainElement(corev1.NodeSelectorRequirement{
				Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{hostNode},
			}), "placed through the host scheduler, never by a host nodeName")
		}
	})

	It("selects a tenant node by a label the tenant set on it, without the label reaching the host", func(ctx SpecContext) {
		var target string
		Eventually(func(g Gomega) {
			list, err := env.tenant.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			target = ""
			for _, n := range list.Items {
				if isNodeReady(n) && !n.Spec.Unschedulable && len(n.Spec.Taints) == 0 {
					target = n.Name
				}
			}
			g.Expect(target).NotTo(BeEmpty(), "a Ready, untainted, schedulable tenant node")
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())
		ns := createTenantNamespace(ctx, "nodelabel")
		key := "e2e.example.com/" + ns
		// As any cluster admin labels a node (the conformance suite does):
		// the Node keeps knest's own label, which the update must not touch.
		patch := []byte(`{"metadata":{"labels":{"` + key + `":"blue"}}}`)
		_, err := env.tenant.CoreV1().Nodes().Patch(ctx, target, types.MergePatchType, patch, metav1.PatchOptions{})
		Expect(err).NotTo(HaveOccurred(), "labelling tenant node %s", target)
		DeferCleanup(func(ctx SpecContext) {
			_, err := env.tenant.CoreV1().Nodes().Patch(ctx, target, types.MergePatchType, []byte(`{"metadata":{"labels":{"`+key+`":null}}}`), metav1.PatchOptions{})
			Expect(err).NotTo(HaveOccurred(), "removing the label")
		})

		p := restrictedPod("selected")
		p.Spec.NodeSelector = map[string]string{key: "blue"}
		_, err = env.tenant.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "creating a pod selecting the label")
		Eventually(func(g Gomega) {
			pods := runningTenantPods(ctx, g, ns, "selected")
			g.Expect(pods).To(HaveLen(1))
			g.Expect(pods[0].Spec.NodeName).To(Equal(target), "the pod runs on the labelled node")
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())
		hostPods := hostPodsOf(ctx, Default, ns)
		Expect(hostPods).To(HaveLen(1))
		Expect(hostPods[0].Spec.NodeSelector).NotTo(HaveKey(key), "the tenant's label never reaches the host")
		terms := hostPods[0].Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
		Expect(terms).To(HaveLen(1))
		Expect(terms[0].MatchExpressions).To(BeEmpty(), "placed by the host node's name only")
		Expect(terms[0].MatchFields).To(ContainElement(corev1.NodeSelectorRequirement{
			Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{hostPods[0].Spec.NodeName},
		}), "placed on the labelled node's host node through the host scheduler")
	})

	It("shows schedulable tenant nodes for the pool's host nodes, and runs a DaemonSet's pod on each", func(ctx SpecContext) {
		var nodes []corev1.Node
		Eventually(func(g Gomega) {
			list, err := env.tenant.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			nodes = nil
			for _, n := range list.Items {
				if isNodeReady(n) && !n.Spec.Unschedulable && len(n.Spec.Taints) == 0 {
					nodes = append(nodes, n)
				}
			}
			g.Expect(nodes).NotTo(BeEmpty(), "a Ready, untainted, schedulable tenant node")
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())
		for _, n := range nodes {
			Expect(n.Name).To(HavePrefix("knest-node-"), "tenant nodes are aliases, never host node names")
		}

		ns := createTenantNamespace(ctx, "ds")
		_, err := env.tenant.AppsV1().DaemonSets(ns).Create(ctx, &appsv1.DaemonSet{
			ObjectMeta: metav1.ObjectMeta{Name: "agent"},
			Spec:       appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}}, Template: podTemplate("agent")},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "creating a DaemonSet")
		Eventually(func(g Gomega) {
			pods := runningTenantPods(ctx, g, ns, "agent")
			on := map[string]bool{}
			for _, p := range pods {
				on[p.Spec.NodeName] = true
			}
			for _, n := range nodes {
				g.Expect(on).To(HaveKey(n.Name), "a running DaemonSet pod on tenant node %s", n.Name)
			}
		}).WithContext(ctx).WithTimeout(2 * time.Minute).Should(Succeed())
	})

	It("refuses bad pod templates at apply", func(ctx SpecContext) {
		ns := createTenantNamespace(ctx, "tpl")
		tpl := podTemplate("bad")
		tpl.Spec.HostPID = true
		_, err := env.tenant.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "bad"},
			Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "bad"}}, Template: tpl},
		}, metav1.CreateOptions{})
		expectRefused(ctx, err, ns, "bad", "spec.template.spec.hostPID")

	})

	It("refuses Services that would claim host addresses or ports", func(ctx SpecContext) {
		ns := createTenantNamespace(ctx, "svc")
		_, err := env.tenant.CoreV1().Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "ext"},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}, ExternalIPs: []string{"203.0.113.7"}},
		}, metav1.CreateOptions{})
		expectRefused(ctx, err, ns, "ext", "externalIPs")
		_, err = env.tenant.CoreV1().Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "lb"},
			Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}}},
		}, metav1.CreateOptions{})
		expectRefused(ctx, err, ns, "lb", "LoadBalancer")
	})

	It("keeps EndpointSlices and Endpoints that point outside the tenant's pods off the host", func(ctx SpecContext) {
		ns := createTenantNamespace(ctx, "eps")
		_, err := env.tenant.CoreV1().Pods(ns).Create(ctx, restrictedPod("backend"), metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "creating a restricted pod")
		var podIP string
		Eventually(func(g Gomega) {
			pods := runningTenantPods(ctx, g, ns, "backend")
			g.Expect(pods).To(HaveLen(1))
			podIP = pods[0].Status.PodIP
			g.Expect(podIP).NotTo(BeEmpty())
		}).WithContext(ctx).WithTimeout(60*time.Second).Should(Succeed(), "the pod Running with an IP")
		hostAPI, err := env.host.CoreV1().Services(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred(), "reading the host API server's ClusterIP")
		foreign := hostAPI.Spec.ClusterIP

		// The tenant API takes any address (as Kubernetes does; admission
		// warns), the host gets only slices of the tenant's own pods. The
		// deprecated Endpoints API is still served, and mirrored into
		// EndpointSlices: it is confined the same way. (Before the Service
		// exists, so that nothing named manual is on the host yet.)
		_, err = env.tenant.CoreV1().Endpoints(ns).Create(ctx, &corev1.Endpoints{
			ObjectMeta: metav1.ObjectMeta{Name: "manual"},
			Subsets: []corev1.EndpointSubset{{
				Addresses: []corev1.EndpointAddress{{IP: foreign}},
				Ports:     []corev1.EndpointPort{{Port: 80}},
			}},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "Endpoints pointing anywhere are the tenant's own business until they reach the host")

		_, err = env.tenant.CoreV1().Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "manual"},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "creating a selector-less Service")
		slice := func(name string, addrs ...string) *discoveryv1.EndpointSlice {
			s := &discoveryv1.EndpointSlice{
				ObjectMeta:  metav1.ObjectMeta{Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: "manual"}},
				AddressType: discoveryv1.AddressTypeIPv4,
				Ports:       []discoveryv1.EndpointPort{{Port: ptr.To[int32](80)}},
			}
			for _, a := range addrs {
				s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{a}})
			}
			return s
		}
		_, err = env.tenant.DiscoveryV1().EndpointSlices(ns).Create(ctx, slice("manual-own", podIP), metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "an EndpointSlice of the tenant's own pod is admitted")
		_, err = env.tenant.DiscoveryV1().EndpointSlices(ns).Create(ctx, slice("manual-escape", podIP, foreign), metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "an EndpointSlice pointing outside the tenant is admitted")
		Eventually(func(g Gomega) {
			evs, err := env.tenant.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=manual-escape"})
			g.Expect(err).NotTo(HaveOccurred())
			var notes []string
			for _, ev := range evs.Items {
				if ev.Reason == "SyncRefused" {
					notes = append(notes, ev.Message)
				}
			}
			g.Expect(notes).To(ContainElement(And(ContainSubstring(foreign), ContainSubstring("own pods"))))
		}).WithContext(ctx).WithTimeout(30*time.Second).Should(Succeed(), "a SyncRefused Event on the slice naming the address")

		// Only the admitted slice reaches the host, with the pod's address.
		Eventually(func(g Gomega) {
			l, err := env.host.DiscoveryV1().EndpointSlices(env.tenantHostNamespace).List(ctx, metav1.ListOptions{LabelSelector: "knest.io/namespace=" + ns})
			g.Expect(err).NotTo(HaveOccurred())
			var names []string
			for _, s := range l.Items {
				names = append(names, s.Annotations["knest.io/name"])
				for _, ep := range s.Endpoints {
					g.Expect(ep.Addresses).NotTo(ContainElement(foreign), "no host slice points at %s", foreign)
				}
			}
			g.Expect(names).To(ConsistOf("manual-own"))
		}).WithContext(ctx).WithTimeout(30*time.Second).Should(Succeed(), "the tenant's own slice on the host")
	})

	It("refuses reserved keys and oversized PriorityClasses, and accepts any namespace labels", func(ctx SpecContext) {
		ns := createTenantNamespace(ctx, "meta")
		_, err := env.tenant.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "spoof", Labels: map[string]string{"knest.io/tenant": "someone-else"}},
		}, metav1.CreateOptions{})
		expectRefused(ctx, err, ns, "spoof", "knest.io/tenant")

		loose := "loose-" + rand.String(5)
		_, err = env.tenant.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: loose, Labels: map[string]string{"pod-security.kubernetes.io/enforce": "privileged"},
		}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "a namespace labelled privileged is the tenant's own business")
		DeferCleanup(func(ctx SpecContext) {
			Expect(env.tenant.CoreV1().Namespaces().Delete(ctx, loose, metav1.DeleteOptions{})).To(Succeed())
		})

		_, err = env.tenant.SchedulingV1().PriorityClasses().Create(ctx, &schedulingv1.PriorityClass{
			ObjectMeta: metav1.ObjectMeta{Name: "above-everyone-" + rand.String(5)}, Value: 1_500_000_000,
		}, metav1.CreateOptions{})
		expectRefused(ctx, err, ns, "above-everyone", "value")
	})

	It("runs hard-profile pods sandboxed on the sandboxed pool", func(ctx SpecContext) {
		ns := createTenantNamespace(ctx, "hard")
		_, err := env.tenant.CoreV1().Pods(ns).Create(ctx, restrictedPod("boxed"), metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "creating a restricted pod")
		Eventually(func(g Gomega) {
			hp := hostPodsOf(ctx, g, ns)
			g.Expect(hp).To(HaveLen(1))
			g.Expect(hp[0].Spec.RuntimeClassName).To(HaveValue(Equal("kata")), "the host pod runs with the kata RuntimeClass")
			g.Expect(hp[0].Spec.NodeName).NotTo(BeEmpty())
			node, err := env.host.CoreV1().Nodes().Get(ctx, hp[0].Spec.NodeName, metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(node.Labels).To(HaveKeyWithValue("knest.io/pool", "sandboxed"), "the host pod is on the sandboxed pool")
		}).WithContext(ctx).WithTimeout(30*time.Second).Should(Succeed(), "the host pod scheduled")
	})

	It("shows host quota exhaustion to the tenant", Serial, func(ctx SpecContext) {
		ns := createTenantNamespace(ctx, "quota")
		_, err := env.host.CoreV1().ResourceQuotas(env.tenantHostNamespace).Create(ctx, &corev1.ResourceQuota{
			ObjectMeta: metav1.ObjectMeta{Name: "e2e-exhausted"},
			Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("0")}},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "creating an exhausted host quota")
		DeferCleanup(func(ctx SpecContext) {
			Expect(env.host.CoreV1().ResourceQuotas(env.tenantHostNamespace).Delete(ctx, "e2e-exhausted", metav1.DeleteOptions{})).To(Succeed())
		})
		// The quota admission needs the quota's usage computed first.
		Eventually(func(g Gomega) {
			q, err := env.host.CoreV1().ResourceQuotas(env.tenantHostNamespace).Get(ctx, "e2e-exhausted", metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(q.Status.Hard).NotTo(BeEmpty())
		}).WithContext(ctx).WithTimeout(30*time.Second).Should(Succeed(), "quota status computed")
		_, err = env.tenant.CoreV1().Pods(ns).Create(ctx, restrictedPod("starved"), metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "the tenant API accepts the pod")
		Eventually(func(g Gomega) {
			evs, err := env.tenant.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=starved"})
			g.Expect(err).NotTo(HaveOccurred())
			found := false
			for _, ev := range evs.Items {
				found = found || (ev.Type == corev1.EventTypeWarning && strings.Contains(ev.Message, "exceeded quota"))
			}
			g.Expect(found).To(BeTrue(), "a warning Event about the host quota on the tenant pod")
		}).WithContext(ctx).WithTimeout(30*time.Second).Should(Succeed(), "the tenant sees why its pod does not run")
	})
})
