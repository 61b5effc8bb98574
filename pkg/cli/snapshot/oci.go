package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/retry"
)

// A snapshot in an OCI registry is an artifact (OCI image-spec 1.1) of
// ArtifactType with one layer, the sealed file, and the Info in the
// manifest's annotations.
const (
	ArtifactType   = "application/vnd.knest.snapshot.v1"
	LayerMediaType = "application/vnd.knest.snapshot.v1.sealed"

	annotationTenant   = "dev.knest.snapshot.tenant"
	annotationID       = "dev.knest.snapshot.id"
	annotationRevision = "dev.knest.snapshot.revision"
)

// ociOptions reach a registry, and an S3-compatible store.
type ociOptions struct {
	// PlainHTTP talks HTTP, not HTTPS, to the registry (a registry on
	// localhost or inside the cluster).
	PlainHTTP bool
	// Credentials come from this Docker config file (default: Docker's,
	// ~/.docker/config.json, where `docker login` and `oras login` write).
	RegistryConfig string
	// S3Endpoint is the URL of an S3-compatible store (default:
	// $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL, else AWS itself).
	S3Endpoint string
}

func (o ociOptions) repository(l location) (*remote.Repository, error) {
	repo, err := remote.NewRepository(l.repo)
	if err != nil {
		return nil, fmt.Errorf("oci://%s: %w", l.repo, err)
	}
	repo.PlainHTTP = o.PlainHTTP
	store, err := o.credentials()
	if err != nil {
		return nil, err
	}
	repo.Client = &auth.Client{
		Client:     retry.DefaultClient,
		Cache:      auth.NewCache(),
		Credential: credentials.Credential(store),
	}
	return repo, nil
}

func (o ociOptions) credentials() (credentials.Store, error) {
	opts := credentials.StoreOptions{}
	if o.RegistryConfig != "" {
		s, err := credentials.NewStore(o.RegistryConfig, opts)
		if err != nil {
			return nil, fmt.Errorf("--registry-config %s: %w", o.RegistryConfig, err)
		}
		return s, nil
	}
	s, err := credentials.NewStoreFromDocker(opts)
	if err != nil {
		return nil, fmt.Errorf("registry credentials (Docker's config): %w", err)
	}
	return s, nil
}

// pushOCI spools the snapshot to a private temporary file (a blob's digest
// and size come before its content), pushes it and tags an artifact
// manifest: l's tag, or the snapshot's ID when l names a repository.
func pushOCI(ctx context.Context, l location, o ociOptions, r io.Reader, info Info, progressOut io.Writer) (Info, error) {
	repo, err := o.repository(l)
	if err != nil {
		return info, err
	}
	tmp, err := os.CreateTemp("", "knest-snapshot-*")
	if err != nil {
		return info, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	p := newProgress(progressOut, "Downloaded")
	n, err := io.Copy(io.MultiWriter(tmp, h, p), r)
	p.done()
	if err != nil {
		return info, fmt.Errorf("the snapshot download broke off, nothing pushed: %w", err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return info, err
	}
	info.Size, info.SHA256 = n, hex.EncodeToString(h.Sum(nil))
	layer := ocispec.Descriptor{
		MediaType:   LayerMediaType,
		Digest:      digest.NewDigestFromEncoded(digest.SHA256, info.SHA256),
		Size:        n,
		Annotations: map[string]string{ocispec.AnnotationTitle: defaultName(info)},
	}
	exists, err := repo.Exists(ctx, layer)
	if err != nil {
		return info, fmt.Errorf("%s: %w", l, err)
	}
	if !exists {
		pp := newProgress(progressOut, "Pushed")
		err = repo.Push(ctx, layer, io.TeeReader(tmp, pp))
		pp.done()
		if err != nil {
			return info, fmt.Errorf("pushing the snapshot to %s: %w", l, err)
		}
	}
	annotations := map[string]string{
		annotationTenant:          info.Tenant,
		annotationID:              info.ID,
		annotationRevision:        info.Revision,
		ocispec.AnnotationCreated: info.Created.UTC().Format(time.RFC3339),
	}
	manifest, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, ArtifactType, oras.PackManifestOptions{
		Layers: []ocispec.Descriptor{layer}, ManifestAnnotations: annotations,
	})
	if err != nil {
		return info, fmt.Errorf("pushing the snapshot's manifest to %s: %w", l, err)
	}
	tag := l.tag
	if tag == "" {
		tag = info.ID
	}
	if err := repo.Tag(ctx, manifest, tag); err != nil {
		return info, fmt.Errorf("tagging the snapshot %s:%s: %w", l.repo, tag, err)
	}
	info.Location = location{kind: "oci", repo: l.repo, tag: tag}.String()
	return info, nil
}

// fetchManifest resolves ref in repo and returns its snapshot manifest,
// refusing any other artifact.
func fetchManifest(ctx context.Context, repo *remote.Repository, l location, ref string) (ocispec.Manifest, error) {
	var m ocispec.Manifest
	desc, err := repo.Resolve(ctx, ref)
	if err != nil {
		return m, fmt.Errorf("%s: %w", l, err)
	}
	if desc.MediaType != ocispec.MediaTypeImageManifest {
		return m, fmt.Errorf("%s is a %s, not a knest snapshot", l, desc.MediaType)
	}
	if desc.Size > 1<<20 {
		return m, fmt.Errorf("%s: a manifest of %d bytes is not a knest snapshot's", l, desc.Size)
	}
	data, err := content.FetchAll(ctx, repo, desc)
	if err != nil {
		return m, fmt.Errorf("%s: %w", l, err)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("%s: the manifest does not parse: %w", l, err)
	}
	if m.ArtifactType != ArtifactType || len(m.Layers) != 1 || m.Layers[0].MediaType != LayerMediaType {
		return m, fmt.Errorf("%s is not a knest snapshot (artifact type %q)", l, m.ArtifactType)
	}
	return m, nil
}

func infoOf(m ocispec.Manifest, loc string) Info {
	a := m.Annotations
	i := Info{Tenant: a[annotationTenant], ID: a[annotationID], Revision: a[annotationRevision],
		Size: m.Layers[0].Size, SHA256: m.Layers[0].Digest.Encoded(), Location: loc}
	i.Created, _ = time.Parse(time.RFC3339, a[ocispec.AnnotationCreated])
	return i
}

// pullOCI opens the snapshot layer of l's tag or digest. The reader fails
// at its end when the content does not match the manifest's digest, so an
// upload of it breaks off and knestd refuses it.
func pullOCI(ctx context.Context, l location, o ociOptions) (source, error) {
	if l.tag == "" {
		return source{}, fmt.Errorf("--from %s names a repository: add the snapshot's tag ('knest snapshot list --in %s' shows them)", l, l)
	}
	repo, err := o.repository(l)
	if err != nil {
		return source{}, err
	}
	m, err := fetchManifest(ctx, repo, l, l.tag)
	if err != nil {
		return source{}, err
	}
	layer := m.Layers[0]
	rc, err := repo.Fetch(ctx, layer)
	if err != nil {
		return source{}, fmt.Errorf("%s: %w", l, err)
	}
	info := infoOf(m, l.String())
	return source{ReadCloser: verifying{VerifyReader: content.NewVerifyReader(rc, layer), c: rc}, size: layer.Size, info: &info}, nil
}

// verifying turns a digest mismatch into the error of the last read.
type verifying struct {
	*content.VerifyReader
	c io.Closer
}

func (v verifying) Read(b []byte) (int, error) {
	n, err := v.VerifyReader.Read(b)
	if errors.Is(err, io.EOF) {
		if verr := v.Verify(); verr != nil {
			return n, fmt.Errorf("the registry's blob does not match its digest: %w", verr)
		}
	}
	return n, err
}

func (v verifying) Close() error { return v.c.Close() }

// listOCI lists the snapshots tagged in l's repository.
func listOCI(ctx context.Context, l location, o ociOptions) ([]Info, error) {
	repo, err := o.repository(l)
	if err != nil {
		return nil, err
	}
	var tags []string
	if l.tag != "" {
		tags = []string{l.tag}
	} else if err := repo.Tags(ctx, "", func(t []string) error {
		tags = append(tags, t...)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("%s: %w", l, err)
	}
	var out []Info
	for _, tag := range tags {
		tl := location{kind: "oci", repo: l.repo, tag: tag}
		m, err := fetchManifest(ctx, repo, tl, tag)
		if err != nil {
			// Another artifact in the repository: not a snapshot.
			continue
		}
		out = append(out, infoOf(m, tl.String()))
	}
	return out, nil
}

// revisionString formats an etcd revision header for Info.
func revisionString(s string) string {
	if _, err := strconv.ParseInt(s, 10, 64); err != nil {
		return ""
	}
	return s
}
