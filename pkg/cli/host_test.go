package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
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

// The host flags are kubectl's (cli-runtime's ConfigFlags), and the ones
// beyond --kubeconfig and --context reach the host's client configuration.
func TestHostFlagsAreKubectls(t *testing.T) {
	dir := t.TempDir()
	kc := filepath.Join(dir, "config")
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: h, cluster: {server: "https://127.0.0.1:1"}}, {name: other, cluster: {server: "https://127.0.0.2:2"}}]
users: [{name: h, user: {token: t}}]
contexts: [{name: h, context: {cluster: h, user: h}}]
current-context: h
`), 0o600); err != nil {
		t.Fatal(err)
	}
	var f HostFlags
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	f.AddFlags(fs)
	for _, name := range []string{"kubeconfig", "context", "cluster", "user", "token", "as", "as-group", "certificate-authority", "insecure-skip-tls-verify", "request-timeout"} {
		if fs.Lookup(name) == nil {
			t.Errorf("no --%s flag", name)
		}
	}
	// -n is the tenant's host namespace (AddNamespaceFlag) and --server
	// the tenant's address in connect: the host flags leave both alone.
	for _, name := range []string{"namespace", "server", "cache-dir"} {
		if fs.Lookup(name) != nil {
			t.Errorf("the host flags register --%s", name)
		}
	}
	if err := fs.Parse([]string{"--kubeconfig", kc, "--cluster=other", "--token=abc", "--as=bob", "--as-group=devs", "--insecure-skip-tls-verify", "--request-timeout=7s"}); err != nil {
		t.Fatal(err)
	}
	if f.Kubeconfig != kc {
		t.Errorf("Kubeconfig = %q, want %q", f.Kubeconfig, kc)
	}
	cfg, err := f.Config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://127.0.0.2:2" || cfg.BearerToken != "abc" || cfg.Impersonate.UserName != "bob" ||
		len(cfg.Impersonate.Groups) != 1 || cfg.Impersonate.Groups[0] != "devs" || !cfg.Insecure || cfg.Timeout != 7*time.Second {
		t.Errorf("config = host %q token %q impersonate %+v insecure %v timeout %v", cfg.Host, cfg.BearerToken, cfg.Impersonate, cfg.Insecure, cfg.Timeout)
	}
}
