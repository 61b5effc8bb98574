package hosttoken

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	jose "gopkg.in/go-jose/go-jose.v2"
	"gopkg.in/go-jose/go-jose.v2/jwt"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/knest-dev/knest/pkg/translate"
)

const (
	issuer   = "https://kubernetes.default.svc.cluster.local"
	tenant   = "acme"
	hostNS   = "knest-acme"
	workload = "knest-workload"
	audience = "knest:0123abcd"
)

// host serves a host API server's issuer discovery and JWKS.
type host struct {
	mu   sync.Mutex
	keys []jose.JSONWebKey
}

func (h *host) publish(k *signingKey) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.keys = append(h.keys, jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: "RS256", Use: "sig"})
}

func (h *host) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch r.URL.Path {
	case discoveryPath:
		_ = json.NewEncoder(w).Encode(discovery{Issuer: issuer, JWKSURI: "https://somewhere.example/openid/v1/jwks"})
	case "/openid/v1/jwks":
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: h.keys})
	default:
		http.NotFound(w, r)
	}
}

type signingKey struct {
	kid  string
	priv *rsa.PrivateKey
}

func newKey(t *testing.T, kid string) *signingKey {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &signingKey{kid: kid, priv: priv}
}

// claims are a token's as the host API server writes them for a pod-bound
// token (TokenRequest with a boundObjectRef, as the kubelet asks).
type claims struct {
	jwt.Claims
	Kubernetes map[string]any `json:"kubernetes.io"`
}

func hostClaims(tweaks ...func(*claims)) claims {
	now := time.Now()
	c := claims{
		Claims: jwt.Claims{
			Issuer: issuer, Subject: "system:serviceaccount:" + hostNS + ":" + workload,
			Audience: jwt.Audience{audience}, Expiry: jwt.NewNumericDate(now.Add(time.Hour)),
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ID: "jti-1",
		},
		Kubernetes: map[string]any{
			"namespace":      hostNS,
			"serviceaccount": map[string]string{"name": workload, "uid": "sa-uid"},
			"pod":            map[string]string{"name": "web-x-shop-x-acme", "uid": "host-pod-uid"},
			"node":           map[string]string{"name": "host-node-7", "uid": "node-uid"},
		},
	}
	for _, tweak := range tweaks {
		tweak(&c)
	}
	return c
}

func sign(t *testing.T, k *signingKey, c claims) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: k.priv},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", k.kid))
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwt.Signed(signer).Claims(c).CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// pods is knestd's caches: host pods by name, tenant pods and
// ServiceAccounts by namespace/name.
type pods struct {
	host    map[string]*corev1.Pod
	tenant  map[string]*corev1.Pod
	service map[string]*corev1.ServiceAccount
}

func (p *pods) HostPod(_ context.Context, name string) (*corev1.Pod, error) {
	if pod, ok := p.host[name]; ok {
		return pod, nil
	}
	return nil, kerrors.NewNotFound(corev1.Resource("pods"), name)
}

func (p *pods) TenantPod(_ context.Context, ns, name string) (*corev1.Pod, error) {
	if pod, ok := p.tenant[ns+"/"+name]; ok {
		return pod, nil
	}
	return nil, kerrors.NewNotFound(corev1.Resource("pods"), name)
}

func (p *pods) TenantServiceAccount(_ context.Context, ns, name string) (*corev1.ServiceAccount, error) {
	if sa, ok := p.service[ns+"/"+name]; ok {
		return sa, nil
	}
	return nil, kerrors.NewNotFound(corev1.Resource("serviceaccounts"), name)
}

// syncedPods is tenant pod shop/web (ServiceAccount builder) and the host
// pod the syncer made of it.
func syncedPods() *pods {
	id := translate.Object{Kind: "Pod", Namespace: "shop", Name: "web", UID: "tenant-pod-uid"}
	labels, annotations := translate.HostMeta(tenant, id, nil, nil, translate.Passthrough{})
	return &pods{
		host: map[string]*corev1.Pod{"web-x-shop-x-acme": {
			ObjectMeta: metav1.ObjectMeta{Name: "web-x-shop-x-acme", Namespace: hostNS, UID: "host-pod-uid", Labels: labels, Annotations: annotations},
			Spec:       corev1.PodSpec{ServiceAccountName: workload},
		}},
		tenant: map[string]*corev1.Pod{"shop/web": {
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "tenant-pod-uid"},
			Spec:       corev1.PodSpec{ServiceAccountName: "builder"},
		}},
		service: map[string]*corev1.ServiceAccount{"shop/builder": {ObjectMeta: metav1.ObjectMeta{Name: "builder", Namespace: "shop", UID: "builder-uid"}}},
	}
}

func newAuthenticator(t *testing.T, h *host, p Pods) (*Authenticator, *KeySet) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	keys := &KeySet{Host: c.Discovery().RESTClient(), MinRefresh: time.Hour}
	a := New(Config{Keys: keys, Tenant: tenant, HostNamespace: hostNS, ServiceAccount: workload})
	if p != nil {
		a.Serve(audience, p)
	}
	return a, keys
}

func TestHostTokenMapsToTheTenantPodsServiceAccount(t *testing.T) {
	t.Parallel()
	k := newKey(t, "k1")
	h := &host{}
	h.publish(k)
	a, _ := newAuthenticator(t, h, syncedPods())
	resp, ok, err := a.AuthenticateToken(context.Background(), sign(t, k, hostClaims()))
	if err != nil || !ok {
		t.Fatalf("a host token of a synced pod: ok=%v err=%v, want accepted", ok, err)
	}
	want := &user.DefaultInfo{
		Name: "system:serviceaccount:shop:builder", UID: "builder-uid",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:shop"},
		Extra: map[string][]string{
			ExtraPodName: {"web"}, ExtraPodUID: {"tenant-pod-uid"}, ExtraCredentialID: {"JTI=jti-1"},
		},
	}
	if diff := cmp.Diff(want, resp.User); diff != "" {
		t.Errorf("identity (-want +got):\n%s", diff)
	}
}

func TestHostTokensRefused(t *testing.T) {
	t.Parallel()
	k := newKey(t, "k1")
	forger := newKey(t, "k1") // same key ID, another key
	h := &host{}
	h.publish(k)
	tests := []struct {
		name  string
		token func(t *testing.T) string
		pods  func(p *pods)
		want  string
	}{{
		name: "another tenant's pod token: its audience",
		token: func(t *testing.T) string {
			return sign(t, k, hostClaims(func(c *claims) { c.Audience = jwt.Audience{"knest:other-tenant"} }))
		},
		want: "not for this tenant",
	}, {
		name: "another tenant's pod token with this audience: its host namespace",
		token: func(t *testing.T) string {
			return sign(t, k, hostClaims(func(c *claims) {
				c.Subject = "system:serviceaccount:knest-other:" + workload
				c.Kubernetes["namespace"] = "knest-other"
			}))
		},
		want: "host namespace",
	}, {
		name: "a host token for the host API server's audience: not a knest token, left to the others",
		token: func(t *testing.T) string {
			return sign(t, k, hostClaims(func(c *claims) { c.Audience = jwt.Audience{issuer} }))
		},
	}, {
		name: "knestd's own pod's token (another ServiceAccount, same namespace)",
		token: func(t *testing.T) string {
			return sign(t, k, hostClaims(func(c *claims) {
				c.Subject = "system:serviceaccount:" + hostNS + ":knestd"
				c.Kubernetes["serviceaccount"] = map[string]string{"name": "knestd", "uid": "x"}
				c.Kubernetes["pod"] = map[string]string{"name": "knestd-0", "uid": "knestd-pod-uid"}
			}))
		},
		want: "not knest's workload ServiceAccount",
	}, {
		name: "a pod running as the workload ServiceAccount that the syncer did not make",
		token: func(t *testing.T) string {
			return sign(t, k, hostClaims(func(c *claims) {
				c.Kubernetes["pod"] = map[string]string{"name": "intruder", "uid": "intruder-uid"}
			}))
		},
		pods: func(p *pods) {
			p.host["intruder"] = &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "intruder", Namespace: hostNS, UID: "intruder-uid", Labels: map[string]string{"app": "x"}},
				Spec:       corev1.PodSpec{ServiceAccountName: workload},
			}
		},
		want: "not a pod of this tenant",
	}, {
		name:  "a deleted pod's token",
		token: func(t *testing.T) string { return sign(t, k, hostClaims()) },
		pods:  func(p *pods) { delete(p.host, "web-x-shop-x-acme") },
		want:  "is gone",
	}, {
		name:  "the token of an earlier pod of the same name",
		token: func(t *testing.T) string { return sign(t, k, hostClaims()) },
		pods:  func(p *pods) { p.host["web-x-shop-x-acme"].UID = "newer-host-pod-uid" },
		want:  "was replaced",
	}, {
		name:  "a pod whose tenant pod is gone",
		token: func(t *testing.T) string { return sign(t, k, hostClaims()) },
		pods:  func(p *pods) { delete(p.tenant, "shop/web") },
		want:  "tenant pod shop/web is gone",
	}, {
		name:  "a pod whose tenant pod was recreated under the same name",
		token: func(t *testing.T) string { return sign(t, k, hostClaims()) },
		pods:  func(p *pods) { p.tenant["shop/web"].UID = "other" },
		want:  "was replaced",
	}, {
		name:  "a pod whose tenant ServiceAccount is gone",
		token: func(t *testing.T) string { return sign(t, k, hostClaims()) },
		pods:  func(p *pods) { delete(p.service, "shop/builder") },
		want:  "ServiceAccount shop/builder is gone",
	}, {
		name: "an expired token",
		token: func(t *testing.T) string {
			return sign(t, k, hostClaims(func(c *claims) { c.Expiry = jwt.NewNumericDate(time.Now().Add(-time.Second)) }))
		},
		want: "expired",
	}, {
		name: "a token without expiry",
		token: func(t *testing.T) string {
			return sign(t, k, hostClaims(func(c *claims) { c.Expiry = nil }))
		},
		want: "expired",
	}, {
		name:  "a forged token (right key ID, wrong key)",
		token: func(t *testing.T) string { return sign(t, forger, hostClaims()) },
		want:  "bad signature",
	}, {
		// The tenant's TokenRequest (or a tenant pod's projection naming
		// the knest audience it read in its own token): the tenant API
		// server signs whatever claims it likes, with the same issuer URL
		// as the host's by default, but with its own key.
		name: "a token the tenant minted with every claim right (tenant API server's key)",
		token: func(t *testing.T) string {
			return sign(t, newKey(t, "tenant-key"), hostClaims())
		},
		want: "no host service-account key",
	}, {
		name: "a token with a tampered payload",
		token: func(t *testing.T) string {
			parts := strings.Split(sign(t, k, hostClaims()), ".")
			other := strings.Split(sign(t, k, hostClaims(func(c *claims) { c.Kubernetes["pod"] = map[string]string{"name": "other", "uid": "u"} })), ".")
			return parts[0] + "." + other[1] + "." + parts[2]
		},
		want: "bad signature",
	}, {
		name: "a token not bound to a pod (a plain TokenRequest for the workload ServiceAccount)",
		token: func(t *testing.T) string {
			return sign(t, k, hostClaims(func(c *claims) { delete(c.Kubernetes, "pod") }))
		},
		want: "not bound to a pod",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := syncedPods()
			if tc.pods != nil {
				tc.pods(p)
			}
			a, _ := newAuthenticator(t, h, p)
			resp, ok, err := a.AuthenticateToken(context.Background(), tc.token(t))
			if ok || resp != nil {
				t.Fatalf("accepted as %v, want refused", resp.User)
			}
			if tc.want == "" && err != nil {
				t.Errorf("error %v, want none (not a knest token)", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func TestTokensOfOtherIssuersAreLeftToTheTenantsAuthenticators(t *testing.T) {
	t.Parallel()
	k := newKey(t, "k1")
	h := &host{}
	h.publish(k)
	a, _ := newAuthenticator(t, h, syncedPods())
	for name, token := range map[string]string{
		"the tenant's own service-account token": sign(t, k, hostClaims(func(c *claims) { c.Issuer = "https://tenant.example" })),
		"a static token":                         "abc.def",
		"not a JWT":                              "a.b.c",
	} {
		resp, ok, err := a.AuthenticateToken(context.Background(), token)
		if ok || resp != nil || err != nil {
			t.Errorf("%s: ok=%v err=%v, want not mine (no error)", name, ok, err)
		}
	}
}

func TestNoHostTokenBeforeServe(t *testing.T) {
	t.Parallel()
	k := newKey(t, "k1")
	h := &host{}
	h.publish(k)
	a, keys := newAuthenticator(t, h, nil)
	if _, ok, _ := a.AuthenticateToken(context.Background(), sign(t, k, hostClaims())); ok {
		t.Error("accepted before Serve")
	}
	if keys.Fetches() != 0 {
		t.Errorf("%d key fetches before Serve, want none (host-minted tokens may be off)", keys.Fetches())
	}
}

func TestTheTenantsOwnTokensWithTheSameIssuerAreNotFetchedFor(t *testing.T) {
	t.Parallel()
	k := newKey(t, "k1")
	h := &host{}
	h.publish(k)
	a, keys := newAuthenticator(t, h, syncedPods())
	tenantKey := newKey(t, "tenant")
	// The tenant's issuer is the host's URL too (both default to it).
	tenantToken := sign(t, tenantKey, hostClaims(func(c *claims) { c.Audience = jwt.Audience{issuer} }))
	for range 3 {
		if resp, ok, err := a.AuthenticateToken(context.Background(), tenantToken); ok || resp != nil || err != nil {
			t.Fatalf("ok=%v err=%v, want not mine", ok, err)
		}
	}
	if keys.Fetches() != 0 {
		t.Errorf("%d key fetches for tenant tokens, want none", keys.Fetches())
	}
}

func TestHostKeyRotation(t *testing.T) {
	t.Parallel()
	old, rotated, made := newKey(t, "old"), newKey(t, "new"), newKey(t, "made-up")
	h := &host{}
	h.publish(old)
	a, keys := newAuthenticator(t, h, syncedPods())
	ctx := context.Background()
	if _, ok, err := a.AuthenticateToken(ctx, sign(t, old, hostClaims())); !ok {
		t.Fatalf("old key: %v", err)
	}
	// The host rotates: tokens signed with the new key name a key ID
	// knestd has not seen, which fetches the keys again.
	h.publish(rotated)
	keys.MinRefresh = time.Nanosecond
	if _, ok, err := a.AuthenticateToken(ctx, sign(t, rotated, hostClaims())); !ok {
		t.Fatalf("after the host's key rotation: %v", err)
	}
	fetches := keys.Fetches()
	// Unknown key IDs do not refetch again within MinRefresh.
	keys.MinRefresh = time.Hour
	for range 5 {
		if _, ok, _ := a.AuthenticateToken(ctx, sign(t, made, hostClaims())); ok {
			t.Fatal("a made-up key ID was accepted")
		}
	}
	if got := keys.Fetches(); got != fetches {
		t.Errorf("fetches after five unknown key IDs: %d, want %d (rate-limited)", got, fetches)
	}
	if _, ok, err := a.AuthenticateToken(ctx, sign(t, old, hostClaims())); !ok {
		t.Errorf("old key still published: %v", err)
	}
}
