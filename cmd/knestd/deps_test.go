package main

import (
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// devcluster is the package tree knestd must never link: its simulated
// kubelet (pkg/devcluster/simkubelet) runs exec's commands on the machine
// it runs on, which for knestd is a host cluster's node.
const devcluster = "github.com/knest-dev/knest/pkg/devcluster"

func TestKnestdNeverLinksTheDevcluster(t *testing.T) {
	t.Parallel()
	if got := devclusterDeps(t, "github.com/knest-dev/knest/cmd/knestd"); len(got) > 0 {
		t.Errorf("knestd links %s", strings.Join(got, ", "))
	}
	// knest-dev runs the devcluster (`knest dev`): finding it there shows
	// that the check above can fail.
	if got := devclusterDeps(t, "github.com/knest-dev/knest/cmd/knest-dev"); !slices.Contains(got, devcluster+"/simkubelet") {
		t.Errorf("knest-dev's dependencies hold no %s/simkubelet (found %v): the check cannot see it", devcluster, got)
	}
}

// devclusterDeps lists the devcluster packages among pkg's dependencies.
func devclusterDeps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", pkg).Output()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, exitErr.Stderr)
	}
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	var found []string
	for _, dep := range strings.Fields(string(out)) {
		if dep == devcluster || strings.HasPrefix(dep, devcluster+"/") {
			found = append(found, dep)
		}
	}
	return found
}
