package etcd

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	clientsnapshot "go.etcd.io/etcd/client/v3/snapshot"
	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"
)

// Save streams a consistent snapshot of the running etcd at clientURL
// (etcd's own snapshot API: the server keeps serving) to path and returns
// the revision it holds.
func Save(ctx context.Context, clientURL, path string) (int64, error) {
	cfg := clientv3.Config{Endpoints: []string{clientURL}, DialTimeout: 10 * time.Second, Logger: zap.NewNop()}
	if _, err := clientsnapshot.SaveWithVersion(ctx, zap.NewNop(), cfg, path); err != nil {
		return 0, fmt.Errorf("failed to take an etcd snapshot: %w", err)
	}
	st, err := snapshot.NewV3(zap.NewNop()).Status(path)
	if err != nil {
		return 0, fmt.Errorf("the etcd snapshot does not check out: %w", err)
	}
	return st.Revision, nil
}

// Revision returns the running etcd's current revision.
func Revision(ctx context.Context, clientURL string) (int64, error) {
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{clientURL}, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	resp, err := c.Get(ctx, "knest-revision-probe", clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("failed to read the etcd revision: %w", err)
	}
	return resp.Header.Revision, nil
}

// SnapshotRevision checks a snapshot file's integrity and returns its revision.
func SnapshotRevision(path string) (int64, error) {
	st, err := snapshot.NewV3(zap.NewNop()).Status(path)
	if err != nil {
		return 0, fmt.Errorf("the etcd snapshot does not check out: %w", err)
	}
	return st.Revision, nil
}

// Restore turns a snapshot file into a new data directory dir (which must
// not exist) for the member o.Name, with the revision raised past
// minRevision and marked compacted: clients that watched the replaced
// data from a revision the restored data never had get "compacted" and
// list again, instead of waiting for revisions that would mean something
// else.
func Restore(o Options, snapshotPath string, minRevision int64) error {
	cfg, err := o.Config()
	if err != nil {
		return err
	}
	rev, err := SnapshotRevision(snapshotPath)
	if err != nil {
		return err
	}
	// A margin beyond the highest revision a client saw, so that writes
	// made while the restore was prepared are behind it too.
	const margin = 1_000_000
	bump := int64(margin)
	if minRevision > rev {
		bump += minRevision - rev
	}
	peers := make([]string, 0, len(cfg.AdvertisePeerUrls))
	for _, u := range cfg.AdvertisePeerUrls {
		peers = append(peers, u.String())
	}
	err = snapshot.NewV3(zap.NewNop()).Restore(snapshot.RestoreConfig{
		SnapshotPath: snapshotPath, Name: cfg.Name, OutputDataDir: o.Dir,
		PeerURLs: peers, InitialCluster: cfg.InitialCluster, InitialClusterToken: cfg.InitialClusterToken,
		RevisionBump: uint64(bump), MarkCompacted: true,
	})
	if err != nil {
		return fmt.Errorf("failed to restore the etcd snapshot: %w", err)
	}
	return nil
}
