// Command knestd runs one tenant control plane: embedded etcd, kube-apiserver
// and kube-controller-manager in one process.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/knest-dev/knest/cmd/knestd/app"
	// No client-go work-queue metrics, and so no 500 ms ticker per queue
	// in an idle tenant: see the package's doc.
	_ "github.com/knest-dev/knest/internal/noqueuemetrics"
	"github.com/knest-dev/knest/pkg/supervisor"
)

func main() {
	if err := app.Run(os.Args[1:]); err != nil {
		if errors.Is(err, app.ErrAsleep) {
			os.Exit(supervisor.ExitAsleep)
		}
		if !errors.Is(err, app.ErrLogged) {
			fmt.Fprintln(os.Stderr, "knestd: "+err.Error())
		}
		os.Exit(1)
	}
}
