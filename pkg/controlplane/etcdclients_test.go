package controlplane

import (
	"context"
	"testing"
	"time"

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
