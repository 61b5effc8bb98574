package options

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
)

func TestCommandLineParses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		args      []string
		wantErr   string
		check     func(*CommandLine) string
		wantCheck string
	}{
		{
			name: "--version needs no other flag", args: []string{"--version"},
			check: func(c *CommandLine) string { return strings.Repeat("v", boolInt(c.Version)) }, wantCheck: "v",
		},
		{
			name: "--help needs no other flag", args: []string{"-h"},
			check: func(c *CommandLine) string { return strings.Repeat("h", boolInt(c.Help)) }, wantCheck: "h",
		},
		{name: "running needs --data-dir", args: []string{"--name=acme"}, wantErr: "--data-dir is required"},
		{
			name: "the logging format is text by default", args: []string{"--data-dir=/d"},
			check: func(c *CommandLine) string { return c.Options.Logging.Format + " " + c.Options.EtcdLogFormat() }, wantCheck: "text console",
		},
		{
			name: "--logging-format=json logs knestd and etcd as json", args: []string{"--data-dir=/d", "--logging-format=json"},
			check: func(c *CommandLine) string { return c.Options.Logging.Format + " " + c.Options.EtcdLogFormat() }, wantCheck: "json json",
		},
		{name: "an unknown logging format is refused", args: []string{"--data-dir=/d", "--logging-format=xml"}, wantErr: `--logging-format: Invalid value: "xml": Unsupported log format`},
		{
			name: "-v sets the verbosity", args: []string{"--data-dir=/d", "-v=3"},
			check: func(c *CommandLine) string { return fmt.Sprint(c.Options.Logging.Verbosity) }, wantCheck: "3",
		},
		{
			name: "--v=2, as the chart passes it, too", args: []string{"--data-dir=/d", "--v=2"},
			check: func(c *CommandLine) string { return fmt.Sprint(c.Options.Logging.Verbosity) }, wantCheck: "2",
		},
		{name: "an unknown flag points at --help", args: []string{"--data-dir=/d", "--bogus"}, wantErr: "unknown flag: --bogus (see knestd --help)"},
		{name: "arguments are refused", args: []string{"--data-dir=/d", "extra"}, wantErr: "unexpected arguments: extra"},
		{name: "every problem on one line", args: []string{"--secure-port=-1"}, wantErr: "--data-dir is required; --secure-port -1 is out of range"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := NewCommandLine()
			err := c.Parse(tc.args)
			switch {
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Parse(%q) = %v, want an error containing %q", tc.args, err, tc.wantErr)
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Parse(%q): %v", tc.args, err)
			}
			if tc.check != nil {
				if got := tc.check(c); got != tc.wantCheck {
					t.Errorf("got %q, want %q", got, tc.wantCheck)
				}
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestHelpIsGroupedByConcern checks --help prints every flag once, under
// its section's heading, the sections in order.
func TestHelpIsGroupedByConcern(t *testing.T) {
	t.Parallel()
	c := NewCommandLine()
	var out bytes.Buffer
	c.PrintHelp(&out)
	help := out.String()
	var headings []string
	for _, line := range strings.Split(help, "\n") {
		if strings.HasSuffix(line, " flags:") {
			headings = append(headings, strings.TrimSuffix(line, " flags:"))
		}
	}
	want := []string{"Generic", "Serving", "Tenant cluster", "Host cluster", "Isolation", "Kubelet API and DNS", "Metrics and profiling", "Logging", "Other"}
	if diff := cmp.Diff(want, headings); diff != "" {
		t.Errorf("--help sections (-want +got):\n%s", diff)
	}
	// A flag's line starts with it (after -x, for a shorthand); other
	// flags' descriptions may name it too.
	flagLine := func(flag string) *regexp.Regexp {
		return regexp.MustCompile(`(?m)^ +(-[a-z], )?--` + regexp.QuoteMeta(flag) + `[ =]`)
	}
	section := func(flag string) string {
		loc := flagLine(flag).FindStringIndex(help)
		if loc == nil {
			return ""
		}
		h := strings.LastIndex(help[:loc[0]], " flags:")
		return help[strings.LastIndex(help[:h], "\n")+1 : h]
	}
	for flag, want := range map[string]string{
		"data-dir": "Generic", "secure-port": "Serving", "service-cidr": "Tenant cluster", "host-namespace": "Host cluster",
		"kubeconfig-secret": "Host cluster", "policy-file": "Isolation", "dns-address": "Kubelet API and DNS",
		"syncer-metrics-address": "Metrics and profiling", "logging-format": "Logging", "version": "Other",
	} {
		if got := section(flag); got != want {
			t.Errorf("--%s is under %q, want %q", flag, got, want)
		}
	}
	c.All.VisitAll(func(f *pflag.Flag) {
		if n := len(flagLine(f.Name).FindAllStringIndex(help, -1)); n != 1 {
			t.Errorf("--%s appears %d times in --help", f.Name, n)
		}
	})
}
