package snapshot

import (
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// TestS3Target stores, lists and reads snapshots in an S3-protocol server
// (gofakes3 with its in-memory backend, in this process) through the AWS
// SDK, configured as a user would: credentials and the endpoint from the
// environment.
func TestS3Target(t *testing.T) {
	ctx := context.Background()
	backend := s3mem.New()
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	defer srv.Close()
	if err := backend.CreateBucket("backups"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_ENDPOINT_URL_S3", srv.URL)
	t.Setenv("AWS_REGION", "")
	opts := ociOptions{}
	data := sealedBytes(t, 5<<20)
	created := time.Now().UTC().Truncate(time.Second)
	info := Info{Tenant: "shop", ID: "20261206-150405-aa", Revision: "42", Created: created}

	prefix, err := parseLocation("--to", "s3://backups/shop/")
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	got, err := writeSnapshot(ctx, prefix, opts, bytes.NewReader(data), info, &progress)
	if err != nil {
		t.Fatal(err)
	}
	if got.Location != "s3://backups/shop/shop-"+info.ID+".knest" || got.Size != int64(len(data)) || got.SHA256 == "" {
		t.Errorf("put %+v", got)
	}
	second := info
	second.ID, second.Created = "20261206-170000-cc", created.Add(time.Hour)
	named, _ := parseLocation("--to", "s3://backups/shop/latest.knest")
	if _, err := writeSnapshot(ctx, named, opts, bytes.NewReader(data[:1000]), second, io.Discard); err != nil {
		t.Fatal(err)
	}
	// Another object under the prefix is not a snapshot.
	client, err := opts.s3Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("backups"), Key: aws.String("shop/README"), Body: strings.NewReader("hello")}); err != nil {
		t.Fatal(err)
	}

	list, err := listSnapshots(ctx, prefix, opts, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != second.ID || list[0].Location != "s3://backups/shop/latest.knest" ||
		list[1].ID != info.ID || list[1].Revision != "42" || !list[1].Created.Equal(created) || list[1].Size != int64(len(data)) {
		t.Fatalf("list = %+v", list)
	}
	if l, err := listSnapshots(ctx, prefix, opts, "blog"); err != nil || len(l) != 0 {
		t.Errorf("list blog = %+v, %v", l, err)
	}

	from, _ := parseLocation("--from", got.Location)
	src, err := openSnapshot(ctx, from, opts)
	if err != nil {
		t.Fatal(err)
	}
	if src.size != int64(len(data)) || src.info.Tenant != "shop" || src.info.ID != info.ID {
		t.Errorf("got size %d, info %+v", src.size, src.info)
	}
	if b, err := readAll(t, src); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("got %d bytes, %v", len(b), err)
	}

	// Refused: a prefix, a key that does not exist, a bucket that does not.
	for _, bad := range []struct{ loc, want string }{
		{"s3://backups/shop/", "names a prefix"},
		{"s3://backups/shop/nope.knest", "NoSuchKey"},
		{"s3://nosuchbucket/shop.knest", "NoSuchBucket"},
	} {
		l, _ := parseLocation("--from", bad.loc)
		if _, err := openSnapshot(ctx, l, opts); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("open %s: %v, want %q", bad.loc, err, bad.want)
		}
	}
	if _, err := writeSnapshot(ctx, mustLocation(t, "s3://nosuchbucket/x/"), opts, bytes.NewReader(data[:10]), info, io.Discard); err == nil {
		t.Error("put into a bucket that does not exist: no error")
	}

	// The object replaced behind the snapshot's back, its metadata kept:
	// the read fails at the end, so an upload of it breaks off.
	head, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("backups"), Key: aws.String("shop/shop-" + info.ID + ".knest")})
	if err != nil {
		t.Fatal(err)
	}
	changed := bytes.Clone(data)
	changed[len(changed)/2] ^= 1
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("backups"), Key: aws.String("shop/shop-" + info.ID + ".knest"),
		Body: bytes.NewReader(changed), Metadata: head.Metadata}); err != nil {
		t.Fatal(err)
	}
	src, err = openSnapshot(ctx, from, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(t, src); err == nil || !strings.Contains(err.Error(), "does not match its recorded sha256") {
		t.Errorf("reading a changed object: %v", err)
	}
}

func TestParseS3Location(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, bucket, key, err string }{
		{in: "s3://backups/shop/x.knest", bucket: "backups", key: "shop/x.knest"},
		{in: "s3://backups/", bucket: "backups", key: ""},
		{in: "s3://backups", bucket: "backups", key: ""},
		{in: "s3:///x", err: "want s3://BUCKET"},
	} {
		l, err := parseLocation("--to", tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || l.kind != "s3" || l.bucket != tc.bucket || l.key != tc.key {
			t.Errorf("%s: %+v, %v", tc.in, l, err)
		}
	}
}

func mustLocation(t *testing.T, s string) location {
	t.Helper()
	l, err := parseLocation("--to", s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
