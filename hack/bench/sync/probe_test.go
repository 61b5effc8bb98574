package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseMetrics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		text string
		want []sample
	}{
		{
			name: "a sample without labels is its name and value",
			text: "go_gc_heap_live_bytes 1.2345e+08\n",
			want: []sample{{name: "go_gc_heap_live_bytes", labels: map[string]string{}, value: 1.2345e+08}},
		},
		{
			name: "labels are read, comments and blank lines skipped",
			text: "# HELP x y\n# TYPE x counter\n\nrest_client_requests_total{code=\"201\",host=\"127.0.0.1:6443\",method=\"POST\"} 2001\n",
			want: []sample{{name: "rest_client_requests_total", labels: map[string]string{"code": "201", "host": "127.0.0.1:6443", "method": "POST"}, value: 2001}},
		},
		{
			name: "escaped quotes and commas stay in a label value",
			text: `m{a="x\"y,z}",b="2"} 3 1700000000` + "\n",
			want: []sample{{name: "m", labels: map[string]string{"a": `x"y,z}`, "b": "2"}, value: 3}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseMetrics(strings.NewReader(tt.text))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, []sample(got), cmp.AllowUnexported(sample{})); diff != "" {
				t.Errorf("parseMetrics (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDeltaGroupsByLabels(t *testing.T) {
	t.Parallel()
	before, err := parseMetrics(strings.NewReader(`w{cluster="host",kind="Pod",op="create"} 1
w{cluster="host",kind="Secret",op="create"} 5
`))
	if err != nil {
		t.Fatal(err)
	}
	after, err := parseMetrics(strings.NewReader(`w{cluster="host",kind="Pod",op="create"} 11
w{cluster="host",kind="Secret",op="create"} 5
w{cluster="tenant",kind="Pod",op="status"} 4
`))
	if err != nil {
		t.Fatal(err)
	}
	got := delta(before, after, "w", map[string]string{"cluster": "host"}, "kind", "op")
	if diff := cmp.Diff(map[string]float64{"Pod create": 10}, got); diff != "" {
		t.Errorf("delta (-want +got):\n%s", diff)
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		stack []string
		want  string
	}{
		{
			name:  "a status patch counts as the patch, not the handler chain around it",
			stack: []string{"runtime.mallocgc", "k8s.io/apiserver/pkg/endpoints/handlers.(*jsonPatcher).applyPatchToCurrentObject", "k8s.io/apiserver/pkg/endpoints/filters.withAuthentication.func1"},
			want:  "tenant API: patch (pod status)",
		},
		{
			name:  "the syncer's reconcile",
			stack: []string{"encoding/json.Marshal", "github.com/knest-dev/knest/pkg/syncer.(*podReconciler).Reconcile", "sigs.k8s.io/controller-runtime/pkg/internal/controller.(*Controller).reconcileHandler"},
			want:  "syncer: reconcilers",
		},
		{
			name:  "unmatched stacks are the runtime's",
			stack: []string{"runtime.newstack", "runtime.morestack.abi0"},
			want:  "other (Go runtime: stack growth, scheduling, GC assists outside these)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := classify(tt.stack); got != tt.want {
				t.Errorf("classify = %q, want %q", got, tt.want)
			}
		})
	}
}
