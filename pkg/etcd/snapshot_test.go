package etcd

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func client(t *testing.T, url string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestARestoredSnapshotHoldsTheDataAtARevisionPastWhatClientsSaw(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd three times")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	srvCtx, stop := context.WithCancel(ctx)
	srv, err := Run(srvCtx, Options{Dir: filepath.Join(dir, "a"), Name: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	c := client(t, srv.ClientURL())
	if _, err := c.Put(ctx, "/registry/kept", "v1"); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "snap.db")
	rev, err := Save(ctx, srv.ClientURL(), db)
	if err != nil {
		t.Fatal(err)
	}
	// Written after the snapshot: gone after the restore, and clients
	// saw revisions up to seen.
	for range 5 {
		if _, err := c.Put(ctx, "/registry/later", "x"); err != nil {
			t.Fatal(err)
		}
	}
	seen, err := Revision(ctx, srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	stop()
	<-srv.Stopped()
	if seen <= rev {
		t.Fatalf("revision %d after writes, snapshot at %d", seen, rev)
	}

	restored := Options{Dir: filepath.Join(dir, "b"), Name: "demo"}
	if err := Restore(restored, db, seen); err != nil {
		t.Fatal(err)
	}
	srv2, err := Run(ctx, restored)
	if err != nil {
		t.Fatal(err)
	}
	c2 := client(t, srv2.ClientURL())
	resp, err := c2.Get(ctx, "/registry/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Key) != "/registry/kept" {
		t.Errorf("restored keys = %v, want only /registry/kept", resp.Kvs)
	}
	if resp.Header.Revision <= seen {
		t.Errorf("restored revision %d, want past %d, the highest a client saw", resp.Header.Revision, seen)
	}
	// Reading at a revision from before is refused as compacted, so
	// watchers relist.
	if _, err := c2.Get(ctx, "/registry/kept", clientv3.WithRev(seen)); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Errorf("read at revision %d = %v, want compacted", seen, err)
	}
	if err := Restore(restored, db, 0); err == nil {
		t.Error("Restore wrote over an existing data directory")
	}
}
