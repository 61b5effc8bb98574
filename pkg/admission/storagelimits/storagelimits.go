package storagelimits

import (
	"context"
	"encoding/json"
	"io"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/knest-dev/knest/pkg/datastore"
	"github.com/knest-dev/knest/pkg/pki"
)

// PluginName is the admission plugin's name.
const PluginName = "KnestStorageLimits"

// Plugin enforces a guard's datastore limits, and a freeze.
type Plugin struct {
	*admission.Handler
	guard  *datastore.Guard
	frozen bool
}

// FrozenMessage is why a frozen tenant's write is refused.
const FrozenMessage = "the tenant is frozen by its operator: its API is read-only for every tenant user (creates, updates and deletes are refused) and its pods have no host pods until it is unfrozen; ask the operator (knest unfreeze)"

// controllerManagerUser is the controller-manager's own identity, which
// knestd alone holds (a certificate of its internal CA): it creates the
// controllers' ServiceAccounts and tokens at start. The controllers
// themselves write as ServiceAccounts, tenant identities a tenant admin
// can mint tokens for, and are refused while frozen like every tenant user.
const controllerManagerUser = "system:kube-controller-manager"

var _ admission.ValidationInterface = &Plugin{}

// NewFactory returns the plugin factory for a guard; frozen refuses every
// write of a tenant user.
func NewFactory(g *datastore.Guard, frozen bool) admission.Factory {
	return func(io.Reader) (admission.Interface, error) {
		return &Plugin{Handler: admission.NewHandler(admission.Create, admission.Update, admission.Delete), guard: g, frozen: frozen}, nil
	}
}

// Validate refuses writes the datastore limits do not allow. It runs in the
// validating phase, after every mutation, so the size it measures is the
// size stored.
func (p *Plugin) Validate(_ context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	// The objects the controllers make in every namespace are made in
	// knestd's start-up probe namespace too (no other namespace can be
	// made while frozen), or knestd could not start frozen.
	bootstrap := a.GetOperation() == admission.Create && a.GetSubresource() == "" && controllerBootstrap(a.GetResource().GroupResource(), a.GetName())
	if p.frozen && !knestdOwn(a.GetUserInfo(), true) && !bootstrap {
		return admission.NewForbidden(a, &datastore.Refusal{Reason: "Frozen", Message: FrozenMessage})
	}
	w, check := write(a, p.guard.ReadOnly)
	if !check {
		return nil
	}
	if r := p.guard.Admit(w); r != nil {
		return admission.NewForbidden(a, r)
	}
	return nil
}

// write describes a for the guard; check is false for writes the limits do
// not apply to.
func write(a admission.Attributes, readOnly func() bool) (w datastore.Write, check bool) {
	if knestdOwn(a.GetUserInfo(), false) {
		// knestd's own writes (virtual Nodes, pod status, its Events and
		// condition, the start-up probe) are bounded and must go on.
		return w, false
	}
	if a.GetSubresource() != "" || a.GetObject() == nil {
		return w, false
	}
	gr := a.GetResource().GroupResource()
	w = datastore.Write{Resource: resourceKey(gr), Bytes: size(a.GetObject())}
	switch a.GetOperation() {
	case admission.Create:
		w.Create = true
		w.Grows = !controllerBootstrap(gr, a.GetName())
	case admission.Update:
		w.Grows = grows(a, gr, w.Bytes, readOnly)
	default:
		return w, false
	}
	return w, true
}

// grows says whether an update is refused in read-only mode; sizes are
// compared only in the mode.
func grows(a admission.Attributes, gr schema.GroupResource, newSize int64, readOnly func() bool) bool {
	if gr == (schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}) {
		return false
	}
	old := a.GetOldObject()
	if old == nil {
		return true
	}
	if m, err := meta.Accessor(old); err == nil && m.GetDeletionTimestamp() != nil {
		return false
	}
	if !readOnly() {
		return true
	}
	return newSize > size(old)
}

// controllerBootstrap reports the objects the controller-manager creates in
// every namespace, which it must still create in a namespace created by
// knestd itself (its start-up probe).
func controllerBootstrap(gr schema.GroupResource, name string) bool {
	return (gr == schema.GroupResource{Resource: "serviceaccounts"} && name == "default") ||
		(gr == schema.GroupResource{Resource: "configmaps"} && name == "kube-root-ca.crt")
}

// resourceKey names a resource as policy.DatastoreLimits.ObjectCounts does.
func resourceKey(gr schema.GroupResource) string {
	if gr.Group == "" {
		return gr.Resource
	}
	return gr.Resource + "." + gr.Group
}

// size is the object's JSON size; an object that does not serialize counts
// as empty (the API server then fails the write itself).
func size(obj runtime.Object) int64 {
	data, err := json.Marshal(obj)
	if err != nil {
		return 0
	}
	return int64(len(data))
}

// knestdOwn says whether u is one of knestd's own identities (with the
// controller-manager's own one if controllerManager): never a tenant user.
func knestdOwn(u user.Info, controllerManager bool) bool {
	if u == nil {
		return false
	}
	n := u.GetName()
	return n == pki.InternalUser || n == user.APIServerUser || (controllerManager && n == controllerManagerUser)
}
