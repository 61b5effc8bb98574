// Command knest-supervisor keeps a tenant's API address open while its
// knestd sleeps, and wakes it on the next connection (pkg/supervisor).
package main

import (
	"context"
	"fmt"
	"os"

	"k8s.io/klog/v2"

	"github.com/knest-dev/knest/cmd/knest-supervisor/app"
)

func main() {
	err := app.Run(context.Background(), os.Args[1:])
	klog.Flush()
	if err != nil {
		fmt.Fprintln(os.Stderr, "knest-supervisor: "+err.Error())
		os.Exit(1)
	}
}
