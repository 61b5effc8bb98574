package disconnect

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/knest-dev/knest/pkg/cli"
	"github.com/knest-dev/knest/pkg/tenant"
)

// kubeconfig writes a kubeconfig with host contexts kind-a (current) and
// kind-b, tenant acme's contexts as connect adds them on each host and as
// older versions named them, and a context of the same name pointing
// elsewhere.
func kubeconfig(t *testing.T) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	add := func(name, server, serverName string) {
		cfg.Clusters[name] = &clientcmdapi.Cluster{Server: server, TLSServerName: serverName}
		cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: "t"}
		cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	}
	acme := tenant.ServiceHost(tenant.DefaultNamespace("acme"))
	add("kind-a", "https://127.0.0.1:6443", "")
	add("kind-b", "https://127.0.0.1:7443", "")
	add("knest-acme@kind-a", "https://127.0.0.1:40001", acme)
	add("knest-acme@kind-b", "https://127.0.0.1:40002", acme)
	add("knest-acme", "https://127.0.0.1:40003", acme)
	add("knest-other", "https://127.0.0.1:40004", "somewhere.else")
	cfg.CurrentContext = "kind-a"
	file := filepath.Join(t.TempDir(), "config")
	if err := clientcmd.WriteToFile(*cfg, file); err != nil {
		t.Fatal(err)
	}
	return file
}

func contexts(t *testing.T, file string) []string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for n := range cfg.Contexts {
		out = append(out, n)
	}
	slices.Sort(out)
	if cfg.CurrentContext != "kind-a" {
		t.Errorf("current context %q, want kind-a kept", cfg.CurrentContext)
	}
	return out
}

func TestDisconnectRemovesOnlyThisHostsContexts(t *testing.T) {
	file := kubeconfig(t)
	var out bytes.Buffer
	streams := cli.Streams{Out: &out, ErrOut: &out}
	if err := Run(streams, "acme", Options{Host: cli.HostFlags{Kubeconfig: file}}); err != nil {
		t.Fatal(err)
	}
	want := []string{"kind-a", "kind-b", "knest-acme@kind-b", "knest-other"}
	if got := contexts(t, file); !slices.Equal(got, want) {
		t.Errorf("contexts %v, want %v (host kind-a's and the older context of acme removed)", got, want)
	}
	if !strings.Contains(out.String(), "Removed context knest-acme@kind-a") || !strings.Contains(out.String(), "Removed context knest-acme from") {
		t.Errorf("output %q does not name the removed contexts", out.String())
	}
	if err := Run(streams, "acme", Options{Host: cli.HostFlags{Kubeconfig: file}}); err == nil || !strings.Contains(err.Error(), "no context of tenant acme") {
		t.Errorf("a second disconnect: %v, want an error saying there is nothing to remove", err)
	}
	// The other host's context goes when that host is named.
	if err := Run(streams, "acme", Options{Host: cli.HostFlags{Kubeconfig: file, Context: "kind-b"}}); err != nil {
		t.Fatal(err)
	}
	if got := contexts(t, file); !slices.Equal(got, []string{"kind-a", "kind-b", "knest-other"}) {
		t.Errorf("contexts %v after disconnecting on kind-b", got)
	}
	// A context of the given name that is not this tenant's stays.
	if err := Run(streams, "acme", Options{Host: cli.HostFlags{Kubeconfig: file}, ContextName: "knest-other"}); err == nil {
		t.Errorf("disconnect removed a context that points at another server")
	}
	if got := contexts(t, file); !slices.Contains(got, "knest-other") {
		t.Errorf("knest-other was removed: %v", got)
	}
}

func TestTenantContextNamesCarryTheHost(t *testing.T) {
	file := kubeconfig(t)
	if got := (cli.HostFlags{Kubeconfig: file}).TenantContextName("acme"); got != "knest-acme@kind-a" {
		t.Errorf("TenantContextName = %q, want the current host context in it", got)
	}
	if got := (cli.HostFlags{Kubeconfig: file, Context: "kind-b"}).TenantContextName("acme"); got != "knest-acme@kind-b" {
		t.Errorf("TenantContextName with --context kind-b = %q", got)
	}
}
