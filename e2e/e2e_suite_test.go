package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// env is what the specs run against.
var env struct {
	hostConfig *rest.Config
	host       kubernetes.Interface
	// tenant is nil when the suite runs against a host without a tenant.
	tenant kubernetes.Interface
	// tenantHostNamespace is the host namespace the tenant syncs into.
	tenantHostNamespace string
	// tenants are every tenant the suite has, the one above first, each
	// with its profile: the ordinary-usage specs run in each.
	tenants []tenantEnv
}

// tenantEnv is one tenant of the suite.
type tenantEnv struct {
	client        kubernetes.Interface
	hostNamespace string
	// profile is the tenant's isolation profile, for spec names.
	profile string
}

// The tenants the suite's own environment runs: the default (hard) profile
// and soft.
const (
	e2eTenant     = "e2e"
	e2eSoftTenant = "e2e-soft"
)

func TestE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end suite")
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, "knest e2e")
}

var _ = SynchronizedBeforeSuite(func(ctx SpecContext) []byte {
	if kc := os.Getenv("KNEST_E2E_HOST_KUBECONFIG"); kc != "" {
		By("using the host cluster in " + kc)
		// An existing tenant may be named too; its specs skip otherwise.
		profile := os.Getenv("KNEST_E2E_TENANT_PROFILE")
		if profile == "" {
			profile = "hard"
		}
		return []byte(kc + "\n" + os.Getenv("KNEST_E2E_TENANT_KUBECONFIG") + "\n" + os.Getenv("KNEST_E2E_TENANT_HOST_NAMESPACE") + "\n" + profile)
	}
	dir := startDevEnvironment(ctx)
	tenant := func(name, profile string) string {
		return filepath.Join(dir, "tenants", name+".kubeconfig") + "\nknest-" + name + "\n" + profile
	}
	return []byte(filepath.Join(dir, "host.kubeconfig") + "\n" + tenant(e2eTenant, "hard") + "\n" + tenant(e2eSoftTenant, "soft"))
}, func(data []byte) {
	parts := strings.Split(string(data), "\n")
	env.hostConfig, env.host = client(parts[0])
	for rest := parts[1:]; len(rest) >= 3; rest = rest[3:] {
		if rest[0] == "" {
			continue
		}
		_, c := client(rest[0])
		env.tenants = append(env.tenants, tenantEnv{client: c, hostNamespace: rest[1], profile: rest[2]})
	}
	if len(env.tenants) > 0 {
		env.tenant, env.tenantHostNamespace = env.tenants[0].client, env.tenants[0].hostNamespace
	}
}, NodeTimeout(5*time.Minute))

func client(kubeconfig string) (*rest.Config, kubernetes.Interface) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	Expect(err).NotTo(HaveOccurred(), "loading kubeconfig %s", kubeconfig)
	cfg.QPS, cfg.Burst = 100, 200
	c, err := kubernetes.NewForConfig(cfg)
	Expect(err).NotTo(HaveOccurred(), "creating a client for %s", kubeconfig)
	return cfg, c
}

// startDevEnvironment runs `knest dev up` with tenants "e2e" (hard) and
// "e2e-soft" (soft) for the whole suite and returns its directory. The process is stopped after the suite.
func startDevEnvironment(ctx context.Context) string {
	binDir := os.Getenv("KNEST_BIN_DIR")
	if binDir == "" {
		binDir = filepath.Join("..", "bin")
	}
	knest, err := filepath.Abs(filepath.Join(binDir, "knest"))
	Expect(err).NotTo(HaveOccurred())
	Expect(knest).To(BeAnExistingFile(), "knest binary (run 'make build' or set KNEST_BIN_DIR)")
	dir, err := os.MkdirTemp("", "knest-e2e-")
	Expect(err).NotTo(HaveOccurred())

	By("starting knest dev up in " + dir)
	cmd := exec.Command(knest, "dev", "up", "--dir", dir, "--tenants", e2eTenant+":hard,"+e2eSoftTenant+":soft")
	stdout, err := cmd.StdoutPipe()
	Expect(err).NotTo(HaveOccurred())
	cmd.Stderr = GinkgoWriter
	Expect(cmd.Start()).To(Succeed())
	up := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			GinkgoWriter.Println(sc.Text())
			if strings.HasPrefix(sc.Text(), "knest dev is up") {
				close(up)
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	DeferCleanup(func() {
		By("stopping knest dev")
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			Fail("knest dev did not stop within 30s of SIGTERM")
		}
		if !CurrentSpecReport().Failed() {
			os.RemoveAll(dir)
		} else {
			GinkgoWriter.Println("knest dev data and logs kept in", dir)
		}
	})
	select {
	case <-up:
	case err := <-exited:
		Fail("knest dev up exited before it was up: " + errString(err) + "; logs in " + filepath.Join(dir, "logs"))
	case <-time.After(3 * time.Minute):
		Fail("knest dev up was not up within 3 minutes; logs in " + filepath.Join(dir, "logs"))
	case <-ctx.Done():
		Fail("interrupted")
	}
	return dir
}

func errString(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
