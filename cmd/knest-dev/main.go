// Command knest-dev runs the local dev environment behind `knest dev`: the
// devcluster host and a knestd per tenant. It is a binary of its own so the
// knest CLI does not link the devcluster; `knest dev up|down` runs it.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/knest-dev/knest/pkg/cli"
	"github.com/knest-dev/knest/pkg/cli/knestdev"
)

func main() {
	cmd := knestdev.NewCommand(cli.Streams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		// "knest: ", as `knest dev` is what users run.
		fmt.Fprintln(os.Stderr, "knest: "+err.Error())
		os.Exit(1)
	}
}
