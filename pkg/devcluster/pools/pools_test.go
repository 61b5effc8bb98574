package pools

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

func write(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pools.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	t.Parallel()
	got, err := Load(write(t, `
- name: gpu
  count: 2
  labels: {accelerator: a100}
  taints: [{key: gpu, value: "true", effect: NoSchedule}]
  cpu: "64"
  memory: 512Gi
  maxPods: 110
- name: small
  count: 3
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []NodePool{
		{Name: "gpu", Count: 2, Labels: map[string]string{"accelerator": "a100"}, Taints: []corev1.Taint{{Key: "gpu", Value: "true", Effect: corev1.TaintEffectNoSchedule}}, CPU: "64", Memory: "512Gi", MaxPods: 110},
		{Name: "small", Count: 3, CPU: "32", Memory: "128Gi", MaxPods: 1000},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pools (-want +got):\n%s", diff)
	}
}

func TestLoadRefusesBadFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, content, want string
	}{
		{name: "unknown fields", content: "- name: a\n  count: 1\n  gpus: 4\n", want: `unknown field "gpus"`},
		{name: "bad capacity", content: "- name: a\n  count: 1\n  cpu: lots\n", want: `capacity "lots"`},
		{name: "bad taint effect", content: "- name: a\n  count: 1\n  taints: [{key: k, effect: Never}]\n", want: `effect "Never"`},
		{name: "duplicate pools", content: "- name: a\n  count: 1\n- name: a\n  count: 1\n", want: `node pool "a" is defined twice`},
		{name: "no nodes at all", content: "- name: a\n  count: 0\n", want: "node pools have no nodes"},
		{name: "bad pool name", content: "- name: A_1\n  count: 1\n", want: `node pool name "A_1" is invalid`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load(write(t, tc.content))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestDefaultsAreValid(t *testing.T) {
	t.Parallel()
	if err := Validate(Defaults(2, 1)); err != nil {
		t.Fatal(err)
	}
}
