package up

import (
	"os"
	"path/filepath"
	"testing"
)

// The printed commands use the kubectl `make build` puts beside knest-dev,
// as the README's bin/kubectl, and kubectl from PATH without it.
func TestKubectlCommand(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	self := filepath.Join(bin, "knest-dev")
	t.Chdir(dir)
	if got := KubectlCommand(self); got != "kubectl" {
		t.Errorf("without bin/kubectl: %q, want kubectl", got)
	}
	if err := os.WriteFile(filepath.Join(bin, "kubectl"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := KubectlCommand(self); got != filepath.Join("bin", "kubectl") {
		t.Errorf("from the checkout: %q, want bin/kubectl", got)
	}
	t.Chdir(t.TempDir())
	if got := KubectlCommand(self); got != filepath.Join(bin, "kubectl") {
		t.Errorf("from elsewhere: %q, want %s", got, filepath.Join(bin, "kubectl"))
	}
}
