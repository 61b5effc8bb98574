package datastore

import (
	"context"
	"io"
	"net"
	"strings"
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
// its own (clientv3's Status dials the endpoint afresh on every call), nor
// read the kube-system Namespace through the API server while its
// condition already says what the monitor would write.
func TestMonitorMeasuresOnOneConnection(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	m, tenant, proxy := startMonitor(ctx, t, time.Hour)
	// Wait for 20 measurements of the running monitor.
	deadline := time.Now().Add(time.Minute)
	for m.ticks.Load() < 20 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := m.ticks.Load(); n < 20 {
		t.Fatalf("the monitor measured %d times in a minute", n)
	}
	if got := proxy.accepted.Load(); got != 1 {
		t.Errorf("etcd accepted %d connections for 20 measurements, want the client's one", got)
	}
	if n := countGets(tenant); n != 1 {
		t.Errorf("the monitor read the kube-system Namespace %d times in 20 measurements of an idle datastore, want once", n)
	}
	if c := condition(t, tenant); c == nil || c.Reason != ReasonWritable {
		t.Errorf("kube-system's %s condition is %+v, want %s", ConditionType, c, ReasonWritable)
	}
}

// TestMonitorPutsBackAChangedCondition: the condition is tenant-writable
// (a cluster-admin may update the Namespace's status); the monitor reads
// it again every ReadAgain and puts it back.
func TestMonitorPutsBackAChangedCondition(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, tenant, _ := startMonitor(ctx, t, 100*time.Millisecond)
	waitCondition := func(what string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if c := condition(t, tenant); c != nil && c.Reason == ReasonWritable {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("%s: no %s condition on kube-system", what, ConditionType)
	}
	waitCondition("first report")
	ns, err := tenant.CoreV1().Namespaces().Get(ctx, metav1.NamespaceSystem, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns.Status.Conditions = nil
	if _, err := tenant.CoreV1().Namespaces().UpdateStatus(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitCondition("after the tenant removed it")
}

// startMonitor runs a monitor of a real etcd, through a proxy that counts
// connections, measuring every 20 ms, reporting to a fake tenant API.
func startMonitor(ctx context.Context, t *testing.T, readAgain time.Duration) (*Monitor, *fake.Clientset, *proxy) {
	t.Helper()
	srv, err := etcd.Run(ctx, etcd.Options{Dir: t.TempDir(), Name: "monitor", LogLevel: "error"})
	if err != nil {
		t.Fatal(err)
	}
	proxy := countingProxy(t, srv.ClientURL())
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{proxy.url}, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	tenant := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: metav1.NamespaceSystem}})
	m := &Monitor{Guard: NewGuard(Limits{QuotaBytes: 64 << 20}), Etcd: c, Endpoint: proxy.url, Tenant: tenant,
		Interval: 20 * time.Millisecond, ReadAgain: readAgain}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return m, tenant, proxy
}

func condition(t *testing.T, tenant *fake.Clientset) *corev1.NamespaceCondition {
	t.Helper()
	ns, err := tenant.CoreV1().Namespaces().Get(t.Context(), metav1.NamespaceSystem, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ns.Status.Conditions {
		if c.Type == ConditionType {
			return &c
		}
	}
	return nil
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

// The condition's figure moves in whole MiB: an idle tenant's own writes
// do not rewrite it.
func TestConditionInWholeMiB(t *testing.T) {
	m := &Monitor{Guard: NewGuard(Limits{QuotaBytes: 64 << 20})}
	a, b := m.condition(false, Usage{InUse: 10<<20 + 100<<10}), m.condition(false, Usage{InUse: 10<<20 + 900<<10})
	if a != b {
		t.Errorf("10.1 MiB and 10.9 MiB give different conditions:\n%s\n%s", a.Message, b.Message)
	}
	if c := m.condition(false, Usage{InUse: 11 << 20}); c == a {
		t.Errorf("11 MiB gives the condition of 10.1 MiB: %s", c.Message)
	}
	if !strings.Contains(a.Message, "10.0 MiB of its 64.0 MiB limit") {
		t.Errorf("message %q", a.Message)
	}
}
