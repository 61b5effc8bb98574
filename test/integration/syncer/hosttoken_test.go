package syncer

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/knest-dev/knest/charts"
	"github.com/knest-dev/knest/pkg/hosttoken"
	"github.com/knest-dev/knest/pkg/syncer/resources/pods"
	"github.com/knest-dev/knest/test/integration/framework"
)

// TestIntegrationHostMintedTokens follows a tenant pod's default API token
// on the host-minted path. The devcluster has no kubelet to mint the
// projected token, so the test asks the host's TokenRequest API for exactly
// what a kubelet asks for a projected serviceAccountToken source (the host
// pod's ServiceAccount, the projection's audience and lifetime, bound to the
// host pod by name and UID): the host API server signs the same claims
// either way. Everything after that (knestd fetching the host's keys from
// its issuer discovery, verifying, checking its host pod cache, mapping to
// the tenant identity) is the production path.
func TestIntegrationHostMintedTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := setUp(t)
	ctx := t.Context()
	const ns = "default"
	if _, err := e.tenant.CoreV1().Pods(ns).Create(ctx, simplePod("web"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var tenantPod *corev1.Pod
	within(t, 30*time.Second, "tenant pod Running", func(ctx context.Context) (bool, error) {
		p, err := e.tenantPod(ctx, ns, "web")
		tenantPod = p
		return err == nil && p.Status.Phase == corev1.PodRunning, nil
	})
	h, err := e.hostPod(ctx, ns, "web")
	if err != nil {
		t.Fatal(err)
	}

	var projection *corev1.ServiceAccountTokenProjection
	for _, v := range h.Spec.Volumes {
		for _, s := range ptr.Deref(v.Projected, corev1.ProjectedVolumeSource{}).Sources {
			if s.ServiceAccountToken != nil {
				projection = s.ServiceAccountToken
			}
		}
	}
	if projection == nil || !strings.HasPrefix(projection.Audience, hosttoken.AudiencePrefix) {
		t.Fatalf("host pod projects %+v, want a host token for the tenant's knest: audience", projection)
	}
	if _, err := e.host.CoreV1().Secrets(hostNamespace).Get(ctx, pods.TokenSecretName(h.Name), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a token Secret for the default token: %v, want none (one host write per pod)", err)
	}
	// What the host kubelet asks for the projection.
	mint := func(t *testing.T, serviceAccount, audience string, pod *corev1.Pod) string {
		t.Helper()
		tr, err := e.host.CoreV1().ServiceAccounts(hostNamespace).CreateToken(ctx, serviceAccount, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
			Audiences: []string{audience}, ExpirationSeconds: projection.ExpirationSeconds,
			BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	token := mint(t, pods.HostServiceAccount, projection.Audience, h)
	tenantAs := func(token string) kubernetes.Interface {
		cfg := rest.AnonymousClientConfig(framework.AdminConfig(t, e.kubeconfig()))
		cfg.BearerToken = token
		return framework.Client(t, cfg)
	}
	whoami := func(c kubernetes.Interface) (*authenticationv1.SelfSubjectReview, error) {
		return c.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	}
	refused := func(t *testing.T, what string, c kubernetes.Interface) {
		t.Helper()
		if r, err := whoami(c); !apierrors.IsUnauthorized(err) {
			t.Errorf("%s: authenticated as %+v (error %v), want 401", what, r, err)
		}
	}

	t.Run("the tenant API server maps the host pod's token to the tenant pod's ServiceAccount", func(t *testing.T) {
		r, err := whoami(tenantAs(token))
		if err != nil {
			t.Fatal(err)
		}
		u := r.Status.UserInfo
		if u.Username != "system:serviceaccount:default:default" ||
			strings.Join(u.Extra[hosttoken.ExtraPodUID], "") != string(tenantPod.UID) || strings.Join(u.Extra[hosttoken.ExtraPodName], "") != "web" {
			t.Errorf("identity %+v, want the tenant pod's ServiceAccount with the tenant pod's name and UID", u)
		}
		for k, v := range u.Extra {
			if strings.Contains(k, "node") || strings.Contains(strings.Join(v, ","), h.Spec.NodeName) {
				t.Errorf("the identity names the host node: %s=%v", k, v)
			}
		}
		// The tenant can read the token's claims; record what they say.
		t.Logf("host token claims the tenant pod can read: %s", claims(t, token))
	})

	t.Run("TokenReview in the tenant answers with the tenant identity, for the tenant API's audiences only", func(t *testing.T) {
		review, err := e.tenant.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !review.Status.Authenticated || review.Status.User.Username != "system:serviceaccount:default:default" {
			t.Errorf("TokenReview: %+v", review.Status)
		}
		review, err = e.tenant.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{"vault"}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if review.Status.Authenticated {
			t.Errorf("TokenReview for audience vault accepted knest's own token: %+v", review.Status)
		}
	})

	t.Run("the host API server refuses the token (audience)", func(t *testing.T) {
		cfg := rest.AnonymousClientConfig(framework.AdminConfig(t, e.dev.Layout.HostKubeconfig()))
		cfg.BearerToken = token
		refused(t, "host API server", framework.Client(t, cfg))
	})

	t.Run("a token of the same pod for another tenant's audience is refused", func(t *testing.T) {
		refused(t, "another audience", tenantAs(mint(t, pods.HostServiceAccount, hosttoken.Audience("another-tenant"), h)))
	})

	t.Run("the tenant cannot mint a knest token: the tenant API server's tokens for the knest audience are refused", func(t *testing.T) {
		// The tenant pod reads the audience in its own token; the tenant's
		// cluster-admin then asks its own API server for a token of that
		// audience, bound to the same tenant pod. The tenant API server
		// signs it (the issuer URL is the host's too), with its own key.
		tr, err := e.tenant.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "default", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
			Audiences:      []string{projection.Audience},
			BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: tenantPod.Name, UID: tenantPod.UID},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		refused(t, "tenant-minted, tenant API server", tenantAs(tr.Status.Token))
		cfg := rest.AnonymousClientConfig(framework.AdminConfig(t, e.dev.Layout.HostKubeconfig()))
		cfg.BearerToken = tr.Status.Token
		refused(t, "tenant-minted, host API server", framework.Client(t, cfg))
		// The host token still works: the refusals above are about the
		// signer, not a broken authenticator.
		if _, err := whoami(tenantAs(token)); err != nil {
			t.Errorf("the host-minted token after the tenant's attempt: %v", err)
		}
	})

	t.Run("the host serves issuer discovery to knestd's namespaced identity (no cluster-scoped grant)", func(t *testing.T) {
		c := framework.Client(t, framework.AdminConfig(t, e.identity))
		for _, path := range []string{"/.well-known/openid-configuration", "/openid/v1/jwks"} {
			if _, err := c.Discovery().RESTClient().Get().AbsPath(path).DoRaw(ctx); err != nil {
				t.Errorf("GET %s as knestd's host identity: %v", path, err)
			}
		}
	})

	t.Run("tokens of host pods knest did not make are refused", func(t *testing.T) {
		// A pod in the tenant's host namespace that the syncer did not make
		// (as knestd's own pod is), as knest's workload account and as
		// knestd's.
		foreignPod := func(name, serviceAccount string) *corev1.Pod {
			p := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: hostNamespace},
				Spec: corev1.PodSpec{ServiceAccountName: serviceAccount, AutomountServiceAccountToken: ptr.To(false),
					SecurityContext: simplePod("x").Spec.SecurityContext,
					Containers: []corev1.Container{{Name: "c", Image: "busybox", SecurityContext: &corev1.SecurityContext{
						AllowPrivilegeEscalation: ptr.To(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					}}}},
			}
			p, err := e.host.CoreV1().Pods(hostNamespace).Create(ctx, p, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = e.host.CoreV1().Pods(hostNamespace).Delete(context.Background(), p.Name, *metav1.NewDeleteOptions(0))
			})
			return p
		}
		refused(t, "workload account, foreign pod", tenantAs(mint(t, pods.HostServiceAccount, projection.Audience, foreignPod("not-knest", pods.HostServiceAccount))))
		refused(t, "knestd's account and pod", tenantAs(mint(t, charts.KnestdRoleName, projection.Audience, foreignPod("knestd-0", charts.KnestdRoleName))))
	})

	t.Run("a deleted pod's token stops working", func(t *testing.T) {
		if err := e.tenant.CoreV1().Pods(ns).Delete(ctx, "web", *metav1.NewDeleteOptions(0)); err != nil {
			t.Fatal(err)
		}
		within(t, 30*time.Second, "host pod gone", func(ctx context.Context) (bool, error) {
			_, err := e.hostPod(ctx, ns, "web")
			return apierrors.IsNotFound(err), nil
		})
		within(t, 10*time.Second, "token refused", func(ctx context.Context) (bool, error) {
			_, err := whoami(tenantAs(token))
			return apierrors.IsUnauthorized(err), nil
		})
	})

	t.Run("a token with an audience of the tenant's choosing still comes through a host Secret", func(t *testing.T) {
		p := simplePod("vault")
		p.Spec.Volumes = []corev1.Volume{{Name: "vault", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", Audience: "vault", ExpirationSeconds: ptr.To[int64](600)}},
		}}}}}
		p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "vault", MountPath: "/vault"}}
		if _, err := e.tenant.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var secret *corev1.Secret
		within(t, 30*time.Second, "token Secret on the host", func(ctx context.Context) (bool, error) {
			secret, err = e.host.CoreV1().Secrets(hostNamespace).Get(ctx, pods.TokenSecretName(hostName(ns, "vault")), metav1.GetOptions{})
			return err == nil, nil
		})
		review, err := e.tenant.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{
			Token: string(secret.Data[pods.TokenKey(0)]), Audiences: []string{"vault"},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !review.Status.Authenticated || review.Status.User.Username != "system:serviceaccount:default:default" {
			t.Errorf("TokenReview of the vault token: %+v (Secret keys %v)", review.Status, keys(secret.Data))
		}
		if len(secret.OwnerReferences) != 1 || secret.OwnerReferences[0].Name != hostName(ns, "vault") {
			t.Errorf("token Secret owners %+v, want the host pod", secret.OwnerReferences)
		}
		// Never in metadata or env of any host pod or Secret.
		vaultToken := string(secret.Data[pods.TokenKey(0)])
		list, err := e.host.CoreV1().Pods(hostNamespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		secrets, err := e.host.CoreV1().Secrets(hostNamespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var metas []metav1.ObjectMeta
		for _, p := range list.Items {
			metas = append(metas, p.ObjectMeta)
			for _, c := range p.Spec.Containers {
				for _, v := range c.Env {
					if strings.Contains(v.Value, vaultToken) {
						t.Errorf("host pod %s has the token in env %s", p.Name, v.Name)
					}
				}
			}
		}
		for _, s := range secrets.Items {
			metas = append(metas, s.ObjectMeta)
		}
		for _, m := range metas {
			for k, v := range m.Annotations {
				if strings.Contains(v, vaultToken) {
					t.Errorf("host object %s has the token in annotation %s", m.Name, k)
				}
			}
		}
	})
}

// claims decodes a JWT's payload.
func claims(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(v["kubernetes.io"])
	return string(out)
}
