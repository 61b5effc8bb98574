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

// Plugin enforces a guard's datastore limits.
type Plugin struct {
	*admission.Handler
	guard *datastore.Guard
}

var _ admission.ValidationInterface = &Plugin{}

// NewFactory returns the plugin factory for a guard.
func NewFactory(g *datastore.Guard) admission.Factory {
	return func(io.Reader) (admission.Interface, error) {
		return &Plugin{Handler: admission.NewHandler(admission.Create, admission.Update), guard: g}, nil
	}
}

// Validate refuses writes the datastore limits do not allow. It runs in the
// validating phase, after every mutation, so the size it measures is the
// size stored.
func (p *Plugin) Validate(_ context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
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
	u := a.GetUserInfo()
	if u != nil && (u.GetName() == pki.InternalUser || u.GetName() == user.APIServerUser) {
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
