// Package version is the version of the knest binaries: knest's own release
// version and commit, stamped in at build time by hack/ldflags.sh, and the
// Kubernetes version of the control plane they carry.
package version

import (
	"fmt"
	"runtime"

	k8sversion "k8s.io/component-base/version"
)

// Set by hack/ldflags.sh with -X; the defaults are those of a plain
// `go build`, which stamps nothing.
var (
	version = "v0.0.0-dev"
	commit  = "unknown"
)

// Info is what `--version` prints and knestd logs at start.
type Info struct {
	// Version is knest's release version, e.g. v0.1.0: the chart's version
	// with a v, and the knestd image tag the chart runs by default.
	Version string `json:"version"`
	// Commit is the git commit the binary was built from.
	Commit string `json:"commit"`
	// Kubernetes is the version of the embedded Kubernetes components,
	// e.g. v1.37.2: what a tenant's /version reports.
	Kubernetes string `json:"kubernetes"`
	// Go is the Go version and platform the binary was built with.
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

// Get returns the running binary's version.
func Get() Info {
	return Info{
		Version: version, Commit: commit, Kubernetes: k8sversion.Get().GitVersion,
		Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH,
	}
}

// String is the one line `--version` prints.
func (i Info) String() string {
	return fmt.Sprintf("%s (commit %s, Kubernetes %s, %s %s)", i.Version, i.Commit, i.Kubernetes, i.Go, i.Platform)
}
