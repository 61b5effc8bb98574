package controlplane

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/kubernetes"

	"k8s.io/apiserver/pkg/storage/storagebackend"

	"github.com/knest-dev/knest/pkg/etcd"
)

// The resources of one transport share one client and one compactor; the
// client lives until the last of them is released, and the next acquire
// dials a new one.
func TestSharedEtcdClientsAreCountedPerTransport(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	srv, err := etcd.Run(ctx, etcd.Options{Dir: t.TempDir(), Name: "shared", LogLevel: "error"})
	if err != nil {
		t.Fatal(err)
	}
	clients := &etcdClients{shared: map[string]*sharedEtcd{}}
	transport := storagebackend.TransportConfig{ServerList: []string{srv.ClientURL()}}
	a, compactorA, releaseA, err := clients.acquire(transport, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	b, compactorB, releaseB, err := clients.acquire(transport, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if a != b || compactorA != compactorB || compactorA == nil {
		t.Fatalf("two resources of one transport got clients %p and %p, compactors %v and %v: want one of each", a, b, compactorA, compactorB)
	}
	get := func() error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := a.Client.Get(ctx, "/registry/anything")
		return err
	}
	releaseA()
	releaseA() // a storage's destroy runs more than once upstream
	if err := get(); err != nil {
		t.Fatalf("the client failed while a resource still used it: %v", err)
	}
	releaseB()
	if err := get(); err == nil {
		t.Fatal("the client still works after the last resource released it")
	}
	if len(clients.shared) != 0 {
		t.Fatalf("%d shared clients left after the last release", len(clients.shared))
	}
	c, _, releaseC, err := clients.acquire(transport, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseC()
	if c == a {
		t.Fatal("a closed client was handed out again")
	}
}

// A transport whose one server is an etcd of this process gets an
// in-process client (no gRPC connection), which reads, writes, watches
// and answers progress requests on the watch stream;
// once the etcd is no longer served in-process, the next client dials.
func TestSharedEtcdClientOfAnInProcessEtcd(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	srv, err := etcd.Run(ctx, etcd.Options{Dir: t.TempDir(), Name: "local", LogLevel: "error"})
	if err != nil {
		t.Fatal(err)
	}
	stop := serveInProcess(srv.ClientURL(), srv.NewInProcessClient)
	clients := &etcdClients{shared: map[string]*sharedEtcd{}}
	transport := storagebackend.TransportConfig{ServerList: []string{srv.ClientURL()}}
	c, _, release, err := clients.acquire(transport, 0)
	if err != nil {
		t.Fatal(err)
	}
	if conn := c.Client.ActiveConnection(); conn != nil {
		t.Fatalf("the client of an in-process etcd dialled %s", conn.Target())
	}
	opCtx, opCancel := context.WithTimeout(ctx, 10*time.Second)
	defer opCancel()
	w := c.Client.Watch(opCtx, "/registry/pods/", clientv3.WithPrefix())
	if _, err := c.Client.Put(opCtx, "/registry/pods/default/a", "1"); err != nil {
		t.Fatal(err)
	}
	select {
	case resp := <-w:
		if err := resp.Err(); err != nil || len(resp.Events) != 1 || string(resp.Events[0].Kv.Key) != "/registry/pods/default/a" {
			t.Fatalf("watch: events %v, error %v; want the put", resp.Events, err)
		}
	case <-opCtx.Done():
		t.Fatal("no watch event for the put")
	}
	// The watch cache's consistent reads ask the watch stream for a
	// progress notification.
	if err := c.Client.RequestProgress(opCtx); err != nil {
		t.Fatal(err)
	}
	select {
	case resp := <-w:
		if !resp.IsProgressNotify() || resp.Header.Revision < 2 {
			t.Fatalf("after RequestProgress: %+v, want a progress notification at the put's revision", resp)
		}
	case <-opCtx.Done():
		t.Fatal("no progress notification after RequestProgress")
	}
	got, err := c.Kubernetes.Get(opCtx, "/registry/pods/default/a", kubernetes.GetOptions{})
	if err != nil || got.KV == nil || string(got.KV.Value) != "1" {
		t.Fatalf("get: %v, %v; want the put value", got.KV, err)
	}
	release()

	stop()
	d, _, releaseD, err := clients.acquire(transport, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseD()
	if d.Client.ActiveConnection() == nil {
		t.Fatal("the client made after the in-process etcd was withdrawn has no connection: want one dialled")
	}
	if _, err := d.Client.Get(opCtx, "/registry/pods/default/a"); err != nil {
		t.Fatalf("the dialled client: %v", err)
	}
}
