// Command printversion prints what pkg/version reports, for version_test.
package main

import (
	"fmt"

	"github.com/knest-dev/knest/pkg/version"
)

func main() {
	v := version.Get()
	fmt.Println(v.Version, v.Commit, v.Kubernetes)
}
