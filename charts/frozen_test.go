package charts

import (
	"strings"
	"testing"
)

func TestFrozen(t *testing.T) {
	t.Parallel()
	for _, frozen := range []bool{false, true} {
		out, err := render(t, map[string]any{"frozen": frozen})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(out["knest/templates/statefulset.yaml"], "- --frozen\n"); got != frozen {
			t.Errorf("frozen=%v: knestd runs with --frozen: %v", frozen, got)
		}
	}
	if _, err := render(t, map[string]any{"frozen": "yes"}); err == nil {
		t.Error("a frozen value that is not a boolean was accepted")
	}
}
