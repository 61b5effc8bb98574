// Command knest is the user CLI: creating, connecting to, listing and
// deleting tenants on a host cluster, and local development environments.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/knest-dev/knest/cmd/knest/app"
	"github.com/knest-dev/knest/pkg/cli"
)

func main() {
	if err := app.Run(context.Background(), os.Args[1:]); err != nil {
		var exit cli.ExitError
		if errors.As(err, &exit) {
			os.Exit(exit.Code)
		}
		fmt.Fprintln(os.Stderr, "knest: "+err.Error())
		os.Exit(1)
	}
}
