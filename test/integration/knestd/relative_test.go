package knestd

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/knest-dev/knest/test/integration/framework"
)

// TestIntegrationRelativeDataDir starts knestd with a data dir relative to
// its working directory, as a user types it (knestd --data-dir data; knest
// dev up --dir _output/dev passes one on to the devcluster): the
// controller-manager's kubeconfig names its certificate files by path, and
// client-go reads a relative path there relative to the kubeconfig's own
// directory, so such a path named files that did not exist and the
// controllers never started. Now knestd becomes ready, its controllers run
// (the default ServiceAccount appears), and every file a kubeconfig in the
// data dir names exists as written.
func TestIntegrationRelativeDataDir(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	work := t.TempDir()
	k := framework.StartIn(t, work, "data", "--secure-port=0")
	k.WaitReady(t, readyTimeout)

	client := framework.Client(t, framework.AdminConfig(t, filepath.Join(work, "data", "admin.kubeconfig")))
	if err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		t.Fatalf("no default ServiceAccount: the controllers do not run (%v)", err)
	}

	kubeconfigs, err := filepath.Glob(filepath.Join(work, "data", "*.kubeconfig"))
	if err != nil || len(kubeconfigs) == 0 {
		t.Fatalf("no kubeconfig in the data dir (%v)", err)
	}
	for _, path := range kubeconfigs {
		cfg, err := clientcmd.LoadFromFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for name, a := range cfg.AuthInfos {
			for _, f := range []string{a.ClientCertificate, a.ClientKey} {
				if f == "" {
					continue
				}
				if !filepath.IsAbs(f) {
					t.Errorf("%s: user %s names %s, a relative path", filepath.Base(path), name, f)
				}
				if _, err := os.Stat(f); err != nil {
					t.Errorf("%s: user %s names %s: %v", filepath.Base(path), name, f, err)
				}
			}
		}
		for name, c := range cfg.Clusters {
			if c.CertificateAuthority == "" {
				continue
			}
			if _, err := os.Stat(c.CertificateAuthority); err != nil || !filepath.IsAbs(c.CertificateAuthority) {
				t.Errorf("%s: cluster %s names CA %s (%v)", filepath.Base(path), name, c.CertificateAuthority, err)
			}
		}
	}
}
