package version

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/knest-dev/knest/pkg/cli"
)

// kubernetesInGoMod is the k8s.io/kubernetes version knestd is built from.
func kubernetesInGoMod(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*k8s\.io/kubernetes (v\S+)$`).FindSubmatch(data)
	if m == nil {
		t.Fatal("go.mod requires no k8s.io/kubernetes")
	}
	return string(m[1])
}

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := NewCommand(cli.Streams{Out: &out, ErrOut: &out})
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	err := cmd.Execute()
	return out.String(), err
}

func TestVersionJSON(t *testing.T) {
	out, err := run(t, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	chart, _ := got["chart"].(map[string]any)
	if chart["name"] != "knest" || chart["version"] == "" {
		t.Errorf("chart = %v, want name knest and its version", got["chart"])
	}
	// The chart's appVersion is knest's version (the knestd image's tag),
	// not Kubernetes'.
	if v, _ := chart["version"].(string); chart["appVersion"] != "v"+v {
		t.Errorf("chart appVersion %v, want v<chart version> (knest's version)", chart["appVersion"])
	}
	// The tenants run the Kubernetes this repository builds knestd from.
	if want := kubernetesInGoMod(t); got["kubernetes"] != want || !strings.Contains(out, `"`+want+`"`) {
		t.Errorf("kubernetes = %v, want %s (go.mod)", got["kubernetes"], want)
	}
	client, _ := got["client"].(map[string]any)
	for _, key := range []string{"version", "commit", "platform"} {
		if s, _ := client[key].(string); s == "" {
			t.Errorf("client.%s is empty: %v", key, client)
		}
	}
}

func TestVersionText(t *testing.T) {
	out, err := run(t)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "chart knest ") || !strings.Contains(out, "tenant Kubernetes "+kubernetesInGoMod(t)) {
		t.Errorf("text output lacks the chart or the tenant Kubernetes version:\n%s", out)
	}
	if _, err := run(t, "-o", "wide"); err == nil || !strings.Contains(err.Error(), `unknown output format "wide"`) {
		t.Errorf("-o wide: got %v, want an unknown-format error", err)
	}
}
