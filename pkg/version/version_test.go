package version

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLdflagsStampTheVersion builds a tiny program with hack/ldflags.sh's
// flags and checks the stamp reaches Get: a renamed variable would
// otherwise leave every release reporting v0.0.0-dev.
func TestLdflagsStampTheVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	ldflags, err := exec.CommandContext(t.Context(), "bash", "../../hack/ldflags.sh").Output()
	if err != nil {
		t.Fatalf("hack/ldflags.sh: %v", err)
	}
	if !strings.Contains(string(ldflags), "github.com/knest-dev/knest/pkg/version.version=") ||
		!strings.Contains(string(ldflags), "github.com/knest-dev/knest/pkg/version.commit=") {
		t.Fatalf("hack/ldflags.sh does not stamp pkg/version: %s", ldflags)
	}
	bin := t.TempDir() + "/v"
	build := exec.CommandContext(t.Context(), "go", "build", "-ldflags", strings.TrimSpace(string(ldflags)), "-o", bin, "./testdata/printversion")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.CommandContext(t.Context(), bin).Output()
	if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	got := strings.Fields(string(out))
	if len(got) != 3 || got[0] == "v0.0.0-dev" || got[1] == "unknown" || !strings.HasPrefix(got[2], "v1.") {
		t.Errorf("stamped binary prints %q, want a version, a commit and a Kubernetes v1.x version", out)
	}
}
