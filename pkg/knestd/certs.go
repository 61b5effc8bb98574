package knestd

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/knest-dev/knest/pkg/controlplane"
	"github.com/knest-dev/knest/pkg/knestd/options"
	"github.com/knest-dev/knest/pkg/lifecycle"
	"github.com/knest-dev/knest/pkg/pki"
)

// CertsPath lists knestd's certificates (get) and rotates its leaf
// certificates (post). Like SnapshotPath, a non-resource URL behind the API
// server's authentication and RBAC.
const CertsPath = "/knest/certs"

// certs serves CertsPath and renews certificates while knestd runs.
type certs struct {
	o    options.Options
	inst *controlplane.Instance

	mu sync.Mutex
	// host is set once the renewal starts, after the host step.
	host kubernetes.Interface
}

// renewed is called after the leaf certificates changed: the published
// admin kubeconfig follows its certificate.
func (c *certs) renewed(ctx context.Context, adminChanged bool) error {
	c.mu.Lock()
	o, host := c.o, c.host
	c.mu.Unlock()
	if !adminChanged || o.KubeconfigSecret == "" || host == nil {
		return nil
	}
	return publishKubeconfig(ctx, o, c.inst, host)
}

// startRenewal checks the certificates a few times per renewal window and
// renews those close to expiry. A failed renewal is logged and retried at
// the next check: the certificates in use stay valid until they expire.
func (c *certs) startRenewal(ctx context.Context) (lifecycle.Running, error) {
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	interval := min(c.inst.CertRenewBefore()/4, time.Hour)
	logger := klog.FromContext(ctx)
	go func() {
		defer close(done)
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-ticker.C:
			}
			changed, err := c.inst.RenewCertificates(time.Now(), false)
			if err == nil {
				err = c.renewed(runCtx, changed)
			}
			if err != nil {
				logger.Error(err, "Certificate renewal failed; retrying", "in", interval.String())
			} else if changed {
				logger.Info("Renewed the leaf certificates that were close to expiry")
			}
		}
	}()
	return lifecycle.Running{Stop: func() { stop(); <-done }}, nil
}

func (c *certs) serve(w http.ResponseWriter, r *http.Request) {
	if u, ok := request.UserFrom(r.Context()); !ok || u.GetName() == "" {
		http.Error(w, "certs: no authenticated user", http.StatusUnauthorized)
		return
	}
	// The API server serves this after the certificates step filled Files.
	if c.inst.Files.CACert == "" {
		http.Error(w, "certs: the control plane is not ready yet", http.StatusServiceUnavailable)
		return
	}
	switch r.Method {
	case http.MethodGet:
	case http.MethodPost:
		changed, err := c.inst.RenewCertificates(time.Now(), true)
		if err == nil {
			err = c.renewed(r.Context(), changed)
		}
		if err != nil {
			http.Error(w, "certs: rotation failed: "+err.Error(), http.StatusInternalServerError)
			return
		}
		u, _ := request.UserFrom(r.Context())
		klog.FromContext(r.Context()).Info("Rotated the leaf certificates", "user", u.GetName())
	default:
		http.Error(w, "certs: GET lists, POST rotates the leaf certificates", http.StatusMethodNotAllowed)
		return
	}
	list, err := pki.Certificates(c.inst.Layout.PKI)
	if err != nil {
		http.Error(w, "certs: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(list)
}
