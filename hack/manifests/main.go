// Command manifests renders manifests/knest.yaml: the default install of
// one tenant, "demo" in namespace knest-demo, exactly as `knest create demo`
// makes it (the labelled namespace, then the chart with its defaults), for
// those who apply YAML instead of running knest or helm; and
// manifests/knestd-role.yaml, knestd's host Role as the chart holds it; and
// manifests/hostname-claims.yaml, the operator's hostname claims (install
// once per host, before tenants expose apps; pkg/hostclaim).
//
//	go run ./hack/manifests [-out manifests/knest.yaml] [-role-out manifests/knestd-role.yaml] [-claims-out manifests/hostname-claims.yaml]
//
// hack/verify.sh fails when the files differ from what this renders.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/knest-dev/knest/charts"
	"github.com/knest-dev/knest/pkg/hostclaim"
	"github.com/knest-dev/knest/pkg/install"
	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/tenant"
)

const (
	name   = "demo"
	header = `# knest: the default install of one tenant, rendered from charts/knest by
# hack/manifests (do not edit; hack/verify.sh checks it is current).
#
# Tenant "demo" in host namespace knest-demo, hard isolation, chart defaults.
# For another name, namespace or values use 'knest create' or the chart.
# Hard isolation needs the kata RuntimeClass on the host
# (manifests/runtimeclasses), and knest.yaml assumes the host's service CIDR
# lies in 10.96.0.0/12 (chart value knestd.serviceCIDR). It binds knestd
# to the hostname claims of manifests/hostname-claims.yaml: apply that once
# per host first.
#
#   kubectl apply -f manifests/hostname-claims.yaml
#   kubectl apply -f manifests/knest.yaml
#   kubectl -n knest-demo get secret knestd-kubeconfig -o jsonpath='{.data.kubeconfig}' | base64 -d
`
)

func main() {
	out := flag.String("out", "manifests/knest.yaml", "file to write; - for stdout")
	roleOut := flag.String("role-out", "manifests/knestd-role.yaml", "file to write knestd's host Role to")
	claimsOut := flag.String("claims-out", "manifests/hostname-claims.yaml", "file to write the operator's hostname claims manifest to")
	flag.Parse()
	if err := os.WriteFile(*roleOut, charts.KnestdRoleYAML(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "manifests:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*claimsOut, hostclaim.Manifest, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "manifests:", err)
		os.Exit(1)
	}
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "manifests:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	namespace := tenant.DefaultNamespace(name)
	n := tenant.Namespace(namespace, name, policy.DefaultProfile)
	ns, err := yaml.Marshal(map[string]any{"apiVersion": n.APIVersion, "kind": n.Kind, "metadata": map[string]any{"name": n.Name, "labels": n.Labels}})
	if err != nil {
		return err
	}
	rendered, err := install.Render(context.Background(), name, namespace, nil)
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString(header)
	b.WriteString("---\n")
	b.Write(ns)
	for _, doc := range strings.Split(rendered, "\n---\n") {
		doc = strings.TrimSpace(strings.TrimPrefix(doc, "---"))
		if doc == "" {
			continue
		}
		// Namespaced objects carry their namespace, so the file applies
		// as it is.
		b.WriteString("---\n")
		b.WriteString(withNamespace(doc, namespace))
		b.WriteString("\n")
	}
	if out == "-" {
		_, err = os.Stdout.WriteString(b.String())
		return err
	}
	return os.WriteFile(out, []byte(b.String()), 0o644)
}

// withNamespace adds metadata.namespace after metadata's first line; every
// object the chart renders is namespaced, and those that name no namespace
// go into the tenant's.
func withNamespace(doc, namespace string) string {
	const meta = "\nmetadata:\n"
	i := strings.Index(doc, meta)
	if i < 0 || strings.Contains(doc, "\n  namespace: ") {
		return doc
	}
	i += len(meta)
	return doc[:i] + "  namespace: " + namespace + "\n" + doc[i:]
}
