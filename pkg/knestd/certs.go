package knestd

import (
	"context"
	"encoding/json"
	"errors"
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
// server's authentication and RBAC. A post with ?ca=begin (and
// &transition=DURATION) starts a cluster CA rotation, ?ca=finish ends its
// transition; knestd then restarts onto the new CA files.
const CertsPath = "/knest/certs"

// CARotationResponse is what a post with ?ca= answers.
type CARotationResponse struct {
	Phase   string    `json:"phase"`
	Started time.Time `json:"started"`
	Until   time.Time `json:"until,omitzero"`
	// CA is the subject of the CA that signs now.
	CA string `json:"ca"`
	// Restarting: knestd re-executes itself onto the new files now.
	Restarting bool `json:"restarting"`
}

// certs serves CertsPath and renews certificates while knestd runs.
type certs struct {
	o    options.Options
	inst *controlplane.Instance

	mu sync.Mutex
	// host is set once the renewal starts, after the host step.
	host kubernetes.Interface
	// restarting is set once a CA rotation step asked for the restart.
	restarting bool
	// restart ends the renewal step with errRestartCA: Run re-executes
	// knestd, whose components read the CA files when they start.
	restart chan error
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
// renews those close to expiry, and ends a CA rotation's transition when
// its time has come. A failed renewal is logged and retried at the next
// check: the certificates in use stay valid until they expire.
func (c *certs) startRenewal(ctx context.Context) (lifecycle.Running, error) {
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	interval := min(c.inst.CertRenewBefore()/4, time.Hour)
	logger := klog.FromContext(ctx)
	go func() {
		defer close(done)
		for {
			next := interval
			if r, err := pki.ReadCARotation(c.inst.Layout.PKI); err == nil && r.InTransition() && !r.Until.IsZero() {
				next = max(min(next, time.Until(r.Until)), time.Second)
			}
			select {
			case <-runCtx.Done():
				return
			case <-time.After(next):
			}
			finished, err := c.inst.FinishCARotation(time.Now(), true)
			if err != nil {
				logger.Error(err, "Ending the CA rotation's transition failed; retrying", "in", interval.String())
			} else if finished {
				logger.Info("The CA rotation's transition ended: the previous cluster CA is no longer trusted; restarting")
				c.restartNow(runCtx)
				return
			}
			changed, err := c.inst.RenewCertificates(time.Now(), false)
			err = errors.Join(err, c.renewed(runCtx, changed))
			if err != nil {
				logger.Error(err, "Certificate renewal failed; retrying", "in", interval.String())
			} else if changed {
				logger.Info("Renewed the leaf certificates that were close to expiry")
			}
		}
	}()
	return lifecycle.Running{Failed: c.restart, Stop: func() { stop(); <-done }}, nil
}

// restartNow publishes the rewritten admin kubeconfig and has knestd
// re-execute itself. The publication is repeated at the next start, so a
// failure here only delays it.
func (c *certs) restartNow(ctx context.Context) {
	if err := c.renewed(ctx, true); err != nil {
		klog.FromContext(ctx).Error(err, "Publishing the admin kubeconfig failed; the restart publishes it again")
	}
	c.mu.Lock()
	c.restarting = true
	c.mu.Unlock()
	select {
	case c.restart <- errRestartCA:
	default: // a restart is already asked for
	}
}

// rotateCA serves a post with ?ca=: it changes the CA files, answers, and
// restarts knestd onto them.
func (c *certs) rotateCA(w http.ResponseWriter, r *http.Request, step string) {
	c.mu.Lock()
	restarting := c.restarting
	c.mu.Unlock()
	// Steps are serialized by the instance; a second one before the
	// restart would change files the running components do not read.
	if restarting {
		http.Error(w, "certs: knestd is restarting onto a rotated CA", http.StatusConflict)
		return
	}
	var rot *pki.CARotation
	var err error
	now := time.Now()
	switch step {
	case "begin":
		var transition time.Duration
		if v := r.URL.Query().Get("transition"); v != "" {
			if transition, err = time.ParseDuration(v); err != nil || transition < 0 {
				http.Error(w, "certs: transition must be a duration (0: until finished explicitly): "+v, http.StatusBadRequest)
				return
			}
		}
		rot, err = c.inst.BeginCARotation(now, transition)
	case "finish":
		if _, err = c.inst.FinishCARotation(now, false); err == nil {
			rot, err = pki.ReadCARotation(c.inst.Layout.PKI)
		}
	default:
		http.Error(w, "certs: ca must be begin or finish", http.StatusBadRequest)
		return
	}
	if err != nil {
		http.Error(w, "certs: CA rotation refused: "+err.Error(), http.StatusConflict)
		return
	}
	c.mu.Lock()
	c.restarting = true
	c.mu.Unlock()
	current, err := pki.ReadCert(c.inst.Files.CACert)
	if err != nil {
		http.Error(w, "certs: "+err.Error(), http.StatusInternalServerError)
		return
	}
	u, _ := request.UserFrom(r.Context())
	klog.FromContext(r.Context()).Info("Cluster CA rotation step done; restarting onto the new files", "step", step, "phase", rot.Phase,
		"ca", current.Subject.CommonName, "until", rot.Until, "user", u.GetName())
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(CARotationResponse{Phase: rot.Phase, Started: rot.Started, Until: rot.Until, CA: current.Subject.CommonName, Restarting: true})
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	// Restart once this response is out: stopping the API server waits
	// for requests in flight, this one included.
	go func() {
		time.Sleep(200 * time.Millisecond)
		c.restartNow(context.WithoutCancel(r.Context()))
	}()
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
		if step := r.URL.Query().Get("ca"); step != "" {
			c.rotateCA(w, r, step)
			return
		}
		changed, err := c.inst.RenewCertificates(time.Now(), true)
		err = errors.Join(err, c.renewed(r.Context(), changed))
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
