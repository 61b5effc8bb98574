package syncer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/test/integration/framework"
)

// upstreamAnswer is what the fake upstream resolver answers every A query
// with.
const upstreamAnswer = "192.0.2.1"

// upstream is a resolver that knestd forwards to: it answers every A query
// with upstreamAnswer and records what it was asked.
type upstream struct {
	mu    sync.Mutex
	asked []string
}

func (u *upstream) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	u.mu.Lock()
	u.asked = append(u.asked, req.Question[0].Name)
	u.mu.Unlock()
	resp := new(dns.Msg).SetReply(req)
	if req.Question[0].Qtype == dns.TypeA {
		resp.Answer = append(resp.Answer, &dns.A{
			Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
			A:   net.ParseIP(upstreamAnswer),
		})
	}
	_ = w.WriteMsg(resp)
}

func (u *upstream) wasAsked(name string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Contains(u.asked, dns.Fqdn(name))
}

// startUpstream runs an upstream resolver on port 53 of a random loopback
// address, since a resolv.conf names no ports. ok is false where port 53
// cannot be bound (not root).
func startUpstream(t *testing.T) (u *upstream, ip string, ok bool) {
	t.Helper()
	u = &upstream{}
	ip = fmt.Sprintf("127.53.%d.%d", rand.IntN(250)+1, rand.IntN(250)+1)
	pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, "53"))
	if err != nil {
		t.Logf("no upstream resolver (forwarding is not checked): %v", err)
		return u, ip, false
	}
	srv := &dns.Server{PacketConn: pc, Handler: u}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return u, ip, true
}

// TestIntegrationDNS queries knestd's DNS server directly for the tenant's
// Services, and checks that host pods resolve with it.
func TestIntegrationDNS(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	up, upstreamIP, forwarding := startUpstream(t)
	resolvConf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolvConf, []byte("nameserver "+upstreamIP+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dnsAddr := fmt.Sprintf("127.0.0.1:%d", framework.FreePort(t))
	const dnsServiceIP = "10.96.0.10"
	e := setUp(t, "--dns-address="+dnsAddr, "--host-cluster-domain=host.example",
		"--dns-upstream-resolv-conf="+resolvConf, "--dns-service-ip="+dnsServiceIP)
	ctx := t.Context()
	const ns = "default"

	ask := func(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
		c := &dns.Client{Timeout: 2 * time.Second}
		resp, _, err := c.ExchangeContext(ctx, new(dns.Msg).SetQuestion(dns.Fqdn(name), qtype), dnsAddr)
		return resp, err
	}
	// addresses asks for name's A records: nil for NXDOMAIN.
	addresses := func(ctx context.Context, name string) ([]string, int, error) {
		resp, err := ask(ctx, name, dns.TypeA)
		if err != nil {
			return nil, -1, err
		}
		var out []string
		for _, rr := range resp.Answer {
			if a, ok := rr.(*dns.A); ok {
				out = append(out, a.A.String())
			}
		}
		return out, resp.Rcode, nil
	}
	answers := func(name string, want ...string) func(context.Context) (bool, error) {
		return func(ctx context.Context) (bool, error) {
			got, rcode, err := addresses(ctx, name)
			return err == nil && rcode == dns.RcodeSuccess && slices.Equal(got, want), nil
		}
	}
	nxdomain := func(name string) func(context.Context) (bool, error) {
		return func(ctx context.Context) (bool, error) {
			_, rcode, err := addresses(ctx, name)
			return err == nil && rcode == dns.RcodeNameError, nil
		}
	}

	api, err := e.tenant.CoreV1().Services(ns).Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// knestd serves DNS once its cache of the tenant's Services is filled.
	within(t, 30*time.Second, "the tenant's kubernetes Service resolving", answers("kubernetes.default.svc.cluster.local", api.Spec.ClusterIP))

	web := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}},
		},
	}
	web, err = e.tenant.CoreV1().Services(ns).Create(ctx, web, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const webName = "web.default.svc.cluster.local."

	t.Run("a new Service resolves to its ClusterIP within a second", func(t *testing.T) {
		took := within(t, syncWithin, "web's A record", answers(webName, web.Spec.ClusterIP))
		t.Logf("resolved %s after creation", took)
	})

	t.Run("a named port has an SRV record", func(t *testing.T) {
		resp, err := ask(ctx, "_http._tcp."+webName, dns.TypeSRV)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Answer) != 1 {
			t.Fatalf("SRV _http._tcp.%s: %v", webName, resp)
		}
		srv, ok := resp.Answer[0].(*dns.SRV)
		if !ok || srv.Target != webName || srv.Port != 80 {
			t.Errorf("SRV _http._tcp.%s: %v, want %s port 80", webName, resp.Answer[0], webName)
		}
	})

	t.Run("the ClusterIP has a PTR record naming the Service", func(t *testing.T) {
		reverse, err := dns.ReverseAddr(web.Spec.ClusterIP)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := ask(ctx, reverse, dns.TypePTR)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Answer) != 1 || resp.Answer[0].(*dns.PTR).Ptr != webName {
			t.Errorf("PTR %s: %v, want %s", reverse, resp.Answer, webName)
		}
	})

	t.Run("names the tenant does not have are NXDOMAIN, never forwarded", func(t *testing.T) {
		for _, name := range []string{
			// The Service exists, in another namespace.
			"web.kube-system.svc.cluster.local",
			"nothing.default.svc.cluster.local",
			// The host cluster's names: its API server, this tenant's own
			// host Service, another tenant's host Services.
			"kubernetes.default.svc.host.example",
			"knestd." + hostNamespace + ".svc.host.example",
			hostName(ns, "web") + "." + hostNamespace + ".svc.host.example",
			"web-x-default-x-other.knest-other.svc.host.example",
		} {
			if ok, _ := nxdomain(name)(ctx); !ok {
				got, rcode, err := addresses(ctx, name)
				t.Errorf("%s: %v %s %v, want NXDOMAIN", name, got, dns.RcodeToString[rcode], err)
			}
			if up.wasAsked(name) {
				t.Errorf("%s was forwarded to the upstream resolver", name)
			}
		}
	})

	t.Run("other names are forwarded to the upstream resolvers", func(t *testing.T) {
		if !forwarding {
			t.Skip("no upstream resolver on port 53")
		}
		const name = "forwarded.example.org"
		got, rcode, err := addresses(ctx, name)
		if err != nil || rcode != dns.RcodeSuccess || !slices.Equal(got, []string{upstreamAnswer}) || !up.wasAsked(name) {
			t.Errorf("%s: %v %s %v, want the upstream's %s", name, got, dns.RcodeToString[rcode], err, upstreamAnswer)
		}
	})

	t.Run("a changed Service's records change within a second", func(t *testing.T) {
		svc, err := e.tenant.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		svc.Spec.Ports[0].Name = "web"
		if _, err := e.tenant.CoreV1().Services(ns).Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		took := within(t, syncWithin, "the renamed port's SRV record", func(ctx context.Context) (bool, error) {
			renamed, err := ask(ctx, "_web._tcp."+webName, dns.TypeSRV)
			if err != nil || len(renamed.Answer) != 1 {
				return false, nil
			}
			old, err := ask(ctx, "_http._tcp."+webName, dns.TypeSRV)
			return err == nil && old.Rcode == dns.RcodeNameError, nil
		})
		t.Logf("SRV records followed the port's new name after %s", took)
		if err := e.tenant.CoreV1().Services(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		took = within(t, syncWithin, "web NXDOMAIN after its deletion", nxdomain(webName))
		t.Logf("NXDOMAIN %s after deletion", took)
	})

	t.Run("a headless Service resolves to its ready pods, each by name", func(t *testing.T) {
		db := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "db"},
			Spec: corev1.ServiceSpec{
				ClusterIP: corev1.ClusterIPNone,
				Selector:  map[string]string{"app": "db"},
				Ports:     []corev1.ServicePort{{Name: "pg", Port: 5432, Protocol: corev1.ProtocolTCP}},
			},
		}
		if _, err := e.tenant.CoreV1().Services(ns).Create(ctx, db, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		pod := simplePod("db-0")
		pod.Labels = map[string]string{"app": "db"}
		pod.Spec.Hostname, pod.Spec.Subdomain = "db-0", "db"
		if _, err := e.tenant.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		within(t, 30*time.Second, "db-0 Running with an IP", func(ctx context.Context) (bool, error) {
			p, err := e.tenantPod(ctx, ns, "db-0")
			if err != nil {
				return false, err
			}
			pod = p
			return p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "", nil
		})
		within(t, 10*time.Second, "db resolving to db-0", answers("db.default.svc.cluster.local", pod.Status.PodIP))
		within(t, syncWithin, "db-0.db resolving", answers("db-0.db.default.svc.cluster.local", pod.Status.PodIP))
		resp, err := ask(ctx, "_pg._tcp.db.default.svc.cluster.local", dns.TypeSRV)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Answer) != 1 || resp.Answer[0].(*dns.SRV).Target != "db-0.db.default.svc.cluster.local." {
			t.Errorf("SRV _pg._tcp.db: %v, want db-0.db.default.svc.cluster.local.", resp.Answer)
		}
	})

	t.Run("host pods of ClusterFirst tenant pods resolve with the tenant's DNS", func(t *testing.T) {
		h, err := e.hostPod(ctx, ns, "db-0")
		if err != nil {
			t.Fatal(err)
		}
		want := &corev1.PodDNSConfig{
			Nameservers: []string{dnsServiceIP},
			Searches:    []string{"default.svc.cluster.local", "svc.cluster.local", "cluster.local"},
			Options:     []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("5")}},
		}
		if diff := cmp.Diff(want, h.Spec.DNSConfig); h.Spec.DNSPolicy != corev1.DNSNone || diff != "" {
			t.Errorf("host pod DNS: policy %q (want None), dnsConfig (-want +got):\n%s", h.Spec.DNSPolicy, diff)
		}
	})
}
