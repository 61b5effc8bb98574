package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// A snapshot in an S3-compatible store is one object, the sealed file,
// with the Info in its user metadata (x-amz-meta-knest-*).
const (
	s3MetaTenant   = "knest-tenant"
	s3MetaID       = "knest-id"
	s3MetaRevision = "knest-revision"
	s3MetaCreated  = "knest-created"
	s3MetaSHA256   = "knest-sha256"
)

// s3Client builds a client configured the usual way for the AWS CLI and
// SDKs, from the environment: credentials from $AWS_ACCESS_KEY_ID,
// $AWS_SECRET_ACCESS_KEY and $AWS_SESSION_TOKEN (none: anonymous requests,
// for a public bucket), the region from $AWS_REGION or $AWS_DEFAULT_REGION
// (default us-east-1). With an endpoint (--s3-endpoint,
// $AWS_ENDPOINT_URL_S3 or $AWS_ENDPOINT_URL) it talks to that
// S3-compatible store with path-style addressing (http://HOST/BUCKET/KEY),
// which such stores serve without wildcard DNS. The SDK's config loader
// (profiles, SSO, instance roles) is left out: it would take the CLI past
// its size budget.
func (o ociOptions) s3Client(context.Context) (*s3.Client, error) {
	cfg := aws.Config{Region: firstEnv("AWS_REGION", "AWS_DEFAULT_REGION")}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"); id != "" || secret != "" {
		if id == "" || secret == "" {
			return nil, errors.New("s3: set both $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY, or neither")
		}
		cfg.Credentials = aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(id, secret, os.Getenv("AWS_SESSION_TOKEN")))
	}
	endpoint := o.S3Endpoint
	if endpoint == "" {
		endpoint = firstEnv("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
	}
	return s3.NewFromConfig(cfg, func(so *s3.Options) {
		if endpoint != "" {
			so.BaseEndpoint = aws.String(endpoint)
			so.UsePathStyle = true
		}
		// The SDK's default CRC checksums on every request are not
		// served by every S3-compatible store; the sealed file carries
		// its own authentication and its SHA-256 is in the metadata.
		so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		so.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}), nil
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// putS3 stores the snapshot at l's key, or under l's prefix as
// TENANT-ID.knest. The download is spooled to a temporary file first, so
// the object appears only complete, with its size and SHA-256 known.
func putS3(ctx context.Context, l location, o ociOptions, r io.Reader, info Info, progressOut io.Writer) (Info, error) {
	client, err := o.s3Client(ctx)
	if err != nil {
		return info, err
	}
	spool, err := os.CreateTemp("", "knest-snapshot-*")
	if err != nil {
		return info, err
	}
	defer os.Remove(spool.Name())
	defer spool.Close()
	h := sha256.New()
	p := newProgress(progressOut, "Downloaded")
	n, err := io.Copy(io.MultiWriter(spool, h, p), r)
	p.done()
	if err != nil {
		return info, fmt.Errorf("the snapshot download broke off, nothing uploaded: %w", err)
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return info, err
	}
	key := l.key
	if key == "" || strings.HasSuffix(key, "/") {
		key += defaultName(info)
	}
	info.Size, info.SHA256 = n, hex.EncodeToString(h.Sum(nil))
	info.Location = location{kind: "s3", bucket: l.bucket, key: key}.String()
	_, err = client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(l.bucket), Key: aws.String(key), Body: spool, ContentLength: aws.Int64(n),
		ContentType: aws.String(LayerMediaType),
		Metadata: map[string]string{
			s3MetaTenant: info.Tenant, s3MetaID: info.ID, s3MetaRevision: info.Revision,
			s3MetaCreated: info.Created.UTC().Format(time.RFC3339), s3MetaSHA256: info.SHA256,
		},
	})
	if err != nil {
		return info, fmt.Errorf("failed to upload the snapshot to %s: %w", info.Location, err)
	}
	return info, nil
}

// getS3 opens the snapshot object l names. The reader fails at its end
// when the content does not match the SHA-256 in its metadata, so an
// upload of it breaks off and knestd refuses it.
func getS3(ctx context.Context, l location, o ociOptions) (source, error) {
	if l.key == "" || strings.HasSuffix(l.key, "/") {
		return source{}, fmt.Errorf("--from %s names a prefix: name one snapshot ('knest snapshot list --in %s' shows them)", l, l)
	}
	client, err := o.s3Client(ctx)
	if err != nil {
		return source{}, err
	}
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(l.bucket), Key: aws.String(l.key)})
	if err != nil {
		return source{}, fmt.Errorf("%s: %w", l, err)
	}
	info := s3Info(out.Metadata, l.String(), aws.ToInt64(out.ContentLength), out.LastModified)
	return source{ReadCloser: &s3Verifying{r: out.Body, h: sha256.New(), want: info.SHA256}, size: aws.ToInt64(out.ContentLength), info: &info}, nil
}

// s3Verifying checks the object's content against its recorded SHA-256.
type s3Verifying struct {
	r    io.ReadCloser
	h    hash.Hash
	want string
}

func (v *s3Verifying) Read(b []byte) (int, error) {
	n, err := v.r.Read(b)
	v.h.Write(b[:n])
	if errors.Is(err, io.EOF) && v.want != "" {
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want {
			return n, fmt.Errorf("the object's content (sha256 %s) does not match its recorded sha256 %s", got, v.want)
		}
	}
	return n, err
}

func (v *s3Verifying) Close() error { return v.r.Close() }

// listS3 lists the snapshots (TENANT-ID.knest objects) under l's prefix,
// or l's one object.
func listS3(ctx context.Context, l location, o ociOptions) ([]Info, error) {
	client, err := o.s3Client(ctx)
	if err != nil {
		return nil, err
	}
	pages := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(l.bucket), Prefix: aws.String(l.key)})
	var out []Info
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", l, err)
		}
		for _, obj := range page.Contents {
			key := aws.ToString(obj.Key)
			if !strings.HasSuffix(key, fileSuffix) {
				continue
			}
			ol := location{kind: "s3", bucket: l.bucket, key: key}
			head, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(l.bucket), Key: obj.Key})
			if err != nil {
				return nil, fmt.Errorf("%s: %w", ol, err)
			}
			out = append(out, s3Info(head.Metadata, ol.String(), aws.ToInt64(head.ContentLength), head.LastModified))
		}
	}
	return out, nil
}

func s3Info(meta map[string]string, where string, size int64, modified *time.Time) Info {
	info := Info{Tenant: meta[s3MetaTenant], ID: meta[s3MetaID], Revision: revisionString(meta[s3MetaRevision]),
		SHA256: meta[s3MetaSHA256], Size: size, Location: where}
	if info.Tenant == "" {
		// An object put there some other way: what the store knows.
		info.Tenant = "?"
	}
	if t, err := time.Parse(time.RFC3339, meta[s3MetaCreated]); err == nil {
		info.Created = t
	} else if modified != nil {
		info.Created = modified.UTC()
	}
	if _, err := strconv.ParseInt(info.Revision, 10, 64); err != nil {
		info.Revision = ""
	}
	return info
}
