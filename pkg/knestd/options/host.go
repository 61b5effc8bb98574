package options

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"
)

// addHostObjectFlags registers the flags naming objects knestd reads or
// writes in its host namespace: what the chart's StatefulSet passes.
func (o *Options) addHostObjectFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.HostService, "host-service", o.HostService, "Host Service in front of this knestd, in --host-namespace: its ClusterIP is read at start, added to the serving certificate, and used when --kubernetes-service-ip or --dns-service-ip is empty.")
	fs.StringVar(&o.EncryptionKeySecret, "encryption-key-secret", o.EncryptionKeySecret, "Host Secret, in --host-namespace, holding the secrets-encryption key (key \"key\"); created with a new key at the first start. Keeps the key off the data volume.")
	fs.StringVar(&o.KubeconfigSecret, "kubeconfig-secret", o.KubeconfigSecret, "Host Secret, in --host-namespace, the admin kubeconfig is published in (key \"kubeconfig\") once the control plane is ready.")
	fs.StringVar(&o.KubeconfigServer, "kubeconfig-server", o.KubeconfigServer, "Server URL of the published admin kubeconfig, e.g. the host Service's in-cluster name (default: the API server's own URL).")
}

// Syncing reports whether knestd syncs into a host namespace.
func (o Options) Syncing() bool { return o.HostNamespace != "" }

// validateHostObjects checks the host kubeconfig and the host objects'
// flags.
func (o Options) validateHostObjects() []error {
	var errs []error
	if o.HostKubeconfig != "" && o.HostNamespace == "" {
		errs = append(errs, errors.New("--host-kubeconfig needs --host-namespace"))
	}
	if o.PoolNodes && o.HostNamespace == "" {
		errs = append(errs, errors.New("--pool-nodes shows the host nodes of the tenant's pool as virtual nodes: it needs --host-namespace"))
	}
	if o.HostNodeInfo && o.HostNamespace == "" {
		errs = append(errs, errors.New("--host-node-info shows host node info on the syncer's virtual nodes: it needs --host-namespace"))
	}
	for _, f := range []struct{ flag, value string }{
		{"--host-service", o.HostService},
		{"--encryption-key-secret", o.EncryptionKeySecret},
		{"--kubeconfig-secret", o.KubeconfigSecret},
	} {
		if f.value == "" {
			continue
		}
		if o.HostNamespace == "" {
			errs = append(errs, fmt.Errorf("%s names an object in the host namespace: it needs --host-namespace", f.flag))
		}
		if msgs := validation.IsDNS1123Subdomain(f.value); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("%s %q is not a valid name: %s", f.flag, f.value, strings.Join(msgs, "; ")))
		}
	}
	if o.EncryptionKeySecret != "" && o.EncryptionKeyFile != "" {
		errs = append(errs, errors.New("--encryption-key-secret and --encryption-key-file both name the key: choose one"))
	}
	if o.KubeconfigServer != "" {
		u, err := url.Parse(o.KubeconfigServer)
		switch {
		case o.KubeconfigSecret == "":
			errs = append(errs, errors.New("--kubeconfig-server needs --kubeconfig-secret"))
		case err != nil || u.Scheme != "https" || u.Host == "":
			errs = append(errs, fmt.Errorf("--kubeconfig-server %q is not an https:// URL", o.KubeconfigServer))
		}
	}
	return errs
}
