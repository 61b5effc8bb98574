package options

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
	cliflag "k8s.io/component-base/cli/flag"
)

// CommandLine is knestd's command line: the options' sections and --version and
// --help.
type CommandLine struct {
	Options Options
	Version bool
	Help    bool
	// Sections are the named flag sets, for --help.
	Sections cliflag.NamedFlagSets
	All      *pflag.FlagSet
}

// NewCommandLine returns the flags with their defaults.
func NewCommandLine() *CommandLine {
	f := &CommandLine{Options: Defaults()}
	f.Sections = f.Options.FlagSets()
	misc := f.Sections.FlagSet("other")
	misc.BoolVar(&f.Version, "version", false, "Print knestd's version, commit and Kubernetes version, and exit.")
	misc.BoolVarP(&f.Help, "help", "h", false, "Print this help, and exit.")
	f.All = pflag.NewFlagSet("knestd", pflag.ContinueOnError)
	f.All.SetOutput(io.Discard)
	for _, fs := range f.Sections.FlagSets {
		f.All.AddFlagSet(fs)
	}
	return f
}

// Parse parses args. It validates the options only when knestd is to run
// (neither --help nor --version).
func (f *CommandLine) Parse(args []string) error {
	if err := f.All.Parse(args); err != nil {
		return fmt.Errorf("%w (see knestd --help)", err)
	}
	if f.All.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(f.All.Args(), " "))
	}
	if f.Help || f.Version {
		return nil
	}
	if err := f.Options.Validate(); err != nil {
		// One line: every problem, separated.
		return errors.New(strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return nil
}

// PrintHelp prints the usage, one section of flags at a time.
func (f *CommandLine) PrintHelp(w io.Writer) {
	fmt.Fprint(w, "knestd runs one tenant control plane: embedded etcd, kube-apiserver,\n"+
		"kube-controller-manager and, with --host-namespace, the syncer, kubelet API\n"+
		"and DNS server, in one process.\n\nUsage: knestd --data-dir DIR [flags]\n")
	cliflag.PrintSections(w, f.Sections, 0)
}
