package perf

import "testing"

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
