package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"
)

// AddOutputFlag registers -o/--output with the formats allowed ("" is the
// command's own table or text).
func AddOutputFlag(fs *pflag.FlagSet, p *string, allowed ...string) {
	fs.StringVarP(p, "output", "o", "", "output format: "+strings.Join(allowed, " or ")+" (default: text)")
}

// CheckOutput refuses a format not in allowed, before anything is done.
func CheckOutput(format string, allowed ...string) error {
	if format == "" || slices.Contains(allowed, format) {
		return nil
	}
	return fmt.Errorf("unknown output format %q: use %s", format, strings.Join(allowed, " or "))
}

// PrintObject writes v as JSON (indented) or YAML.
func PrintObject(w io.Writer, format string, v any) error {
	switch format {
	case "json":
		data, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", data)
		return err
	case "yaml":
		data, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	}
	return fmt.Errorf("unknown output format %q", format)
}
