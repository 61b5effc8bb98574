package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/knest-dev/knest/test/integration/framework"
)

// kubernetesInGoMod is the k8s.io/kubernetes version knest embeds.
func kubernetesInGoMod(t *testing.T) string {
	t.Helper()
	root, err := framework.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*k8s\.io/kubernetes (v\S+)$`).FindSubmatch(data)
	if m == nil {
		t.Fatal("go.mod requires no k8s.io/kubernetes")
	}
	return string(m[1])
}

type kubectlVersion struct {
	ClientVersion *struct{ GitVersion, Major, Minor string } `json:"clientVersion"`
	ServerVersion *struct{ GitVersion, Major, Minor string } `json:"serverVersion"`
}

// TestIntegrationKubectlVersion checks that the bin/kubectl `make build`
// builds is the Kubernetes release knest embeds, so the README's kubectl is
// inside the supported version skew of the tenants and the devcluster: it
// says so, and a server of that version gets no skew warning.
func TestIntegrationKubectlVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	want := kubernetesInGoMod(t)
	major, minor, _ := strings.Cut(strings.TrimPrefix(want, "v"), ".")
	minor, _, _ = strings.Cut(minor, ".")

	out, err := framework.Run(t, time.Minute, framework.KubectlPath(), "version", "--client", "-o", "json")
	if err != nil {
		t.Fatalf("%s version --client: %v\n%s", framework.KubectlPath(), err, out)
	}
	var v kubectlVersion
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.ClientVersion == nil {
		t.Fatalf("kubectl version -o json printed no clientVersion (%v):\n%s", err, out)
	}
	if v.ClientVersion.GitVersion != want || v.ClientVersion.Major != major || v.ClientVersion.Minor != minor {
		t.Errorf("bin/kubectl is %+v, want gitVersion %s, major %s, minor %s (k8s.io/kubernetes in go.mod)", *v.ClientVersion, want, major, minor)
	}

	// Against the devcluster's API server (built from the same release):
	// the same version, and no "version difference" warning.
	h := startHost(t)
	out, err = framework.Run(t, time.Minute, framework.KubectlPath(), "--kubeconfig", h.kubeconfig, "version", "-o", "json")
	if err != nil {
		t.Fatalf("kubectl version against the devcluster: %v\n%s", err, out)
	}
	if strings.Contains(out, "WARNING") {
		t.Errorf("kubectl warns against a server of the release knest embeds:\n%s", out)
	}
	start := strings.Index(out, "{")
	if start < 0 || json.Unmarshal([]byte(out[start:]), &v) != nil || v.ServerVersion == nil || v.ServerVersion.GitVersion != want {
		t.Errorf("server version is not %s:\n%s", want, out)
	}
}
