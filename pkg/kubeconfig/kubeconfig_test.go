package kubeconfig

import (
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

// A client of an API server on the same machine asks for uncompressed
// responses (its informers' watch events are otherwise gzipped one by one);
// others keep client-go's default.
func TestUncompressedReachesTheRESTConfig(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, uncompressed := range []bool{false, true} {
		c := Client{Name: "t", Server: "https://127.0.0.1:6443", CAFile: ca, Token: "x", Uncompressed: uncompressed}
		api, err := c.Build()
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "kubeconfig")
		if err := clientcmd.WriteToFile(*api, path); err != nil {
			t.Fatal(err)
		}
		cfg, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.DisableCompression != uncompressed {
			t.Errorf("Uncompressed %v: the written kubeconfig gives DisableCompression %v", uncompressed, cfg.DisableCompression)
		}
	}
}
