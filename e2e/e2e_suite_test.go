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
}

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
		return []byte(kc)
	}
	return []byte(startDevEnvironment(ctx))
}, func(kubeconfig []byte) {
	cfg, err := clientcmd.BuildConfigFromFlags("", string(kubeconfig))
	Expect(err).NotTo(HaveOccurred(), "loading the host kubeconfig")
	cfg.QPS, cfg.Burst = 100, 200
	env.hostConfig = cfg
	env.host, err = kubernetes.NewForConfig(cfg)
	Expect(err).NotTo(HaveOccurred(), "creating the host client")
}, NodeTimeout(5*time.Minute))

// startDevEnvironment runs `knest dev up` for the whole suite and returns
// the host kubeconfig. The process is stopped after the suite.
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
	cmd := exec.Command(knest, "dev", "up", "--dir", dir, "--tenants", "e2e")
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
	return filepath.Join(dir, "host.kubeconfig")
}

func errString(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
