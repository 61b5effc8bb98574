package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/knest-dev/knest/internal/atomicfile"
)

const (
	// CAValidity is how long generated CAs are valid.
	CAValidity = 10 * 365 * 24 * time.Hour
	// LeafValidity is how long generated leaf certificates are valid.
	LeafValidity = 365 * 24 * time.Hour
	// RenewBefore is how close to expiry a leaf certificate is re-issued.
	RenewBefore = 30 * 24 * time.Hour
)

// Config says which certificates a control plane needs.
type Config struct {
	// Dir holds the files; it is created with mode 0700.
	Dir string
	// ClusterName goes into the CA subjects, so CAs of different tenants are
	// told apart in tools.
	ClusterName string
	// ServiceIP is the first IP of the service CIDR: the "kubernetes" Service.
	ServiceIP net.IP
	// ClusterDomain is the DNS suffix of in-cluster names (cluster.local).
	ClusterDomain string
	// ExtraSANs are more DNS names for the serving certificate (the host
	// Service's DNS names, say).
	ExtraSANs []string
	// ExtraIPs are more IP addresses for the serving certificate (the host
	// Service's ClusterIP, say).
	ExtraIPs []net.IP
	// LeafValidity is how long leaf certificates issued now are valid; 0
	// means the package's LeafValidity. Short values are for tests that
	// watch a running control plane renew its certificates.
	LeafValidity time.Duration
	// RotateLeaves re-issues every leaf certificate, current or not, with
	// its existing key (knest certs rotate).
	RotateLeaves bool
}

// Validity returns how long new leaf certificates are valid and how close
// to expiry one is renewed: RenewBefore, or a third of a short validity.
func (c Config) Validity() (validity, renewBefore time.Duration) {
	validity = c.LeafValidity
	if validity <= 0 {
		validity = LeafValidity
	}
	return validity, min(RenewBefore, validity/3)
}

// Files are the paths of everything Ensure keeps.
type Files struct {
	// CACert and CAKey are the cluster CA that signs now. CABundle holds the
	// cluster CAs clients trust: CACert, and during a CA rotation's
	// transition the previous CA (PreviousCACert) too. CARotationState is
	// the rotation's state (CARotation).
	CACert, CAKey                 string
	CABundle                      string
	PreviousCACert, PreviousCAKey string
	CARotationState               string
	// InternalCACert signs knestd's own clients, the controller-manager's
	// and the kubelet pair; no tenant signer uses it. ClientCABundle holds
	// both CAs: the API server's client CAs.
	InternalCACert, InternalCAKey               string
	ClientCABundle                              string
	ServingCert, ServingKey                     string
	FrontProxyCACert, FrontProxyCAKey           string
	FrontProxyClientCert, FrontProxyClientKey   string
	AdminCert, AdminKey                         string
	InternalCert, InternalKey                   string
	ControllerManagerCert, ControllerManagerKey string
	KubeletClientCert, KubeletClientKey         string
	ServiceAccountKey, ServiceAccountPub        string
}

// FilesIn returns where the files of a PKI directory live.
func FilesIn(dir string) Files {
	p := func(name string) string { return filepath.Join(dir, name) }
	return Files{
		CACert: p("ca.crt"), CAKey: p("ca.key"), CABundle: p("ca-bundle.crt"),
		PreviousCACert: p("ca-previous.crt"), PreviousCAKey: p("ca-previous.key"), CARotationState: p("ca-rotation.json"),
		InternalCACert: p("internal-ca.crt"), InternalCAKey: p("internal-ca.key"), ClientCABundle: p("client-ca.crt"),
		ServingCert: p("apiserver.crt"), ServingKey: p("apiserver.key"),
		FrontProxyCACert: p("front-proxy-ca.crt"), FrontProxyCAKey: p("front-proxy-ca.key"),
		FrontProxyClientCert: p("front-proxy-client.crt"), FrontProxyClientKey: p("front-proxy-client.key"),
		AdminCert: p("admin.crt"), AdminKey: p("admin.key"),
		InternalCert: p("internal.crt"), InternalKey: p("internal.key"),
		ControllerManagerCert: p("controller-manager.crt"), ControllerManagerKey: p("controller-manager.key"),
		KubeletClientCert: p("apiserver-kubelet-client.crt"), KubeletClientKey: p("apiserver-kubelet-client.key"),
		ServiceAccountKey: p("sa.key"), ServiceAccountPub: p("sa.pub"),
	}
}

// Validate reports configuration errors.
func (c Config) Validate() error {
	if c.Dir == "" {
		return errors.New("pki: directory is required")
	}
	if c.ServiceIP == nil {
		return errors.New("pki: service IP is required")
	}
	if c.ClusterName == "" {
		return errors.New("pki: cluster name is required")
	}
	return nil
}

// ServingDNSNames returns the DNS names the serving certificate must carry.
func (c Config) ServingDNSNames() []string {
	domain := c.ClusterDomain
	if domain == "" {
		domain = "cluster.local"
	}
	names := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + domain}
	names = append(names, c.ExtraSANs...)
	slices.Sort(names)
	return slices.Compact(names)
}

// ServingIPs returns the IP addresses the serving certificate must carry.
func (c Config) ServingIPs() []net.IP {
	ips := []net.IP{net.ParseIP("127.0.0.1"), c.ServiceIP}
	ips = append(ips, c.ExtraIPs...)
	return normalizeIPs(ips)
}

func normalizeIPs(ips []net.IP) []net.IP {
	out := make([]net.IP, 0, len(ips))
	for _, ip := range ips {
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		out = append(out, ip)
	}
	slices.SortFunc(out, func(a, b net.IP) int { return bytes.Compare(a, b) })
	return slices.CompactFunc(out, func(a, b net.IP) bool { return a.Equal(b) })
}

// Ensure makes sure every file exists and is current, creating or re-issuing
// what is missing or stale, and returns the paths.
func Ensure(c Config, now time.Time) (Files, error) {
	if err := c.Validate(); err != nil {
		return Files{}, err
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return Files{}, fmt.Errorf("failed to create PKI directory: %w", err)
	}
	f := FilesIn(c.Dir)

	rotation, err := ReadCARotation(c.Dir)
	if err != nil {
		return Files{}, err
	}
	previousCA, err := applyCARotation(f, rotation)
	if err != nil {
		return Files{}, err
	}
	ca, err := ensureCA(f.CACert, f.CAKey, c.ClusterName+"-ca", now)
	if err != nil {
		return Files{}, err
	}
	// During a CA rotation's transition the serving certificate stays
	// under the previous CA: clients that trust only it (kubeconfigs and
	// pods from before the rotation) keep verifying the server, and the
	// new ones trust both.
	servingCA := ca
	if previousCA != nil {
		servingCA = previousCA
	}
	// The cluster CA also signs what the tenant's CSR signer issues, so
	// knestd's own clients and the kubelet pair get a CA of their own: no
	// tenant-approved CSR can then pass for them.
	internalCA, err := ensureCA(f.InternalCACert, f.InternalCAKey, c.ClusterName+"-internal-ca", now)
	if err != nil {
		return Files{}, err
	}
	fpCA, err := ensureCA(f.FrontProxyCACert, f.FrontProxyCAKey, c.ClusterName+"-front-proxy-ca", now)
	if err != nil {
		return Files{}, err
	}
	leaves := []struct {
		cert, key string
		ca        *authority
		spec      leafSpec
	}{
		{f.ServingCert, f.ServingKey, servingCA, leafSpec{
			Subject: pkix.Name{CommonName: "kube-apiserver"}, Server: true,
			DNSNames: c.ServingDNSNames(), IPs: c.ServingIPs(),
		}},
		{f.FrontProxyClientCert, f.FrontProxyClientKey, fpCA, leafSpec{Subject: pkix.Name{CommonName: "front-proxy-client"}}},
		{f.AdminCert, f.AdminKey, ca, leafSpec{Subject: pkix.Name{CommonName: "knest-admin", Organization: []string{"system:masters"}}}},
		// knestd's own clients (syncer, readiness probe, DNS): a user apart
		// from the admin a tenant gets, so that tenant-facing admission can
		// tell knestd's writes from the tenant's. Leaves that a data dir of
		// an earlier version has under the cluster CA are re-issued under
		// the internal CA, since leafCurrent wants the given issuer.
		{f.InternalCert, f.InternalKey, internalCA, leafSpec{Subject: pkix.Name{CommonName: InternalUser, Organization: []string{"system:masters"}}}},
		{f.ControllerManagerCert, f.ControllerManagerKey, internalCA, leafSpec{Subject: pkix.Name{CommonName: "system:kube-controller-manager"}}},
		{f.KubeletClientCert, f.KubeletClientKey, internalCA, leafSpec{Subject: pkix.Name{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"kubeadm:cluster-admins"}}}},
	}
	validity, renewBefore := c.Validity()
	for _, l := range leaves {
		l.spec.validity, l.spec.renewBefore, l.spec.force = validity, renewBefore, c.RotateLeaves
		if err := ensureLeaf(l.cert, l.key, l.ca, l.spec, now); err != nil {
			return Files{}, err
		}
	}
	// The API server accepts client certificates of both CAs: the tenant's
	// admin and whatever the tenant's CSR signer issues come from the
	// cluster CA.
	trusted := encodeCert(ca.cert)
	if previousCA != nil {
		trusted = slices.Concat(trusted, encodeCert(previousCA.cert))
	}
	if err := writeIfChanged(f.CABundle, trusted, 0o644); err != nil {
		return Files{}, err
	}
	bundle := slices.Concat(trusted, encodeCert(internalCA.cert))
	if err := writeIfChanged(f.ClientCABundle, bundle, 0o644); err != nil {
		return Files{}, err
	}
	if err := ensureServiceAccountKey(f.ServiceAccountKey, f.ServiceAccountPub); err != nil {
		return Files{}, err
	}
	return f, nil
}

func encodeCert(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
}

// writeIfChanged leaves a file that already holds data alone, so a restart
// changes nothing on disk.
func writeIfChanged(path string, data []byte, mode os.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	return atomicfile.Write(path, data, mode)
}

type authority struct {
	cert *x509.Certificate
	key  crypto.Signer
}

type leafSpec struct {
	Subject  pkix.Name
	Server   bool
	DNSNames []string
	IPs      []net.IP

	validity, renewBefore time.Duration
	// force re-issues a current certificate.
	force bool
}

func ensureCA(certPath, keyPath, cn string, now time.Time) (*authority, error) {
	cert, key, err := loadPair(certPath, keyPath)
	if err != nil {
		return nil, err
	}
	if cert != nil {
		if !cert.IsCA {
			return nil, fmt.Errorf("%s is not a CA certificate", certPath)
		}
		if now.After(cert.NotAfter) {
			return nil, fmt.Errorf("CA certificate %s expired on %s: rotate it by hand", certPath, cert.NotAfter.Format(time.RFC3339))
		}
		return &authority{cert: cert, key: key}, nil
	}
	der, key, err := createCA(cn, now)
	if err != nil {
		return nil, err
	}
	cert, err = x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if err := writePair(certPath, keyPath, der, key); err != nil {
		return nil, err
	}
	return &authority{cert: cert, key: key}, nil
}

// createCA makes a self-signed CA certificate (DER) and its key.
func createCA(cn string, now time.Time) ([]byte, *ecdsa.PrivateKey, error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to create CA %s: %w", cn, err)
	}
	return der, key, nil
}

func ensureLeaf(certPath, keyPath string, ca *authority, spec leafSpec, now time.Time) error {
	cert, key, err := loadPair(certPath, keyPath)
	if err != nil {
		return err
	}
	if cert != nil && !spec.force && leafCurrent(cert, ca, spec, now) {
		return nil
	}
	if key == nil {
		if key, err = newKey(); err != nil {
			return err
		}
	}
	usage := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if spec.Server {
		usage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	validity := spec.validity
	if validity <= 0 {
		validity = LeafValidity
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               spec.Subject,
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           usage,
		BasicConstraintsValid: true,
		DNSNames:              spec.DNSNames,
		IPAddresses:           spec.IPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return fmt.Errorf("failed to issue certificate %s: %w", certPath, err)
	}
	return writePair(certPath, keyPath, der, key)
}

// leafCurrent says whether an existing certificate can be kept: signed by the
// CA, not close to expiry, and with exactly the wanted subject and SANs.
func leafCurrent(cert *x509.Certificate, ca *authority, spec leafSpec, now time.Time) bool {
	if cert.CheckSignatureFrom(ca.cert) != nil {
		return false
	}
	renewBefore := spec.renewBefore
	if renewBefore <= 0 {
		renewBefore = RenewBefore
	}
	if now.Add(renewBefore).After(cert.NotAfter) || now.Before(cert.NotBefore) {
		return false
	}
	if cert.Subject.CommonName != spec.Subject.CommonName || !slices.Equal(cert.Subject.Organization, spec.Subject.Organization) {
		return false
	}
	names := slices.Clone(cert.DNSNames)
	slices.Sort(names)
	want := slices.Clone(spec.DNSNames)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		return false
	}
	return slices.EqualFunc(normalizeIPs(cert.IPAddresses), normalizeIPs(spec.IPs), func(a, b net.IP) bool { return a.Equal(b) })
}

func ensureServiceAccountKey(keyPath, pubPath string) error {
	key, err := loadKey(keyPath)
	if err != nil {
		return err
	}
	if key == nil {
		if key, err = newKey(); err != nil {
			return err
		}
		if err := writeKey(keyPath, key); err != nil {
			return err
		}
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return err
	}
	return atomicfile.Write(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
}

func newKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("failed to generate key: %w", err)
	}
	return key, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		// crypto/rand does not fail on supported platforms.
		panic(err)
	}
	return n.Add(n, big.NewInt(1))
}

// loadPair reads a certificate and its key. Both missing is (nil, nil, nil);
// one without the other, or a file that does not parse, is an error.
func loadPair(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	certPEM, certErr := os.ReadFile(certPath)
	if certErr != nil && !errors.Is(certErr, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("failed to read %s: %w", certPath, certErr)
	}
	key, err := loadKey(keyPath)
	if err != nil {
		return nil, nil, err
	}
	if certErr != nil {
		if key != nil {
			// A key without its certificate: keep the key, issue a certificate for it.
			return nil, key, nil
		}
		return nil, nil, nil
	}
	if key == nil {
		return nil, nil, fmt.Errorf("certificate %s exists but its key %s is missing", certPath, keyPath)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("%s is not a PEM certificate", certPath)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to parse %s: %w", certPath, err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, nil, fmt.Errorf("certificate %s does not match key %s", certPath, keyPath)
	}
	return cert, key, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

func loadKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", path, err)
	}
	key, err := parseKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

func parseKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("not a PEM private key")
	}
	var key any
	var err error
	switch block.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("unsupported PEM block %q", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to parse the key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, errors.New("not a signing key")
	}
	return signer, nil
}

func writePair(certPath, keyPath string, der []byte, key crypto.Signer) error {
	if err := writeKey(keyPath, key); err != nil {
		return err
	}
	return atomicfile.Write(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func writeKey(path string, key crypto.Signer) error {
	if existing, err := loadKey(path); err == nil && existing != nil && publicKeysEqual(existing.Public(), key.Public()) {
		return nil
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}
