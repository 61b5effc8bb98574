package etcd

import (
	"context"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{name: "dir and name are enough", opts: Options{Dir: "/x", Name: "a"}},
		{name: "a dir is required", opts: Options{Name: "a"}, wantErr: "data directory is required"},
		{name: "a name is required", opts: Options{Dir: "/x"}, wantErr: "member name is required"},
		{name: "a negative quota is refused", opts: Options{Dir: "/x", Name: "a", QuotaBackendBytes: -1}, wantErr: "quota must not be negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.opts.Validate()
			if tc.wantErr == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestConfigListensOnLoopbackOnly(t *testing.T) {
	t.Parallel()
	cfg, err := Options{Dir: t.TempDir(), Name: "demo"}.Config()
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range append(cfg.ListenClientUrls, cfg.ListenPeerUrls...) {
		if u.Hostname() != "127.0.0.1" {
			t.Errorf("listener %s is not on loopback", u.String())
		}
	}
	if cfg.QuotaBackendBytes != DefaultQuotaBackendBytes {
		t.Errorf("quota = %d, want the default %d", cfg.QuotaBackendBytes, DefaultQuotaBackendBytes)
	}
}

func TestRunKeepsDataAcrossRestartAndClosesOnCancel(t *testing.T) {
	dir := t.TempDir()
	put := func(ctx context.Context, url string) {
		t.Helper()
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Put(ctx, "/knest/marker", "kept"); err != nil {
			t.Fatalf("put: %v", err)
		}
	}
	get := func(ctx context.Context, url string) string {
		t.Helper()
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		resp, err := c.Get(ctx, "/knest/marker")
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		if len(resp.Kvs) != 1 {
			return ""
		}
		return string(resp.Kvs[0].Value)
	}

	ctx, cancel := context.WithCancel(context.Background())
	s, err := Run(ctx, Options{Dir: dir, Name: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.ClientURL(), "http://127.0.0.1:") {
		t.Errorf("client URL %q is not on loopback", s.ClientURL())
	}
	put(context.Background(), s.ClientURL())
	cancel()
	select {
	case <-s.Stopped():
	case <-time.After(10 * time.Second):
		t.Fatal("etcd did not stop within 10s of cancel")
	}

	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	s2, err := Run(ctx2, Options{Dir: dir, Name: "demo"})
	if err != nil {
		t.Fatalf("restart on the same directory: %v", err)
	}
	if got := get(context.Background(), s2.ClientURL()); got != "kept" {
		t.Errorf("after restart the key holds %q, want %q", got, "kept")
	}
}

// The idle cost and the restart time of the embedded etcd are set here:
// the raft tick wakes the process 1000/TickMs times a second, the backend
// once per batch interval, and a restarted member elects itself within
// ElectionMs. etcd must accept the pair (an election of 5 ticks or more).
func TestConfigIdleTimers(t *testing.T) {
	t.Parallel()
	cfg, err := Options{Dir: t.TempDir(), Name: "demo"}.Config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TickMs < 100 {
		t.Errorf("raft tick %d ms: more than 10 wake-ups a second while idle", cfg.TickMs)
	}
	if cfg.ElectionMs > 500 {
		t.Errorf("election timeout %d ms: a restart waits longer than 500 ms for its leader", cfg.ElectionMs)
	}
	if cfg.BackendBatchInterval < time.Second {
		t.Errorf("backend batch interval %s: more than one commit wake-up a second while idle", cfg.BackendBatchInterval)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("etcd refuses the configuration: %v", err)
	}
}
