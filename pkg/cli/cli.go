// Package cli is the knest command line: the root command and what all
// commands share. Each command lives in a package of its own under pkg/cli.
package cli

import (
	"fmt"
	"io"
)

// Streams are a command's standard streams.
type Streams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// ExitError ends knest with Code and prints nothing more: the process
// that failed (knest-dev, behind `knest dev`) has printed the reason.
type ExitError struct{ Code int }

func (e ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }
