// Package certs is `knest certs`: the expiry dates of a tenant's
// certificates, and rotating its leaf certificates, through the tenant's
// admin kubeconfig (knestd's /knest/certs endpoint, behind the tenant API
// server's authentication and RBAC).
package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/knest-dev/knest/pkg/cli"
	"github.com/knest-dev/knest/pkg/cli/connect"
)

// certsPath is pkg/knestd.CertsPath (not imported: the CLI stays light).
const certsPath = "/knest/certs"

// Cert is one certificate as knestd lists it.
type Cert struct {
	File      string    `json:"file"`
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	IsCA      bool      `json:"isCA"`
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	Serial    string    `json:"serial"`
}

// NewCommand returns `knest certs`.
func NewCommand(streams cli.Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Show or rotate a tenant's certificates",
		Example: `  knest certs check --tenant-kubeconfig demo.kubeconfig
  knest certs rotate --tenant-kubeconfig demo.kubeconfig`,
		Long: `knestd renews its leaf certificates (serving, admin, its own clients) while it
runs, before they expire, under the same CAs and with the same keys.
'knest certs check' shows their expiry dates, 'knest certs rotate' renews them now.`,
	}
	var kubeconfig string
	var tf connect.TenantFlags
	check := &cobra.Command{
		Use:   "check [TENANT] | check --tenant-kubeconfig FILE",
		Short: "Show the expiry dates of a tenant's certificates",
		Example: `  knest certs check demo
  knest certs check --tenant-kubeconfig demo.kubeconfig`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return RunTenant(cmd.Context(), streams, args, tf, kubeconfig, http.MethodGet)
		},
	}
	rotate := &cobra.Command{
		Use:   "rotate [TENANT] | rotate --tenant-kubeconfig FILE",
		Short: "Re-issue a tenant's leaf certificates now (same CAs, same keys)",
		Example: `  knest certs rotate demo
  knest certs rotate --tenant-kubeconfig demo.kubeconfig`,
		Long: `Re-issues every leaf certificate of the tenant's knestd now. Clients with
earlier certificates keep working until those expire (same CAs); the published
admin kubeconfig Secret is refreshed.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return RunTenant(cmd.Context(), streams, args, tf, kubeconfig, http.MethodPost)
		},
	}
	for _, c := range []*cobra.Command{check, rotate} {
		c.Flags().StringVar(&kubeconfig, "tenant-kubeconfig", "", "Admin kubeconfig of the tenant, instead of naming the tenant on the host.")
		tf.AddFlags(c.Flags())
		c.ValidArgsFunction = cli.CompleteTenants(&tf.Host, &tf.Namespace)
	}
	cmd.AddCommand(check, rotate)
	return cmd
}

// RunTenant is Run for a tenant named on the host (args[0], reached with
// the admin kubeconfig its knestd published, as `knest connect` does) or
// given by its admin kubeconfig.
func RunTenant(ctx context.Context, streams cli.Streams, args []string, tf connect.TenantFlags, kubeconfig, method string) error {
	switch {
	case len(args) == 1 && kubeconfig != "":
		return errors.New("name the tenant or give --tenant-kubeconfig, not both")
	case len(args) == 1:
		cfg, stop, err := connect.Reach(ctx, tf, args[0])
		if err != nil {
			return err
		}
		defer stop()
		return run(ctx, streams, cfg, method)
	default:
		return Run(ctx, streams, kubeconfig, method)
	}
}

// Run lists (GET) or rotates (POST) the tenant's certificates and prints
// them, with the serving certificate as the client saw it and the
// kubeconfig's own client certificate.
func Run(ctx context.Context, streams cli.Streams, kubeconfig, method string) error {
	if kubeconfig == "" {
		return errors.New("name the tenant (knest certs check NAME) or give its admin kubeconfig (--tenant-kubeconfig FILE)")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("--tenant-kubeconfig %s: %w", kubeconfig, err)
	}
	return run(ctx, streams, cfg, method)
}

func run(ctx context.Context, streams cli.Streams, cfg *rest.Config, method string) error {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(cfg.Host, "/")+certsPath, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("failed to reach the tenant's knestd: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("certs: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var list []Cert
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return fmt.Errorf("certs: knestd's answer does not parse: %w", err)
	}
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		list = append(list, fromX509("(served to this client)", resp.TLS.PeerCertificates[0]))
	}
	if c := kubeconfigCert(cfg); c != nil {
		list = append(list, fromX509("(this kubeconfig's client)", c))
	}
	now := time.Now()
	w := tabwriter.NewWriter(streams.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CERTIFICATE\tSUBJECT\tISSUER\tEXPIRES\tREMAINING")
	for _, c := range list {
		name := c.File
		if c.IsCA {
			name += " (CA)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", name, c.Subject, c.Issuer, c.NotAfter.UTC().Format(time.RFC3339), remaining(c.NotAfter.Sub(now)))
	}
	return w.Flush()
}

func fromX509(name string, c *x509.Certificate) Cert {
	return Cert{File: name, Subject: c.Subject.String(), Issuer: c.Issuer.CommonName, IsCA: c.IsCA, NotBefore: c.NotBefore, NotAfter: c.NotAfter, Serial: c.SerialNumber.Text(16)}
}

func kubeconfigCert(cfg *rest.Config) *x509.Certificate {
	data := cfg.CertData
	if len(data) == 0 && cfg.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil || len(pair.Certificate) == 0 {
			return nil
		}
		c, _ := x509.ParseCertificate(pair.Certificate[0])
		return c
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil
	}
	c, _ := x509.ParseCertificate(block.Bytes)
	return c
}

func remaining(d time.Duration) string {
	switch {
	case d <= 0:
		return "EXPIRED"
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	default:
		return d.Round(time.Second).String()
	}
}
