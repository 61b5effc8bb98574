package knestd

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/knest-dev/knest/pkg/pki"
	"github.com/knest-dev/knest/test/integration/framework"
)

// TestIntegrationReservedIdentities attacks knestd's exemption from tenant
// admission as a tenant cluster-admin would: by impersonating knestd's
// user, by binding roles to it, and by getting a certificate for it from
// the tenant's own signer (the cluster CA). Each attack must fail with a
// reason, while what a tenant does legitimately with the same means
// (impersonating its own users, certificates for its own names) works.
func TestIntegrationReservedIdentities(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	dir := t.TempDir()
	k := framework.Start(t, dir, "--name=identity", "--secure-port=0")
	k.WaitReady(t, readyTimeout)
	cfg := framework.AdminConfig(t, k.AdminKubeconfig())
	admin := framework.Client(t, cfg)
	files := pki.FilesIn(filepath.Join(dir, "pki"))
	ctx := t.Context()
	ns := createNamespace(t, admin, "attack")

	// The tenant binds cluster-admin to knestd's user and to a user of its
	// own, as it is free to: the binding must not make knestd's name usable.
	for _, name := range []string{pki.InternalUser, pki.APIServerUser, "bob"} {
		if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "tenant-binds-"},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"},
			Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: name}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	as := func(user string, groups ...string) kubernetes.Interface {
		c := rest.CopyConfig(cfg)
		c.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
		return framework.Client(t, c)
	}
	// The pod every attack wants: the host's root filesystem and network.
	// Not privileged: the API server's own validation refuses that
	// (--allow-privileged is off) whoever asks, while this pod only
	// confinement refuses, and confinement exempts knestd's identity.
	hostPod := func() *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "root-on-the-host-"},
			Spec: corev1.PodSpec{
				HostNetwork: true,
				Containers: []corev1.Container{{
					Name: "c", Image: "busybox",
					VolumeMounts: []corev1.VolumeMount{{Name: "host", MountPath: "/host"}},
				}},
				Volumes: []corev1.Volume{{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}},
			},
		}
	}

	t.Run("the tenant admin itself cannot create a pod on the host's root and network", func(t *testing.T) {
		// What the attacks below try to get around.
		_, err := admin.CoreV1().Pods(ns).Create(ctx, hostPod(), metav1.CreateOptions{})
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "refused by the hard profile") {
			t.Fatalf("host pod as the tenant admin: err = %v, want refused by confinement", err)
		}
	})

	t.Run("impersonating a user of the tenant's own works", func(t *testing.T) {
		// So the refusals below are about the name, not impersonation.
		review, err := as("bob").AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil || review.Status.UserInfo.Username != "bob" {
			t.Fatalf("impersonating bob: review %+v, err %v", review, err)
		}
	})

	impersonations := []struct {
		name   string
		client kubernetes.Interface
		want   string
	}{
		{name: "impersonating knestd's user, bound to cluster-admin by the tenant, to create a host pod is refused",
			client: as(pki.InternalUser), want: `impersonating user "system:knest:knestd" is not allowed`},
		{name: "impersonating knestd's user together with system:masters is refused",
			client: as(pki.InternalUser, "system:masters"), want: `impersonating user "system:knest:knestd" is not allowed`},
		{name: "impersonating another user under the reserved prefix is refused",
			client: as("system:knest:syncer"), want: `impersonating user "system:knest:syncer" is not allowed`},
		{name: "impersonating the API server's loopback user is refused",
			client: as("system:apiserver"), want: `impersonating user "system:apiserver" is not allowed`},
		{name: "impersonating a reserved group is refused",
			client: as("bob", "system:knest:anything"), want: `impersonating group "system:knest:anything" is not allowed`},
		{name: "impersonating a reserved group among many is refused",
			client: as("bob", "g1", "g2", "g3", "system:knest:anything"), want: `impersonating group "system:knest:anything" is not allowed`},
	}
	for _, tc := range impersonations {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.client.CoreV1().Pods(ns).Create(ctx, hostPod(), metav1.CreateOptions{})
			if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want 403 with %q", err, tc.want)
			}
			t.Logf("refused: %v", err)
		})
	}

	t.Run("authorization reviews say the same as requests", func(t *testing.T) {
		// SubjectAccessReviews are answered by the kube-apiserver's copy of
		// the authorizer, requests by the aggregator's, the front of the
		// chain: both must be guarded.
		sar, err := admin.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{
				User: "knest-admin", Groups: []string{"system:masters", "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "impersonate", Resource: "users", Name: pki.InternalUser},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if sar.Status.Allowed || !sar.Status.Denied || !strings.Contains(sar.Status.Reason, "reserved for knestd") {
			t.Errorf("review of impersonating knestd as system:masters: %+v, want denied as reserved", sar.Status)
		}
	})

	t.Run("a CertificateSigningRequest for knestd's name is refused at the tenant API", func(t *testing.T) {
		for _, subject := range []pkix.Name{
			{CommonName: pki.InternalUser, Organization: []string{"system:masters"}},
			{CommonName: "system:apiserver"},
			{CommonName: "mallory", Organization: []string{"system:knest:anything"}},
		} {
			request, _ := newCSR(t, subject)
			_, err := admin.CertificatesV1().CertificateSigningRequests().Create(ctx, clientCSR(request), metav1.CreateOptions{})
			if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "reserved for knestd") {
				t.Errorf("CSR for %v: err = %v, want refused as reserved", subject, err)
				continue
			}
			t.Logf("refused: %v", err)
		}
	})

	t.Run("a certificate the tenant's signer issues for its own name authenticates", func(t *testing.T) {
		// The conformance suite's CSR spec does this; the cluster CA stays
		// a client CA.
		request, key := newCSR(t, pkix.Name{CommonName: "alice", Organization: []string{"tenant-devs"}})
		csr, err := admin.CertificatesV1().CertificateSigningRequests().Create(ctx, clientCSR(request), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "Test", Message: "approved by the tenant",
		})
		if _, err := admin.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		var certPEM []byte
		err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			got, err := admin.CertificatesV1().CertificateSigningRequests().Get(ctx, csr.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			certPEM = got.Status.Certificate
			return len(certPEM) > 0, nil
		})
		if err != nil {
			t.Fatalf("the CSR was not signed: %v", err)
		}
		assertUser(t, certClient(t, cfg, certPEM, key), "alice")
	})

	t.Run("a certificate of the cluster CA for a reserved name does not authenticate", func(t *testing.T) {
		// As if the tenant's signer had been tricked: signed here with the
		// cluster CA's key from the data dir.
		for _, subject := range []pkix.Name{
			{CommonName: pki.InternalUser, Organization: []string{"system:masters"}},
			{CommonName: "system:apiserver", Organization: []string{"system:masters"}},
			{CommonName: "mallory", Organization: []string{"system:masters", "system:knest:anything"}},
		} {
			certPEM, key := issue(t, files.CACert, files.CAKey, subject)
			c := certClient(t, cfg, certPEM, key)
			_, err := c.CoreV1().Pods(ns).Create(ctx, hostPod(), metav1.CreateOptions{})
			if !apierrors.IsUnauthorized(err) {
				t.Errorf("host pod with a cluster-CA certificate for %v: err = %v, want 401", subject, err)
				continue
			}
			t.Logf("%s: %v", subject.CommonName, err)
		}
		// The same CA and an ordinary name: the refusal is about the name.
		certPEM, key := issue(t, files.CACert, files.CAKey, pkix.Name{CommonName: "carol", Organization: []string{"system:masters"}})
		assertUser(t, certClient(t, cfg, certPEM, key), "carol")
	})

	t.Run("knestd's own certificate still authenticates as knestd", func(t *testing.T) {
		assertUser(t, fileClient(t, cfg, files.InternalCert, files.InternalKey), pki.InternalUser)
	})
}

// TestIntegrationReservedIdentitiesDataDirUpgrade restarts knestd on a data
// dir whose PKI looks like an earlier version's (no internal CA, knestd's
// own leaves signed by the cluster CA): knestd must move its identities to
// the internal CA, and the tenant's kubeconfig and tokens must keep working.
func TestIntegrationReservedIdentitiesDataDirUpgrade(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	dir := t.TempDir()
	// The same port after the restart: the old kubeconfig names it.
	args := []string{"--name=upgrade", fmt.Sprintf("--secure-port=%d", framework.FreePort(t))}
	k := framework.Start(t, dir, args...)
	k.WaitReady(t, readyTimeout)
	oldKubeconfig := filepath.Join(t.TempDir(), "old-admin.kubeconfig")
	copyFile(t, k.AdminKubeconfig(), oldKubeconfig)
	admin := framework.Client(t, framework.AdminConfig(t, oldKubeconfig))
	ctx := t.Context()
	ns := createNamespace(t, admin, "kept")
	tr := robotToken(t, admin, ns, 3600)
	k.Stop(t, 10*time.Second)

	// Make the PKI an earlier version's.
	files := pki.FilesIn(filepath.Join(dir, "pki"))
	leaves := []string{files.InternalCert, files.ControllerManagerCert, files.KubeletClientCert}
	keys := []string{files.InternalKey, files.ControllerManagerKey, files.KubeletClientKey}
	for i := range leaves {
		resign(t, leaves[i], keys[i], files.CACert, files.CAKey)
	}
	for _, f := range []string{files.InternalCACert, files.InternalCAKey, files.ClientCABundle} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	oldInternal := filepath.Join(t.TempDir(), "old-internal.crt")
	copyFile(t, files.InternalCert, oldInternal)
	kept := []string{files.CACert, files.CAKey, files.AdminCert, files.AdminKey, files.ServiceAccountKey, files.ServingCert}
	kept = append(kept, keys...)
	before := map[string]string{}
	for _, f := range kept {
		before[f] = readFile(t, f)
	}

	k2 := framework.Start(t, dir, args...)
	k2.WaitReady(t, readyTimeout)

	t.Run("knestd's leaves are re-issued under a new internal CA with their keys", func(t *testing.T) {
		internalCA, err := pki.ReadCert(files.InternalCACert)
		if err != nil {
			t.Fatal(err)
		}
		for _, leaf := range leaves {
			cert, err := pki.ReadCert(leaf)
			if err != nil {
				t.Fatal(err)
			}
			if err := cert.CheckSignatureFrom(internalCA); err != nil {
				t.Errorf("%s is not signed by the internal CA: %v", filepath.Base(leaf), err)
			}
		}
		for _, f := range kept {
			if readFile(t, f) != before[f] {
				t.Errorf("%s changed; the tenant's CA, admin certificate, service-account key and every key must stay", filepath.Base(f))
			}
		}
	})

	t.Run("the admin kubeconfig from before the upgrade works", func(t *testing.T) {
		if _, err := admin.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
			t.Fatalf("old admin kubeconfig: %v", err)
		}
	})

	t.Run("a token issued before the upgrade works", func(t *testing.T) {
		cfg := framework.AdminConfig(t, oldKubeconfig)
		robot := framework.Client(t, &rest.Config{Host: cfg.Host, TLSClientConfig: rest.TLSClientConfig{CAData: caData(t, cfg)}, BearerToken: tr.Status.Token})
		assertUser(t, robot, "system:serviceaccount:"+ns+":robot")
	})

	t.Run("knestd's certificate of the earlier version no longer authenticates", func(t *testing.T) {
		// It was signed by the cluster CA, the tenant's signer.
		c := fileClient(t, framework.AdminConfig(t, oldKubeconfig), oldInternal, files.InternalKey)
		if _, err := c.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); !apierrors.IsUnauthorized(err) {
			t.Fatalf("old internal certificate: err = %v, want 401", err)
		}
	})

	t.Run("the controllers run with the re-issued certificate", func(t *testing.T) {
		// A namespace made now gets its ServiceAccount from the
		// controller-manager, whose certificate was re-issued.
		createNamespace(t, admin, "after")
	})
}

// newCSR returns a PEM certificate request for subject and its key.
func newCSR(t *testing.T, subject pkix.Name) (request []byte, key *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), key
}

func clientCSR(request []byte) *certificatesv1.CertificateSigningRequest {
	return &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "csr-"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request: request, SignerName: certificatesv1.KubeAPIServerClientSignerName,
			Usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
		},
	}
}

// issue signs a client certificate for subject with the CA in caCert and
// caKey, and returns it with its key as a TLS pair.
func issue(t *testing.T, caCert, caKey string, subject pkix.Name) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	pair, err := pki.Issue(caCert, caKey, pki.Leaf{Subject: subject}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		t.Fatalf("unexpected key type %T", pair.PrivateKey)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pair.Certificate[0]}), key
}

// certClient is a client of cfg's server with a client certificate and key.
func certClient(t *testing.T, cfg *rest.Config, certPEM []byte, key *ecdsa.PrivateKey) kubernetes.Interface {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	return framework.Client(t, &rest.Config{Host: cfg.Host, TLSClientConfig: rest.TLSClientConfig{CAData: caData(t, cfg), CertData: certPEM, KeyData: keyPEM}})
}

// fileClient is a client of cfg's server with a client certificate and key
// from files.
func fileClient(t *testing.T, cfg *rest.Config, certFile, keyFile string) kubernetes.Interface {
	t.Helper()
	return framework.Client(t, &rest.Config{Host: cfg.Host, TLSClientConfig: rest.TLSClientConfig{CAData: caData(t, cfg), CertFile: certFile, KeyFile: keyFile}})
}

func assertUser(t *testing.T, c kubernetes.Interface, want string) {
	t.Helper()
	review, err := c.AuthenticationV1().SelfSubjectReviews().Create(t.Context(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("authenticating as %s: %v", want, err)
	}
	if got := review.Status.UserInfo.Username; got != want {
		t.Fatalf("authenticated as %q, want %q", got, want)
	}
}

// resign replaces the certificate in certFile with one for the same subject
// and key signed by the CA in caCert and caKey, as an earlier version of
// knestd signed its own leaves.
func resign(t *testing.T, certFile, keyFile, caCert, caKey string) {
	t.Helper()
	// Loading the pair proves the key file is the certificate's.
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.ReadCert(certFile)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := tls.LoadX509KeyPair(caCert, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caLeaf, err := x509.ParseCertificate(ca.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: leaf.Subject,
		NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter, BasicConstraintsValid: true,
		KeyUsage: leaf.KeyUsage, ExtKeyUsage: leaf.ExtKeyUsage,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caLeaf, leaf.PublicKey, ca.PrivateKey)
	if err != nil {
		t.Fatal(fmt.Errorf("re-signing %s: %w", certFile, err))
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
