package connect

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

func published() *clientcmdapi.Config {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["acme"] = &clientcmdapi.Cluster{Server: "https://knestd.knest-acme.svc:443", CertificateAuthorityData: []byte("ca")}
	cfg.AuthInfos["acme"] = &clientcmdapi.AuthInfo{ClientCertificateData: []byte("cert"), ClientKeyData: []byte("key")}
	cfg.Contexts["acme"] = &clientcmdapi.Context{Cluster: "acme", AuthInfo: "acme"}
	cfg.CurrentContext = "acme"
	return cfg
}

func TestRetargetKeepsTheCredentialsAndChecksTheServiceName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, server, wantServerName string
	}{
		{name: "a port-forward checks the certificate against the Service name", server: "https://127.0.0.1:41234", wantServerName: "knestd.knest-acme.svc"},
		{name: "a load balancer too", server: "https://203.0.113.9:443", wantServerName: "knestd.knest-acme.svc"},
		{name: "the Service name itself needs no override", server: "https://knestd.knest-acme.svc:443", wantServerName: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := published()
			got, err := Retarget(in, "knest-acme", tc.server, "knestd.knest-acme.svc")
			if err != nil {
				t.Fatal(err)
			}
			c := got.Clusters["knest-acme"]
			if c == nil || c.Server != tc.server || c.TLSServerName != tc.wantServerName || string(c.CertificateAuthorityData) != "ca" {
				t.Errorf("cluster = %+v", c)
			}
			if u := got.AuthInfos["knest-acme"]; u == nil || string(u.ClientKeyData) != "key" {
				t.Errorf("user = %+v", u)
			}
			if got.CurrentContext != "knest-acme" || len(got.Contexts) != 1 {
				t.Errorf("contexts %v, current %q", got.Contexts, got.CurrentContext)
			}
			if in.Clusters["acme"].Server != "https://knestd.knest-acme.svc:443" {
				t.Error("Retarget changed its input")
			}
		})
	}
}

func TestMergeAddsTheContextAndKeepsTheCurrentOne(t *testing.T) {
	t.Parallel()
	path := writeKubeconfig(t, "host")
	cfg, err := Retarget(published(), "knest-acme", "https://127.0.0.1:1", "knestd.knest-acme.svc")
	if err != nil {
		t.Fatal(err)
	}
	po := clientcmd.NewDefaultPathOptions()
	po.LoadingRules.ExplicitPath = path
	for range 2 { // merging again replaces, it does not duplicate
		written, err := Merge(po, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if written != path {
			t.Errorf("wrote %s, want %s", written, path)
		}
	}
	got, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.CurrentContext != "host" {
		t.Errorf("current context = %q: knest's own commands would now talk to the tenant as the host", got.CurrentContext)
	}
	var names []string
	for n := range got.Contexts {
		names = append(names, n)
	}
	if diff := cmp.Diff([]string{"host", "knest-acme"}, slices.Sorted(slices.Values(names))); diff != "" {
		t.Errorf("contexts (-want +got):\n%s", diff)
	}
}

func TestUnmergeRemovesOnlyTheTenantsContext(t *testing.T) {
	t.Parallel()
	// knest-other: a context of the user's that happens to have a knest-like
	// name.
	path := writeKubeconfig(t, "host", "knest-other")
	po := clientcmd.NewDefaultPathOptions()
	po.LoadingRules.ExplicitPath = path
	cfg, err := Retarget(published(), "knest-acme", "https://127.0.0.1:1", "knestd.knest-acme.svc")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Merge(po, cfg); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name, serviceHost string
		want              bool
	}{
		{name: "knest-acme", serviceHost: "knestd.other-ns.svc", want: false}, // another tenant's name
		{name: "knest-other", serviceHost: "knestd.knest-other.svc", want: false},
		{name: "knest-missing", serviceHost: "knestd.knest-missing.svc", want: false},
		{name: "knest-acme", serviceHost: "knestd.knest-acme.svc", want: true},
		{name: "knest-acme", serviceHost: "knestd.knest-acme.svc", want: false}, // gone already
	} {
		removed, err := Unmerge(po, tt.name, tt.serviceHost)
		if err != nil {
			t.Fatal(err)
		}
		if removed != tt.want {
			t.Errorf("Unmerge(%s, %s) = %v, want %v", tt.name, tt.serviceHost, removed, tt.want)
		}
	}
	got, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.CurrentContext != "host" {
		t.Errorf("current context = %q, want host", got.CurrentContext)
	}
	for _, m := range []map[string]bool{keys(got.Contexts), keys(got.Clusters), keys(got.AuthInfos)} {
		if diff := cmp.Diff(map[string]bool{"host": true, "knest-other": true}, m); diff != "" {
			t.Errorf("left in the kubeconfig (-want +got):\n%s", diff)
		}
	}
}

func keys[V any](m map[string]V) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}

// writeKubeconfig writes a kubeconfig with a context (and its cluster and
// user) of each name; the first is current.
func writeKubeconfig(t *testing.T, names ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config")
	cfg := clientcmdapi.NewConfig()
	for _, n := range names {
		cfg.Clusters[n] = &clientcmdapi.Cluster{Server: "https://" + n + ":6443"}
		cfg.AuthInfos[n] = &clientcmdapi.AuthInfo{Token: "token-of-" + n}
		cfg.Contexts[n] = &clientcmdapi.Context{Cluster: n, AuthInfo: n}
	}
	cfg.CurrentContext = names[0]
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}
