// Command knest is the user CLI: creating, connecting to, listing and
// deleting tenants on a host cluster, and local development environments.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/knest-dev/knest/cmd/knest/app"
)

func main() {
	if err := app.Run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "knest: "+err.Error())
		os.Exit(1)
	}
}
