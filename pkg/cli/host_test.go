package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHostConfigErrorsSayWhatToDo(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("KUBECONFIG", filepath.Join(dir, "missing"))
	t.Setenv("HOME", dir)
	if _, err := (HostFlags{}).Config(); err == nil || !strings.Contains(err.Error(), "no host cluster") || !strings.Contains(err.Error(), "--kubeconfig") {
		t.Errorf("no kubeconfig: error = %v", err)
	}
	kc := filepath.Join(dir, "config")
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: h, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: h, user: {token: t}}]
contexts: [{name: h, context: {cluster: h, user: h}}]
current-context: h
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (HostFlags{Kubeconfig: kc, Context: "other"}).Config(); err == nil || !strings.Contains(err.Error(), `"other"`) || !strings.Contains(err.Error(), "--context") {
		t.Errorf("unknown context: error = %v", err)
	}
	cfg, err := (HostFlags{Kubeconfig: kc}).Config()
	if err != nil || cfg.Host != "https://127.0.0.1:1" {
		t.Errorf("config = %v, %v", cfg, err)
	}
	if got := TenantNamespace("acme", ""); got != "knest-acme" {
		t.Errorf("default namespace = %q", got)
	}
}
