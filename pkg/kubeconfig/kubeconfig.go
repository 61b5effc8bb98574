// Package kubeconfig writes self-contained kubeconfig files: certificates and
// keys are embedded, so a file can be copied to another machine and keeps
// working as long as its credentials are valid.
package kubeconfig

import (
	"fmt"
	"os"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/knest-dev/knest/internal/atomicfile"
)

// Client says how to reach a cluster and as whom.
type Client struct {
	// Name names the cluster, user and context.
	Name string
	// Server is the API server URL.
	Server string
	// CAFile, CertFile and KeyFile are PEM files; their content is embedded.
	CAFile, CertFile, KeyFile string
	// Token, if set, is used instead of a client certificate.
	Token string
	// ReferenceFiles names CertFile and KeyFile instead of embedding them,
	// for a process's own clients: client-go then reloads the pair when it
	// changes on disk, so a renewed certificate takes effect without a
	// restart. Such a kubeconfig only works beside those files.
	ReferenceFiles bool
	// Uncompressed asks for responses without gzip (disable-compression),
	// for a process's clients of an API server in the same process or on
	// the same machine: the server compresses every event of an
	// informer's watch (a WatchList stream) for such a client, and the
	// client decompresses it, CPU spent on each pod update for bytes that
	// never leave the machine.
	Uncompressed bool
}

// Build returns the kubeconfig as a clientcmd Config.
func (c Client) Build() (*clientcmdapi.Config, error) {
	ca, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, fmt.Errorf("failed to read CA for kubeconfig: %w", err)
	}
	user := &clientcmdapi.AuthInfo{Token: c.Token}
	if c.Token == "" && c.ReferenceFiles {
		user.ClientCertificate, user.ClientKey = c.CertFile, c.KeyFile
	} else if c.Token == "" {
		if user.ClientCertificateData, err = os.ReadFile(c.CertFile); err != nil {
			return nil, fmt.Errorf("failed to read client certificate for kubeconfig: %w", err)
		}
		if user.ClientKeyData, err = os.ReadFile(c.KeyFile); err != nil {
			return nil, fmt.Errorf("failed to read client key for kubeconfig: %w", err)
		}
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[c.Name] = &clientcmdapi.Cluster{Server: c.Server, CertificateAuthorityData: ca, DisableCompression: c.Uncompressed}
	cfg.AuthInfos[c.Name] = user
	cfg.Contexts[c.Name] = &clientcmdapi.Context{Cluster: c.Name, AuthInfo: c.Name}
	cfg.CurrentContext = c.Name
	return cfg, nil
}

// Write writes the kubeconfig to path atomically with mode 0600: it holds a
// private key or a token.
func (c Client) Write(path string) error {
	cfg, err := c.Build()
	if err != nil {
		return err
	}
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return fmt.Errorf("failed to encode kubeconfig: %w", err)
	}
	return atomicfile.Write(path, data, 0o600)
}
