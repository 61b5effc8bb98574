package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/knest-dev/knest/pkg/translate"
	"github.com/knest-dev/knest/test/integration/framework"
)

const readyTimeout = 90 * time.Second

// host is a devcluster and what the tests need of it.
type host struct {
	dir, kubeconfig, ca string
	cfg                 *rest.Config
	client              kubernetes.Interface
}

func startHost(t *testing.T) *host {
	t.Helper()
	h := &host{dir: t.TempDir()}
	framework.StartHost(t, h.dir).WaitReady(t, readyTimeout)
	h.kubeconfig = filepath.Join(h.dir, "admin.kubeconfig")
	h.ca = filepath.Join(h.dir, "pki", "ca.crt")
	h.cfg = framework.AdminConfig(t, h.kubeconfig)
	h.client = framework.Client(t, h.cfg)
	return h
}

// run is one finished knest command.
type run struct {
	stdout, stderr string
	err            error
}

// knest runs the CLI against the host and waits for it.
func (h *host) knest(t *testing.T, args ...string) run {
	t.Helper()
	return h.knestAsync(t, args...)()
}

// knestAsync starts the CLI against the host (unless args pass a
// --kubeconfig of their own); the function returned waits for it (up to 3
// minutes).
func (h *host) knestAsync(t *testing.T, args ...string) func() run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--kubeconfig=") }) {
		args = append(args[:len(args):len(args)], "--kubeconfig="+h.kubeconfig)
	}
	cmd := exec.CommandContext(ctx, framework.KnestPath(), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	return func() run {
		defer cancel()
		err := cmd.Wait()
		t.Logf("knest %s:\n%s%s", strings.Join(args, " "), stderr.String(), stdout.String())
		return run{stdout: stdout.String(), stderr: stderr.String(), err: err}
	}
}

// addVolume stands in for the host's storage: a volume for one claim.
func (h *host) addVolume(t *testing.T, name string) {
	t.Helper()
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/" + name}},
		},
	}
	if _, err := h.client.CoreV1().PersistentVolumes().Create(t.Context(), pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func mustSucceed(t *testing.T, r run, what string) {
	t.Helper()
	if r.err != nil {
		t.Fatalf("%s failed: %v\n%s", what, r.err, r.stderr)
	}
}

func mustFail(t *testing.T, r run, what string, want ...string) {
	t.Helper()
	if r.err == nil {
		t.Fatalf("%s succeeded, want an error", what)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("%s: the error does not say %q:\n%s", what, w, r.stderr)
		}
	}
}

func TestIntegrationCreateConnectDelete(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	h := startHost(t)
	ctx := t.Context()
	h.addVolume(t, "tenant-data-1")
	h.addVolume(t, "tenant-data-2")
	h.addVolume(t, "tenant-data-3")

	t.Run("mistakes are refused with what to do, before anything is made", func(t *testing.T) {
		r := run{}
		cmd := exec.Command(framework.KnestPath(), "create", "acme")
		cmd.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(t.TempDir(), "none"), "HOME="+t.TempDir())
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		r.err, r.stderr = cmd.Run(), stderr.String()
		mustFail(t, r, "create without a host", "no host cluster", "--kubeconfig")

		values := filepath.Join(t.TempDir(), "values.yaml")
		if err := os.WriteFile(values, []byte("isolation: medium\nknestd:\n  storage:\n    size: lots\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		mustFail(t, h.knest(t, "create", "acme", "-f", values), "create with invalid values",
			"invalid chart values", "at '/isolation'", "at '/knestd/storage/size'")
		mustFail(t, h.knest(t, "create", "Acme"), "create with an invalid name", `tenant name "Acme" is invalid`)
		if _, err := h.client.CoreV1().Namespaces().Get(ctx, "knest-acme", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("a refused create made namespace knest-acme (err %v)", err)
		}
	})

	t.Run("a tenant that cannot start times out with its reason, and delete removes it", func(t *testing.T) {
		// No storage class of that name: the claim stays unbound, the pod
		// unscheduled (the preflight, skipped here, would refuse it).
		r := h.knest(t, "create", "late", "--timeout=8s", "--skip-preflight", "--set=knestd.storage.storageClassName=no-such-class")
		mustFail(t, r, "create of a tenant that cannot start", "not ready after 8s", "knest delete late -n knest-late")
		if i := strings.LastIndex(r.stderr, "knest: "); i < 0 || !strings.Contains(r.stderr[i:], "not scheduled") {
			t.Errorf("the error does not give the reason the pod is stuck:\n%s", r.stderr)
		}
		if !strings.Contains(r.stderr, "Installed ") {
			t.Errorf("no progress shown:\n%s", r.stderr)
		}
		mustSucceed(t, h.knest(t, "delete", "late"), "delete late")
		if _, err := h.client.CoreV1().Namespaces().Get(ctx, "knest-late", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("namespace knest-late, which knest created, is still there (err %v)", err)
		}
	})

	t.Run("the preflight refuses a host without the RuntimeClass or storage the tenant needs, before anything is made", func(t *testing.T) {
		mustFail(t, h.knest(t, "create", "norc", "--set=policy.runtimeClasses.forced=no-such-runtime"), "create with a RuntimeClass the host lacks",
			`the host has no RuntimeClass "no-such-runtime", which the hard profile runs every tenant pod with`, "--isolation soft", "--skip-preflight")
		mustFail(t, h.knest(t, "create", "nostore", "--isolation=soft", "--set=knestd.storage.storageClassName=no-such-class"), "create with a StorageClass the host lacks",
			`the host has no StorageClass "no-such-class" (knestd.storage.storageClassName) and no free PersistentVolume`, "knestd.storage.storageClassName=CLASS", "--skip-preflight")
		for _, ns := range []string{"knest-norc", "knest-nostore"} {
			if _, err := h.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("a create the preflight refused made namespace %s (err %v)", ns, err)
			}
		}
	})

	t.Run("an image the host cannot pull ends the wait at once, naming the image and how to set it", func(t *testing.T) {
		const ns = "knest-pull"
		create := h.knestAsync(t, "create", "pull", "--isolation=soft", "--timeout=2m", "--set=knestd.image.repository=registry.invalid/knestd", "--set=knestd.image.tag=v9")
		// The devcluster's pods run no containers (KWOK marks them
		// Running): write the status a kubelet writes when the pull fails.
		var image string
		if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			pod, err := h.client.CoreV1().Pods(ns).Get(ctx, "knestd-0", metav1.GetOptions{})
			if err != nil || pod.Status.Phase != corev1.PodRunning {
				return false, nil
			}
			image = pod.Spec.Containers[0].Image
			pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady"}}
			pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "knestd", Image: image, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
				Reason: "ImagePullBackOff", Message: `Back-off pulling image "` + image + `"`}}}}
			_, err = h.client.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
			return err == nil, nil
		}); err != nil {
			t.Fatalf("knestd-0 in %s did not run to be given a pull failure: %v", ns, err)
		}
		start := time.Now()
		r := create()
		mustFail(t, r, "create with an image the host cannot pull", "the host cannot pull knestd's image registry.invalid/knestd:v9", "ImagePullBackOff",
			"--set knestd.image.repository=REPO", "knest delete pull -n "+ns)
		// Well before the 2m timeout: the create ends on the next poll.
		if d := time.Since(start); d > time.Minute {
			t.Errorf("create took %s after the pull failed: it waited for the timeout", d)
		}
		mustSucceed(t, h.knest(t, "delete", "pull"), "delete pull")
	})

	t.Run("create, connect, use, delete in an operator's namespace leaves it empty", func(t *testing.T) {
		const ns = "team-a"
		if _, err := h.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
			ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"owner": "ops"}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		create := h.knestAsync(t, "create", "acme", "-n", ns, "--isolation=soft", "--timeout=2m")
		pod := framework.StartKnestdAsPod(t, h.cfg, h.ca, ns, "knestd-0")
		pod.WaitReady(t, readyTimeout)
		r := create()
		mustSucceed(t, r, "create acme")
		for _, want := range []string{"Namespace " + ns + " is labelled", "Installed ", "knestd-0: ready"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("create did not show %q:\n%s", want, r.stderr)
			}
		}
		if !strings.Contains(r.stdout, "Tenant acme is ready") {
			t.Errorf("create did not say the tenant is ready:\n%s", r.stdout)
		}
		checkTenantOnHost(t, h, ns, pod)

		server := pod.Server(6443)
		r = h.knest(t, "connect", "acme", "-n", ns, "--print", "--server="+server)
		mustSucceed(t, r, "connect --print")
		tenantCfg, err := clientcmd.RESTConfigFromKubeConfig([]byte(r.stdout))
		if err != nil {
			t.Fatalf("connect --print printed no kubeconfig: %v\n%s", err, r.stdout)
		}
		tenantClient := framework.Client(t, tenantCfg)
		useTenant(t, h, tenantClient, ns)

		// Without --print the context joins the user's kubeconfig, and
		// the current context (the host) stays.
		own := filepath.Join(t.TempDir(), "config")
		hostKubeconfig, err := os.ReadFile(h.kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(own, hostKubeconfig, 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(framework.KnestPath(), "connect", "acme", "-n", ns, "--server="+server, "--kubeconfig="+own)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("connect: %v\n%s", err, out)
		}
		merged, err := clientcmd.LoadFromFile(own)
		if err != nil {
			t.Fatal(err)
		}
		before, _ := clientcmd.Load(hostKubeconfig)
		// The context is named after the tenant and the host's context, so
		// that tenants of one name on two hosts do not clash.
		acmeContext := "knest-acme@" + before.CurrentContext
		if merged.Contexts[acmeContext] == nil || merged.CurrentContext != before.CurrentContext {
			t.Errorf("contexts %v, current %q (was %q)", keys(merged.Contexts), merged.CurrentContext, before.CurrentContext)
		}
		viaContext, err := clientcmd.NewNonInteractiveClientConfig(*merged, acmeContext, nil, nil).ClientConfig()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := framework.Client(t, viaContext).CoreV1().Namespaces().Get(ctx, "app", metav1.GetOptions{}); err != nil {
			t.Errorf("the merged context does not reach the tenant: %v", err)
		}

		r = h.knest(t, "kubeconfig", "acme", "-n", ns)
		mustSucceed(t, r, "kubeconfig")
		if published, err := clientcmd.Load([]byte(r.stdout)); err != nil || len(published.Clusters) != 1 {
			t.Errorf("kubeconfig printed %v, %v", published, err)
		} else {
			for _, c := range published.Clusters {
				if c.Server != "https://knestd."+ns+".svc:443" {
					t.Errorf("the published kubeconfig's server is %q, want the Service's in-cluster name", c.Server)
				}
			}
		}

		r = h.knest(t, "list")
		mustSucceed(t, r, "list")
		if !slices.ContainsFunc(strings.Split(r.stdout, "\n"), func(l string) bool {
			f := strings.Fields(l)
			return len(f) >= 5 && f[0] == "acme" && f[1] == ns && f[2] == "soft" && f[3] == "deployed" && f[4] == "ready"
		}) {
			t.Errorf("list does not show acme ready in %s:\n%s", ns, r.stdout)
		}
		// The same as data, in both formats, and the tenant's name offered
		// by shell completion.
		for _, format := range []string{"json", "yaml"} {
			r = h.knest(t, "list", "-n", ns, "-o", format)
			mustSucceed(t, r, "list -o "+format)
			var listed []map[string]any
			if err := yaml.Unmarshal([]byte(r.stdout), &listed); err != nil {
				t.Fatalf("list -o %s: %v\n%s", format, err, r.stdout)
			}
			if format == "json" && !json.Valid([]byte(r.stdout)) {
				t.Errorf("list -o json is not JSON:\n%s", r.stdout)
			}
			if len(listed) != 1 || listed[0]["name"] != "acme" || listed[0]["namespace"] != ns || listed[0]["isolation"] != "soft" ||
				listed[0]["release"] != "deployed" || listed[0]["ready"] != true || listed[0]["state"] != "ready" {
				t.Errorf("list -n %s -o %s: %v, want acme, soft, deployed and ready", ns, format, listed)
			}
		}
		r = h.knest(t, "__complete", "connect", "--kubeconfig="+h.kubeconfig, "ac")
		mustSucceed(t, r, "completing a tenant name")
		if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); !slices.Contains(lines, "acme\tnamespace "+ns+", soft") || lines[len(lines)-1] != ":4" {
			t.Errorf("completing 'knest connect ac' offered %q, want acme (namespace %s, soft) and no files", r.stdout, ns)
		}

		mustFail(t, h.knest(t, "create", "other", "-n", ns), "a second tenant in the namespace", "namespace team-a holds tenant acme", "-n")
		mustFail(t, h.knest(t, "create", "acme", "-n", ns), "creating acme twice", "tenant acme exists", "--upgrade")
		// The same values again: a new revision, the same pod.
		r = h.knest(t, "create", "acme", "-n", ns, "--isolation=soft", "--upgrade")
		mustSucceed(t, r, "create --upgrade")
		if !strings.Contains(r.stderr, "Upgrading release acme") || !strings.Contains(r.stdout, "Tenant acme is ready") {
			t.Errorf("create --upgrade did not upgrade and wait:\n%s%s", r.stderr, r.stdout)
		}
		// A re-run with one new value and without --isolation keeps the
		// soft isolation acme was created with (Helm's
		// --reset-then-reuse-values), and -o json reports the release.
		r = h.knest(t, "create", "acme", "-n", ns, "--upgrade", "--set-string=quota.hard.services=60", "-o", "json")
		mustSucceed(t, r, "create --upgrade -o json")
		var res struct {
			Name, Namespace, Isolation, Status string
			Revision                           int
			Values                             struct {
				Isolation string
				Quota     struct {
					Hard map[string]any
				}
			}
		}
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Fatalf("create -o json: %v\n%s", err, r.stdout)
		}
		if res.Name != "acme" || res.Namespace != ns || res.Isolation != "soft" || res.Status != "deployed" || res.Revision != 3 ||
			res.Values.Isolation != "soft" || res.Values.Quota.Hard["services"] != "60" {
			t.Errorf("create --upgrade -o json: %+v, want acme deployed at revision 3, soft kept, services 60", res)
		}
		if q, err := h.client.CoreV1().ResourceQuotas(ns).Get(ctx, "knest-tenant", metav1.GetOptions{}); err != nil {
			t.Error(err)
		} else if got := q.Spec.Hard[corev1.ResourceServices]; got.String() != "60" {
			t.Errorf("the host's quota allows %s services after the upgrade, want 60", got.String())
		}

		// Delete through the kubeconfig connect wrote to: the context goes
		// with the tenant, the rest of the file stays.
		r = h.knest(t, "delete", "acme", "-n", ns, "--kubeconfig="+own)
		mustSucceed(t, r, "delete acme")
		if after, err := clientcmd.LoadFromFile(own); err != nil {
			t.Error(err)
		} else if after.Contexts[acmeContext] != nil || after.Clusters[acmeContext] != nil || after.AuthInfos[acmeContext] != nil ||
			after.CurrentContext != before.CurrentContext || after.Contexts[before.CurrentContext] == nil {
			t.Errorf("after delete the kubeconfig has contexts %v, current %q (was %q)", keys(after.Contexts), after.CurrentContext, before.CurrentContext)
		}
		if !strings.Contains(r.stderr, "Removed context "+acmeContext+" from "+own) {
			t.Errorf("delete did not say it removed the context:\n%s", r.stderr)
		}
		select {
		case <-exited(pod):
		case <-time.After(30 * time.Second):
			t.Error("knestd still runs 30s after its pod was deleted")
		}
		if left := leftovers(t, h, ns); len(left) > 0 {
			t.Errorf("namespace %s still holds, after delete: %s", ns, strings.Join(left, ", "))
		}
		got, err := h.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the operator's namespace was deleted: %v", err)
		}
		if got.Labels["owner"] != "ops" || got.Labels["knest.io/tenant"] != "" {
			t.Errorf("namespace labels after delete: %v", got.Labels)
		}
	})

	t.Run("a tenant in its own namespace: hard isolation, and delete removes the namespace", func(t *testing.T) {
		create := h.knestAsync(t, "create", "beta", "--timeout=2m")
		pod := framework.StartKnestdAsPod(t, h.cfg, h.ca, "knest-beta", "knestd-0")
		pod.WaitReady(t, readyTimeout)
		r := create()
		mustSucceed(t, r, "create beta")
		got, err := h.client.CoreV1().Namespaces().Get(ctx, "knest-beta", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// The host namespace follows the floor (baseline in both
		// profiles), so the host itself does not refuse root tenant pods;
		// its Pod Security admission admitted the knestd pod.
		if got.Labels["pod-security.kubernetes.io/enforce"] != "baseline" {
			t.Errorf("namespace labels %v, want Pod Security baseline", got.Labels)
		}
		// Without --server, connect port-forwards to knestd-0 through the
		// host API server; the devcluster answers a port-forward with an
		// echo, not knestd, and connect must say the API does not answer.
		mustFail(t, h.knest(t, "connect", "beta", "--print"), "connect through the devcluster's echoing port-forward",
			"the tenant API at https://127.0.0.1:", "does not answer")
		mustSucceed(t, h.knest(t, "delete", "beta"), "delete beta")
		if _, err := h.client.CoreV1().Namespaces().Get(ctx, "knest-beta", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("namespace knest-beta, which knest created, is still there (err %v)", err)
		}
	})
}

// checkTenantOnHost checks what the chart and knestd made on the host.
func checkTenantOnHost(t *testing.T, h *host, ns string, pod *framework.KnestdPod) {
	t.Helper()
	ctx := t.Context()
	nsObj, err := h.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if nsObj.Labels["knest.io/tenant"] != "acme" || nsObj.Labels["pod-security.kubernetes.io/enforce"] != "baseline" || nsObj.Labels["owner"] != "ops" {
		t.Errorf("namespace labels %v: want the tenant, Pod Security baseline (soft), and the operator's own", nsObj.Labels)
	}
	key, err := h.client.CoreV1().Secrets(ns).Get(ctx, "knestd-encryption-key", metav1.GetOptions{})
	if err != nil || len(key.Data["key"]) == 0 {
		t.Errorf("no encryption key Secret: %v", err)
	}
	if _, err := os.Stat(filepath.Join(pod.DataDir, "encryption.key")); err == nil {
		t.Error("the encryption key is on the data volume")
	}
	claim, err := h.client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data-knestd-0", metav1.GetOptions{})
	if err != nil || claim.Status.Phase != corev1.ClaimBound {
		t.Errorf("the data claim is not bound: %v %v", claim.Status.Phase, err)
	}
	for _, a := range pod.Args {
		if strings.HasPrefix(a, "--kubernetes-service-ip") || strings.HasPrefix(a, "--dns-service-ip") {
			t.Errorf("the StatefulSet passes %s: knestd must find the Service's IP itself", a)
		}
	}
}

// useTenant works with the tenant through the connected kubeconfig and
// checks its objects reach the host namespace.
func useTenant(t *testing.T, h *host, tenant kubernetes.Interface, ns string) {
	t.Helper()
	ctx := t.Context()
	svc, err := h.client.CoreV1().Services(ns).Get(ctx, "knestd", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kube, err := tenant.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if kube.Spec.ClusterIP != svc.Spec.ClusterIP {
		t.Errorf("the tenant's kubernetes Service has %s, the host Service knestd %s", kube.Spec.ClusterIP, svc.Spec.ClusterIP)
	}
	if _, err := tenant.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := tenant.CoreV1().ConfigMaps("app").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := tenant.CoreV1().Secrets("app").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds"}, StringData: map[string]string{"pw": "x"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := tenant.CoreV1().Services("app").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65534)},
			Containers: []corev1.Container{{
				Name: "web", Image: "nginx",
				EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}},
			}},
			Volumes: []corev1.Volume{{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}}},
		},
	}
	if _, err := tenant.CoreV1().Pods("app").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := tenant.CoreV1().Pods("app").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, nil
	})
	if err != nil {
		t.Fatalf("the tenant pod does not run: %v", err)
	}
	sel := metav1.ListOptions{LabelSelector: translate.LabelTenant + "=acme"}
	for what, list := range map[string]func() (int, error){
		"pods": func() (int, error) { l, err := h.client.CoreV1().Pods(ns).List(ctx, sel); return len(l.Items), err },
		"configmaps": func() (int, error) {
			l, err := h.client.CoreV1().ConfigMaps(ns).List(ctx, sel)
			return len(l.Items), err
		},
		"secrets":  func() (int, error) { l, err := h.client.CoreV1().Secrets(ns).List(ctx, sel); return len(l.Items), err },
		"services": func() (int, error) { l, err := h.client.CoreV1().Services(ns).List(ctx, sel); return len(l.Items), err },
	} {
		if n, err := list(); err != nil || n == 0 {
			t.Errorf("no %s of the tenant on the host (%v)", what, err)
		}
	}
}

// leftovers lists every object of the namespace, of every namespaced
// resource type the host serves, except what Kubernetes puts in every
// namespace.
func leftovers(t *testing.T, h *host, ns string) []string {
	t.Helper()
	lists, err := discovery.ServerPreferredNamespacedResources(h.client.Discovery())
	if err != nil {
		t.Fatal(err)
	}
	quiet := rest.CopyConfig(h.cfg)
	quiet.WarningHandler = rest.NoWarnings{}
	dyn, err := dynamic.NewForConfig(quiet)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") {
				continue
			}
			items, err := dyn.Resource(gv.WithResource(r.Name)).Namespace(ns).List(t.Context(), metav1.ListOptions{})
			if err != nil {
				t.Errorf("list %s: %v", r.Name, err)
				continue
			}
			for _, item := range items.Items {
				name := item.GetName()
				if gv.Group == "" && (r.Name == "configmaps" && name == "kube-root-ca.crt" || r.Name == "serviceaccounts" && name == "default") {
					continue
				}
				out = append(out, gv.WithResource(r.Name).GroupResource().String()+"/"+name)
			}
		}
	}
	return out
}

func exited(p *framework.KnestdPod) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		_ = p.ExitErr()
		close(ch)
	}()
	return ch
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
