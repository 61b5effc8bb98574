// Package cli is the knest command line: the root command and what all
// commands share. Each command lives in a package of its own under pkg/cli.
package cli

import "io"

// Streams are a command's standard streams.
type Streams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}
