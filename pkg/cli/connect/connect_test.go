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
	path := filepath.Join(t.TempDir(), "config")
	mine := clientcmdapi.NewConfig()
	mine.Clusters["host"] = &clientcmdapi.Cluster{Server: "https://host:6443"}
	mine.AuthInfos["host"] = &clientcmdapi.AuthInfo{Token: "t"}
	mine.Contexts["host"] = &clientcmdapi.Context{Cluster: "host", AuthInfo: "host"}
	mine.CurrentContext = "host"
	if err := clientcmd.WriteToFile(*mine, path); err != nil {
		t.Fatal(err)
	}
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
