package create

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/knest-dev/knest/pkg/cli"
	"github.com/knest-dev/knest/pkg/cli/connect"
	"github.com/knest-dev/knest/pkg/cli/snapshot"
	"github.com/knest-dev/knest/pkg/tenant"
)

// CloneOptions are the flags of `knest create NAME --from-snapshot URL`:
// a new tenant that starts with another tenant's data, under its own name,
// host namespace, PKI and service-account key.
type CloneOptions struct {
	snapshot.Source
	// SourceTenant is the tenant the snapshot was taken of, when the
	// snapshot's description does not say.
	SourceTenant string
	// SourceNamespace is its host namespace (default knest-SOURCE).
	SourceNamespace string
	// Server is the new tenant's API address as reachable from here, for
	// the upload (default: its LoadBalancer, else a port-forward).
	Server string
}

func (c *CloneOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&c.Location, "from-snapshot", "", "start the new tenant from a snapshot of another tenant (file://PATH, a path, oci://REGISTRY/REPOSITORY:TAG): its data, with a new PKI and service-account key")
	f.StringVar(&c.SourceTenant, "snapshot-tenant", "", "with --from-snapshot: the tenant the snapshot was taken of (default: what the snapshot's description says)")
	f.StringVar(&c.SourceNamespace, "snapshot-namespace", "", "with --from-snapshot: the host namespace of that tenant, whose snapshot and encryption keys the clone needs (default: knest-TENANT)")
	f.StringVar(&c.Server, "server", "", "with --from-snapshot: URL of the new tenant's API as reachable from here (default: its LoadBalancer's, else a port-forward)")
	f.BoolVar(&c.PlainHTTP, "plain-http", false, "with --from-snapshot oci://: talk plain HTTP to the registry")
	f.StringVar(&c.RegistryConfig, "registry-config", "", "with --from-snapshot oci://: registry credentials file (default: Docker's config)")
}

// clone is a clone in progress.
type clone struct {
	CloneOptions
	host       kubernetes.Interface
	sourceNS   string
	source     string
	snapKey    []byte
	encryption []byte
}

// checkClone refuses what a clone cannot be, before anything is made: a
// tenant that exists, a tenant without knestd or not waited for.
func (c CloneOptions) check(o Options, exists, knestdEnabled bool) error {
	switch {
	case c.Location == "":
		return nil
	case exists || o.Upgrade:
		return errors.New("--from-snapshot creates a new tenant: it does not combine with --upgrade or an existing tenant (restore onto a tenant with 'knest snapshot restore')")
	case !knestdEnabled:
		return errors.New("--from-snapshot needs knestd (knestd.enabled)")
	case !o.Wait:
		return errors.New("--from-snapshot waits for the new tenant (it uploads the snapshot to it): drop --wait=false")
	}
	return nil
}

// prepareClone reads the source tenant's keys from its host namespace: the
// snapshot key (to open the snapshot) and the secrets-encryption key (the
// Secrets in the snapshot's etcd data are encrypted with it). Neither is
// an identity: the clone's PKI and service-account key are its own.
func prepareClone(ctx context.Context, host kubernetes.Interface, name string, c CloneOptions, progress func(string)) (*clone, error) {
	if c.Location == "" {
		return nil, nil
	}
	source := c.SourceTenant
	if source == "" {
		described, err := c.Tenant(ctx)
		if err != nil {
			return nil, fmt.Errorf("--from-snapshot: %w", err)
		}
		if described == "" {
			return nil, errors.New("--from-snapshot: the snapshot has no description naming its tenant: name it with --snapshot-tenant")
		}
		source = described
	}
	if source == name {
		return nil, fmt.Errorf("--from-snapshot: the snapshot is of tenant %s itself: a clone needs a new name", name)
	}
	ns := cli.TenantNamespace(source, c.SourceNamespace)
	snapKey, err := tenant.SnapshotKey(ctx, host, ns, tenant.SnapshotKeySecretName)
	if apierrors.IsNotFound(errors.Unwrap(err)) {
		return nil, fmt.Errorf("--from-snapshot: tenant %s has no snapshot key Secret %s/%s (a tenant that keeps its key on its data volume cannot be cloned by knest create; give --snapshot-namespace if it runs elsewhere)", source, ns, tenant.SnapshotKeySecretName)
	}
	if err != nil {
		return nil, fmt.Errorf("--from-snapshot: %w", err)
	}
	enc, err := host.CoreV1().Secrets(ns).Get(ctx, tenant.EncryptionKeySecretName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("--from-snapshot: the encryption key of tenant %s: %w", source, err)
	}
	progress(fmt.Sprintf("Cloning tenant %s (host namespace %s) from %s", source, ns, c.Location))
	return &clone{CloneOptions: c, host: host, sourceNS: ns, source: source, snapKey: snapKey, encryption: enc.Data[tenant.EncryptionKeySecretKey]}, nil
}

// beforeInstall puts the source's keys in the new tenant's namespace: its
// encryption key as the new tenant's (knestd uses an existing Secret), its
// snapshot key under CloneKeySecretName for the clone only.
func (c *clone) beforeInstall(ctx context.Context, ns, name string) error {
	if c == nil {
		return nil
	}
	secrets := c.host.CoreV1().Secrets(ns)
	for _, s := range []*corev1.Secret{
		{
			ObjectMeta: metav1.ObjectMeta{Name: tenant.EncryptionKeySecretName, Namespace: ns, Labels: tenant.ControlPlaneLabels(name)},
			Type:       corev1.SecretTypeOpaque, Data: map[string][]byte{tenant.EncryptionKeySecretKey: c.encryption},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: tenant.CloneKeySecretName, Namespace: ns, Labels: tenant.ControlPlaneLabels(name)},
			Type:       corev1.SecretTypeOpaque, Data: map[string][]byte{tenant.SnapshotKeySecretKey: tenant.EncodeKey(c.snapKey)},
		},
	} {
		_, err := secrets.Create(ctx, s, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			have, gerr := secrets.Get(ctx, s.Name, metav1.GetOptions{})
			if gerr == nil && bytes.Equal(have.Data[tenant.EncryptionKeySecretKey], s.Data[tenant.EncryptionKeySecretKey]) {
				continue
			}
			return fmt.Errorf("--from-snapshot: host Secret %s/%s exists with another key: the clone needs the namespace fresh", ns, s.Name)
		}
		if err != nil {
			return fmt.Errorf("--from-snapshot: %w", err)
		}
	}
	return nil
}

// afterReady uploads the snapshot to the new tenant's knestd as a clone
// and waits for it, then removes the source's snapshot key from the new
// tenant's namespace (also when the clone failed).
func (c *clone) afterReady(ctx context.Context, streams cli.Streams, o Options, ns, name string, progress func(string)) error {
	if c == nil {
		return nil
	}
	defer func() {
		if err := c.host.CoreV1().Secrets(ns).Delete(context.WithoutCancel(ctx), tenant.CloneKeySecretName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			fmt.Fprintf(streams.ErrOut, "Warning: could not remove host Secret %s/%s (tenant %s's snapshot key): %v\n", ns, tenant.CloneKeySecretName, c.source, err)
		}
	}()
	cfg, stop, err := connect.Reach(ctx, connect.TenantFlags{Host: o.Host, Namespace: ns, Server: c.Server}, name)
	if err != nil {
		return fmt.Errorf("--from-snapshot: reaching the new tenant: %w", err)
	}
	defer stop()
	progress("Uploading the snapshot to the new tenant's knestd")
	timeout := o.Timeout
	if timeout < 5*time.Minute {
		timeout = 5 * time.Minute
	}
	if err := c.Clone(ctx, streams, cfg, tenant.CloneKeySecretName, timeout); err != nil {
		return fmt.Errorf("tenant %s was created, its clone of %s failed (the tenant stays, empty; 'knest delete %s -n %s' removes it): %w", name, c.source, name, ns, err)
	}
	progress(fmt.Sprintf("Tenant %s holds the data of %s's snapshot, with its own certificates and service-account key", name, c.source))
	return nil
}
