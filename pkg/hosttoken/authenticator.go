package hosttoken

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"gopkg.in/go-jose/go-jose.v2/jwt"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/knest-dev/knest/pkg/translate"
)

// Extra keys of the identity, as the upstream service-account authenticator
// sets them for pod-bound tokens. Node keys are never set: the host node is
// not the tenant's business.
const (
	ExtraPodName      = "authentication.kubernetes.io/pod-name"
	ExtraPodUID       = "authentication.kubernetes.io/pod-uid"
	ExtraCredentialID = "authentication.kubernetes.io/credential-id"
)

// AudiencePrefix starts every audience of a host-minted tenant token.
const AudiencePrefix = "knest:"

// nbfLeeway tolerates a host clock slightly ahead of knestd's for a token
// minted a moment ago; expiry gets none.
const nbfLeeway = time.Minute

// Pods looks up the pods a token may be bound to, from knestd's caches.
type Pods interface {
	// HostPod is the pod of that name in the tenant's host namespace.
	HostPod(ctx context.Context, name string) (*corev1.Pod, error)
	// TenantPod is a tenant pod.
	TenantPod(ctx context.Context, namespace, name string) (*corev1.Pod, error)
	// TenantServiceAccount is a tenant ServiceAccount.
	TenantServiceAccount(ctx context.Context, namespace, name string) (*corev1.ServiceAccount, error)
}

// Config is what a tenant's host tokens must name.
type Config struct {
	// Keys are the host issuer's keys.
	Keys *KeySet
	// Tenant is the tenant's name (the marker label's value).
	Tenant string
	// HostNamespace is the tenant's host namespace.
	HostNamespace string
	// ServiceAccount is knest's host workload ServiceAccount.
	ServiceAccount string
}

// Authenticator is an authenticator.Token for host-minted tenant tokens. It
// accepts none until Serve gives it the tenant's audience and pod caches
// (the syncer's, which start after the API server).
type Authenticator struct {
	c     Config
	ready atomic.Pointer[serving]
	now   func() time.Time
}

type serving struct {
	audience string
	pods     Pods
}

// New returns an Authenticator that accepts nothing until Serve.
func New(c Config) *Authenticator {
	return &Authenticator{c: c, now: time.Now}
}

// Issuer is the host's service-account issuer, fetched from its discovery
// endpoint: an error says the host publishes none knestd can read.
func (a *Authenticator) Issuer(ctx context.Context) (string, error) {
	return a.c.Keys.Issuer(ctx)
}

// Serve starts accepting tokens for audience, bound to pods found in pods.
func (a *Authenticator) Serve(audience string, pods Pods) {
	a.ready.Store(&serving{audience: audience, pods: pods})
}

// Audience is this tenant's audience for host tokens: AudiencePrefix and
// an ID unique to the tenant.
func Audience(tenantID string) string {
	return AudiencePrefix + tenantID
}

type privateClaims struct {
	Kubernetes struct {
		Namespace      string `json:"namespace"`
		ServiceAccount *ref   `json:"serviceaccount"`
		Pod            *ref   `json:"pod"`
	} `json:"kubernetes.io"`
}

type ref struct {
	Name string `json:"name"`
	UID  string `json:"uid"`
}

// AuthenticateToken answers "not mine" (nil, false, nil) for anything that
// is not a JWT of the host's issuer for a knest audience, so the tenant's own
// authenticators see it (a tenant's issuer may well be the same URL as the
// host's: both default to https://kubernetes.default.svc.<domain>); a host
// token for a knest audience that fails a check is refused with the reason.
func (a *Authenticator) AuthenticateToken(ctx context.Context, token string) (*authenticator.Response, bool, error) {
	s := a.ready.Load()
	if s == nil || strings.Count(token, ".") != 2 {
		return nil, false, nil
	}
	tok, err := jwt.ParseSigned(token)
	if err != nil || len(tok.Headers) != 1 {
		return nil, false, nil
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, false, nil
	}
	if !slices.ContainsFunc([]string(unverified.Audience), func(a string) bool { return strings.HasPrefix(a, AudiencePrefix) }) {
		return nil, false, nil
	}
	issuer, err := a.c.Keys.Issuer(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("host-minted token refused: %w", err)
	}
	if unverified.Issuer != issuer {
		return nil, false, nil
	}
	resp, err := a.authenticate(ctx, s, tok)
	if err != nil {
		return nil, false, fmt.Errorf("host-minted token refused: %w", err)
	}
	return resp, true, nil
}

func (a *Authenticator) authenticate(ctx context.Context, s *serving, tok *jwt.JSONWebToken) (*authenticator.Response, error) {
	key, err := a.c.Keys.key(ctx, tok.Headers[0].KeyID)
	if err != nil {
		return nil, err
	}
	var public jwt.Claims
	var private privateClaims
	if err := tok.Claims(key.Public().Key, &public, &private); err != nil {
		return nil, fmt.Errorf("bad signature: %w", err)
	}
	now := a.now()
	if public.Expiry == nil || !now.Before(public.Expiry.Time()) {
		return nil, errors.New("expired")
	}
	if public.NotBefore != nil && now.Add(nbfLeeway).Before(public.NotBefore.Time()) {
		return nil, errors.New("not valid yet")
	}
	if !slices.Contains([]string(public.Audience), s.audience) {
		return nil, fmt.Errorf("not for this tenant (audience %v)", []string(public.Audience))
	}
	k := private.Kubernetes
	if k.Namespace != a.c.HostNamespace {
		return nil, fmt.Errorf("host namespace %q is not this tenant's", k.Namespace)
	}
	if k.ServiceAccount == nil || k.ServiceAccount.Name != a.c.ServiceAccount ||
		public.Subject != serviceaccount.MakeUsername(a.c.HostNamespace, a.c.ServiceAccount) {
		return nil, fmt.Errorf("subject %q is not knest's workload ServiceAccount", public.Subject)
	}
	if k.Pod == nil || k.Pod.Name == "" || k.Pod.UID == "" {
		return nil, errors.New("not bound to a pod")
	}
	host, err := s.pods.HostPod(ctx, k.Pod.Name)
	if kerrors.IsNotFound(err) {
		return nil, fmt.Errorf("host pod %s is gone", k.Pod.Name)
	} else if err != nil {
		return nil, fmt.Errorf("failed to get Pod %s/%s in host cluster: %w", a.c.HostNamespace, k.Pod.Name, err)
	}
	if string(host.UID) != k.Pod.UID {
		return nil, fmt.Errorf("host pod %s was replaced (UID %s, token bound to %s)", k.Pod.Name, host.UID, k.Pod.UID)
	}
	if host.Spec.ServiceAccountName != a.c.ServiceAccount {
		return nil, fmt.Errorf("host pod %s does not run as knest's workload ServiceAccount", k.Pod.Name)
	}
	id, ok := translate.IdentityOf(a.c.Tenant, host)
	if !ok || id.Kind != "Pod" || id.Namespace == "" || id.UID == "" {
		return nil, fmt.Errorf("host pod %s is not a pod of this tenant", k.Pod.Name)
	}
	tenantPod, err := s.pods.TenantPod(ctx, id.Namespace, id.Name)
	if kerrors.IsNotFound(err) {
		return nil, fmt.Errorf("tenant pod %s/%s is gone", id.Namespace, id.Name)
	} else if err != nil {
		return nil, fmt.Errorf("failed to get Pod %s/%s in tenant cluster: %w", id.Namespace, id.Name, err)
	}
	if tenantPod.UID != id.UID {
		return nil, fmt.Errorf("tenant pod %s/%s was replaced", id.Namespace, id.Name)
	}
	saName := tenantPod.Spec.ServiceAccountName
	sa, err := s.pods.TenantServiceAccount(ctx, id.Namespace, saName)
	if kerrors.IsNotFound(err) {
		return nil, fmt.Errorf("tenant ServiceAccount %s/%s is gone", id.Namespace, saName)
	} else if err != nil {
		return nil, fmt.Errorf("failed to get ServiceAccount %s/%s in tenant cluster: %w", id.Namespace, saName, err)
	}
	extra := map[string][]string{
		ExtraPodName: {tenantPod.Name},
		ExtraPodUID:  {string(tenantPod.UID)},
	}
	if public.ID != "" {
		extra[ExtraCredentialID] = []string{"JTI=" + public.ID}
	}
	return &authenticator.Response{User: &user.DefaultInfo{
		Name:   serviceaccount.MakeUsername(id.Namespace, saName),
		UID:    string(sa.UID),
		Groups: serviceaccount.MakeGroupNames(id.Namespace),
		Extra:  extra,
	}}, nil
}
