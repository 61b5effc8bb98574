package snapshot

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"k8s.io/client-go/rest"

	"github.com/knest-dev/knest/pkg/cli"
)

// Source names a stored snapshot for `knest create --from-snapshot`.
type Source struct {
	// Location is file://PATH, a path, or oci://REGISTRY/REPOSITORY:TAG.
	Location       string
	PlainHTTP      bool
	RegistryConfig string
}

func (s Source) open(ctx context.Context) (location, source, error) {
	loc, err := parseLocation("--from-snapshot", s.Location)
	if err != nil {
		return loc, source{}, err
	}
	src, err := openSnapshot(ctx, loc, ociOptions{PlainHTTP: s.PlainHTTP, RegistryConfig: s.RegistryConfig})
	return loc, src, err
}

// Tenant is the tenant the snapshot describes itself as taken of (its
// .json description or OCI annotations), "" when it has no description.
// It only tells which tenant's key to look for: knestd checks the seal.
func (s Source) Tenant(ctx context.Context) (string, error) {
	_, src, err := s.open(ctx)
	if err != nil {
		return "", err
	}
	defer src.Close()
	if src.info == nil {
		return "", nil
	}
	return src.info.Tenant, nil
}

// Clone uploads the snapshot to a new tenant's knestd (reached with cfg)
// as a clone, opened with the source tenant's key that the operator put in
// host Secret keySecret of the new tenant's namespace, and waits until the
// clone serves: the source's data, the new tenant's own PKI.
func (s Source) Clone(ctx context.Context, streams cli.Streams, cfg *rest.Config, keySecret string, timeout time.Duration) error {
	if keySecret == "" {
		return errors.New("a clone needs the source's key Secret")
	}
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	ep := endpoint{base: strings.TrimSuffix(cfg.Host, "/"), client: client}
	// A new knestd's pod is ready before its snapshot endpoint is.
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		_, err := getStatus(wctx, ep)
		if err == nil {
			break
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("the new tenant's knestd does not take snapshots within %s: %w", timeout, err)
		case <-time.After(time.Second):
		}
	}
	_, src, err := s.open(ctx)
	if err != nil {
		return err
	}
	defer src.Close()
	return upload(ctx, streams, ep, src, "cloneKeySecret="+url.QueryEscape(keySecret), timeout)
}
