package app

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/knest-dev/knest/pkg/cli"
)

func TestEveryCommandHasAnExample(t *testing.T) {
	root := NewCommand(cli.Streams{})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Name() != "help" && c.Example == "" {
			t.Errorf("%q has no Example", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

func TestCompletionScripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		var out bytes.Buffer
		root := NewCommand(cli.Streams{Out: &out, ErrOut: &out})
		root.SetOut(&out)
		root.SetArgs([]string{"completion", shell})
		if err := root.Execute(); err != nil {
			t.Fatalf("%s: %v", shell, err)
		}
		if !strings.Contains(out.String(), "__complete") {
			t.Errorf("the %s script does not call back into knest for dynamic completion", shell)
		}
	}
}

// TestTenantNameCompletionFailsQuietly: with no host, completing a tenant
// name offers nothing and prints no error into the user's shell.
func TestTenantNameCompletionFailsQuietly(t *testing.T) {
	t.Setenv("KUBECONFIG", t.TempDir()+"/none")
	t.Setenv("HOME", t.TempDir())
	var out, errOut bytes.Buffer
	root := NewCommand(cli.Streams{Out: &out, ErrOut: &errOut})
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs([]string{"__complete", "connect", ""})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1 || lines[0] != ":4" { // ShellCompDirectiveNoFileComp, no names
		t.Errorf("completion output %q, want only the no-file directive", out.String())
	}
}
