package cli

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/knest-dev/knest/pkg/install"
)

// CompleteTenants completes a command's NAME argument with the tenants of
// the host that host (the command's parsed flags) names, in namespace
// *namespace when set, else in every namespace. Errors complete nothing:
// completion must never print into the user's shell.
func CompleteTenants(host *HostFlags, namespace *string) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		cfg, err := host.Config()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ns := ""
		if namespace != nil {
			ns = *namespace
		}
		releases, err := install.New(cfg, ns, nil)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		rels, err := releases.List()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, r := range rels {
			if strings.HasPrefix(r.Name, toComplete) {
				out = append(out, cobra.CompletionWithDesc(r.Name, "namespace "+r.Namespace+", "+r.Isolation()))
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
