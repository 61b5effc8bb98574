// Package certs is `knest certs`: the expiry dates of a tenant's
// certificates, rotating its leaf certificates, and rotating its cluster CA
// with a transition period, through the tenant's admin kubeconfig (knestd's
// /knest/certs endpoint, behind the tenant API server's authentication and
// RBAC).
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
	"net/url"
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
	var ca CAOptions
	check := &cobra.Command{
		Use:   "check [TENANT] | check --tenant-kubeconfig FILE",
		Short: "Show the expiry dates of a tenant's certificates",
		Example: `  knest certs check demo
  knest certs check --tenant-kubeconfig demo.kubeconfig`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return RunTenant(cmd.Context(), streams, args, tf, kubeconfig, http.MethodGet, CAOptions{})
		},
	}
	rotate := &cobra.Command{
		Use:   "rotate [TENANT] | rotate --tenant-kubeconfig FILE",
		Short: "Re-issue a tenant's leaf certificates now (same CAs, same keys), or rotate its cluster CA (--ca)",
		Example: `  knest certs rotate demo
  knest certs rotate --tenant-kubeconfig demo.kubeconfig
  knest certs rotate demo --ca                      # new CA; both trusted until --finish
  knest certs rotate demo --ca --transition 168h    # ... or until a week has passed
  knest certs rotate demo --ca --finish             # drop the old CA`,
		Long: `Re-issues every leaf certificate of the tenant's knestd now. Clients with
earlier certificates keep working until those expire (same CAs); the published
admin kubeconfig Secret is refreshed.

With --ca, rotates the tenant's cluster CA in two steps. The first creates a
new CA and starts a transition in which both CAs are trusted: the API server
accepts client certificates of both, the admin kubeconfig and every
namespace's kube-root-ca.crt carry both, the admin certificate and the CSR
signer move to the new CA, and the serving certificate stays under the old one,
so kubeconfigs and pods from before keep working. The second (--ca --finish,
or knestd itself once --transition has passed) drops the old CA and re-issues
the serving certificate under the new one: kubeconfigs from before the
rotation stop working; take the new one (knest connect, or the published
Secret). knestd restarts after each step (same PID, a few seconds) and the
command waits for it.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !ca.CA && (ca.Finish || ca.Transition != 0) {
				return errors.New("--finish and --transition go with --ca")
			}
			if ca.Finish && ca.Transition != 0 {
				return errors.New("--transition goes with the first step (--ca), not with --finish")
			}
			return RunTenant(cmd.Context(), streams, args, tf, kubeconfig, http.MethodPost, ca)
		},
	}
	rotate.Flags().BoolVar(&ca.CA, "ca", false, "Rotate the cluster CA: a new CA, both trusted until --finish (or --transition).")
	rotate.Flags().BoolVar(&ca.Finish, "finish", false, "With --ca: end the transition, dropping the old CA.")
	rotate.Flags().DurationVar(&ca.Transition, "transition", 0, "With --ca: end the transition on its own after this long (0: only --finish ends it).")
	rotate.Flags().DurationVar(&ca.Wait, "wait", 3*time.Minute, "With --ca: how long to wait for knestd to be back after its restart (0: do not wait).")
	for _, c := range []*cobra.Command{check, rotate} {
		c.Flags().StringVar(&kubeconfig, "tenant-kubeconfig", "", "Admin kubeconfig of the tenant, instead of naming the tenant on the host.")
		tf.AddFlags(c.Flags())
		c.ValidArgsFunction = cli.CompleteTenants(&tf.Host, &tf.Namespace)
	}
	cmd.AddCommand(check, rotate)
	return cmd
}

// CAOptions are rotate's --ca flags.
type CAOptions struct {
	CA, Finish bool
	Transition time.Duration
	Wait       time.Duration
}

// reacher returns a client configuration for the tenant, read anew at each
// call (after a CA rotation's restart, the kubeconfig changed), and a
// function that releases it.
type reacher func(ctx context.Context) (*rest.Config, func(), error)

// RunTenant is Run for a tenant named on the host (args[0], reached with
// the admin kubeconfig its knestd published, as `knest connect` does) or
// given by its admin kubeconfig.
func RunTenant(ctx context.Context, streams cli.Streams, args []string, tf connect.TenantFlags, kubeconfig, method string, ca CAOptions) error {
	switch {
	case len(args) == 1 && kubeconfig != "":
		return errors.New("name the tenant or give --tenant-kubeconfig, not both")
	case len(args) == 1:
		return run(ctx, streams, func(ctx context.Context) (*rest.Config, func(), error) { return connect.Reach(ctx, tf, args[0]) }, method, ca)
	default:
		return Run(ctx, streams, kubeconfig, method, ca)
	}
}

// Run lists (GET) or rotates (POST) the tenant's certificates and prints
// them, with the serving certificate as the client saw it and the
// kubeconfig's own client certificate.
func Run(ctx context.Context, streams cli.Streams, kubeconfig, method string, ca CAOptions) error {
	if kubeconfig == "" {
		return errors.New("name the tenant (knest certs check NAME) or give its admin kubeconfig (--tenant-kubeconfig FILE)")
	}
	return run(ctx, streams, func(context.Context) (*rest.Config, func(), error) {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, nil, fmt.Errorf("--tenant-kubeconfig %s: %w", kubeconfig, err)
		}
		return cfg, func() {}, nil
	}, method, ca)
}

func run(ctx context.Context, streams cli.Streams, reach reacher, method string, ca CAOptions) error {
	cfg, stop, err := reach(ctx)
	if err != nil {
		return err
	}
	defer stop()
	if ca.CA {
		if err := rotateCA(ctx, streams, cfg, ca); err != nil {
			return err
		}
		if ca.Wait <= 0 {
			return nil
		}
		// knestd restarts: list its certificates once it is back, through
		// the kubeconfig as it is now (the published one is rewritten).
		fmt.Fprintf(streams.ErrOut, "Waiting up to %s for knestd to restart onto the new CA files...\n", ca.Wait)
		time.Sleep(2 * time.Second)
		deadline := time.Now().Add(ca.Wait)
		for {
			err := func() error {
				cfg, stop, err := reach(ctx)
				if err != nil {
					return err
				}
				defer stop()
				return list(ctx, streams, cfg, http.MethodGet)
			}()
			if err == nil {
				return nil
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("knestd is not back with this kubeconfig after %s (a kubeconfig from before the rotation stops working once it finishes: take the new one): %w", ca.Wait, err)
			}
			time.Sleep(2 * time.Second)
		}
	}
	return list(ctx, streams, cfg, method)
}

// rotateCA posts one step of a CA rotation and prints knestd's answer.
func rotateCA(ctx context.Context, streams cli.Streams, cfg *rest.Config, ca CAOptions) error {
	q := url.Values{"ca": {"begin"}}
	if ca.Finish {
		q.Set("ca", "finish")
	}
	if ca.Transition != 0 {
		q.Set("transition", ca.Transition.String())
	}
	resp, err := do(ctx, cfg, http.MethodPost, certsPath+"?"+q.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r struct {
		Phase   string    `json:"phase"`
		Started time.Time `json:"started"`
		Until   time.Time `json:"until"`
		CA      string    `json:"ca"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return fmt.Errorf("certs: knestd's answer does not parse: %w", err)
	}
	switch {
	case r.Phase == "transition" && r.Until.IsZero():
		fmt.Fprintf(streams.Out, "CA rotation started: %s signs, the previous CA is trusted until 'knest certs rotate --ca --finish'.\n", r.CA)
	case r.Phase == "transition":
		fmt.Fprintf(streams.Out, "CA rotation started: %s signs, the previous CA is trusted until %s (or 'knest certs rotate --ca --finish').\n", r.CA, r.Until.UTC().Format(time.RFC3339))
	default:
		fmt.Fprintf(streams.Out, "CA rotation finished: only %s is trusted; kubeconfigs from before the rotation no longer work.\n", r.CA)
	}
	return nil
}

func do(ctx context.Context, cfg *rest.Config, method, path string) (*http.Response, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(cfg.Host, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("failed to reach the tenant's knestd: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("certs: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return resp, nil
}

func list(ctx context.Context, streams cli.Streams, cfg *rest.Config, method string) error {
	resp, err := do(ctx, cfg, method, certsPath)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
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
