package main

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// forbidden says why a package must not be in the knest CLI: the CLI is
// small and portable (linux, darwin, windows), so the devcluster, the dev
// environment's process handling (a Linux-only process attribute) and the
// Kubernetes control plane stay in knest-dev and knestd.
func forbidden(pkg string) string {
	switch {
	case pkg == "github.com/knest-dev/knest/pkg/devcluster" || strings.HasPrefix(pkg, "github.com/knest-dev/knest/pkg/devcluster/"):
		return "the devcluster belongs to knest-dev"
	case pkg == "github.com/knest-dev/knest/pkg/devenv":
		return "the dev environment's processes belong to knest-dev (only pkg/devenv/devflags is shared)"
	case strings.HasPrefix(pkg, "k8s.io/kubernetes/"), strings.HasPrefix(pkg, "k8s.io/apiserver/pkg/server"),
		strings.HasPrefix(pkg, "k8s.io/controller-manager/"), strings.HasPrefix(pkg, "go.etcd.io/etcd/server/"):
		return "control-plane code belongs to knestd and knest-dev"
	}
	return ""
}

func TestKnestLinksNoControlPlane(t *testing.T) {
	t.Parallel()
	for _, dep := range deps(t, "github.com/knest-dev/knest/cmd/knest") {
		if why := forbidden(dep); why != "" {
			t.Errorf("knest links %s: %s", dep, why)
		}
	}
	// knest-dev links all of it: finding it there shows the check can fail.
	found := map[string]bool{}
	for _, dep := range deps(t, "github.com/knest-dev/knest/cmd/knest-dev") {
		if why := forbidden(dep); why != "" {
			found[why] = true
		}
	}
	if len(found) != 3 {
		t.Errorf("knest-dev's dependencies show only %d of the 3 forbidden kinds (%v): the check cannot see them", len(found), found)
	}
}

// deps lists pkg's dependencies, as linked on linux (where all three are
// built).
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "go", "list", "-deps", pkg)
	cmd.Env = append(cmd.Environ(), "GOOS=linux")
	out, err := cmd.Output()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, exitErr.Stderr)
	}
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}
