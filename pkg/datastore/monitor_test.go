package datastore

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/knest-dev/knest/pkg/etcd"
)

// TestMonitorMeasuresOnOneConnection: an idle tenant's monitor measures
// every Interval; each measurement must not open a connection to etcd of
// its own (clientv3's Status dials the endpoint afresh on every call).
func TestMonitorMeasuresOnOneConnection(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	srv, err := etcd.Run(ctx, etcd.Options{Dir: t.TempDir(), Name: "monitor", LogLevel: "error"})
	if err != nil {
		t.Fatal(err)
	}
	proxy := countingProxy(t, srv.ClientURL())

	c, err := clientv3.New(clientv3.Config{Endpoints: []string{proxy.url}, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tenant := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: metav1.NamespaceSystem}})
	m := &Monitor{Guard: NewGuard(Limits{QuotaBytes: 64 << 20}), Etcd: c, Endpoint: proxy.url, Tenant: tenant, Interval: 20 * time.Millisecond}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// Wait for 20 measurements of the running monitor: a status update of
	// kube-system each (the condition is set once, then read each time).
	deadline := time.Now().Add(time.Minute)
	for countGets(tenant) < 20 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := countGets(tenant); n < 20 {
		t.Fatalf("the monitor measured %d times in a minute", n)
	}
	if got := proxy.accepted.Load(); got != 1 {
		t.Errorf("etcd accepted %d connections for 20 measurements, want the client's one", got)
	}
}

func countGets(c *fake.Clientset) int {
	n := 0
	for _, a := range c.Actions() {
		if a.GetVerb() == "get" && a.GetResource().Resource == "namespaces" {
			n++
		}
	}
	return n
}

type proxy struct {
	url      string
	accepted atomic.Int64
}

// countingProxy forwards TCP connections to the etcd at target and counts
// them.
func countingProxy(t *testing.T, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	addr := target[len("http://"):]
	p := &proxy{url: "http://" + l.Addr().String()}
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			p.accepted.Add(1)
			out, err := net.Dial("tcp", addr)
			if err != nil {
				in.Close()
				continue
			}
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	return p
}
