package create

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/tenant"
)

// PreflightError is a host that lacks what the tenant needs, found before
// anything is installed.
type PreflightError struct {
	// Check is what was checked: "RuntimeClass" or "StorageClass".
	Check  string
	Reason string
}

func (e *PreflightError) Error() string {
	return "preflight: " + e.Reason + " (--skip-preflight installs anyway)"
}

// preflight checks, with the user's own credentials and before anything
// is installed, that the host has what the tenant's pods need: the
// RuntimeClass its profile forces on every pod, and storage for knestd's
// data volume (only for a new tenant: an existing one has its claim). What
// the user may not read is a warning, not a refusal: the host may well
// have it.
func preflight(ctx context.Context, host kubernetes.Interface, values map[string]any, profile policy.Profile, knestdEnabled, exists bool, progress func(string)) error {
	if err := checkRuntimeClass(ctx, host, values, profile, progress); err != nil {
		return err
	}
	if knestdEnabled && !exists {
		return checkStorage(ctx, host, values, progress)
	}
	return nil
}

// forcedRuntimeClass is the RuntimeClass every tenant pod runs with: the
// policy's forced one, else the hard profile's default; "" for none.
func forcedRuntimeClass(values map[string]any, profile policy.Profile) string {
	if rc, ok := policyValues(values)["runtimeClasses"].(map[string]any); ok {
		if forced, ok := rc["forced"].(string); ok && forced != "" {
			return forced
		}
	}
	if profile == policy.ProfileHard {
		return policy.DefaultHardRuntimeClass
	}
	return ""
}

// checkRuntimeClass refuses a tenant whose profile forces a RuntimeClass
// the host does not have: every tenant pod would be refused by the host's
// RuntimeClass admission. It warns when the hard profile's class is not a
// VM runtime: kind and the devcluster map it to a plain runtime.
func checkRuntimeClass(ctx context.Context, host kubernetes.Interface, values map[string]any, profile policy.Profile, progress func(string)) error {
	name := forcedRuntimeClass(values, profile)
	if name == "" {
		return nil
	}
	rc, err := host.NodeV1().RuntimeClasses().Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		how := "install it (manifests/runtimeclasses/kata.yaml for Kata Containers, gvisor.yaml for gVisor)"
		if profile == policy.ProfileHard {
			how += ", name another with --set policy.runtimeClasses.forced=NAME, or use --isolation soft (shared kernel)"
		} else {
			how += " or name another in policy.runtimeClasses.forced"
		}
		return &PreflightError{Check: "RuntimeClass", Reason: fmt.Sprintf(
			"the host has no RuntimeClass %q, which the %s profile runs every tenant pod with: %s", name, profile, how)}
	case err != nil:
		progress(fmt.Sprintf("Warning: cannot read RuntimeClass %s (%v): every tenant pod runs with it; knestd checks at start that the host accepts it", name, err))
		return nil
	}
	if profile == policy.ProfileHard && !slices.ContainsFunc(vmRuntimeHandlers, func(h string) bool { return strings.Contains(strings.ToLower(rc.Handler), h) }) {
		progress(fmt.Sprintf("Warning: RuntimeClass %s runs handler %q, which is not a VM runtime: hard-profile pods share the host kernel here, as in soft (fine for kind and the devcluster, not for untrusted tenants)", name, rc.Handler))
	}
	return nil
}

// storageClassName is knestd.storage.storageClassName; "" is the host's
// default class.
func storageClassName(values map[string]any) string {
	k, _ := values["knestd"].(map[string]any)
	s, _ := k["storage"].(map[string]any)
	name, _ := s["storageClassName"].(string)
	return name
}

// checkStorage refuses a new tenant whose data volume claim could never
// bind: the chart's StatefulSet claims knestd.storage.size of class
// knestd.storage.storageClassName (empty: the host's default class), and
// without that class, or a free pre-provisioned volume of it, knestd's pod
// stays Pending until the timeout.
func checkStorage(ctx context.Context, host kubernetes.Interface, values map[string]any, progress func(string)) error {
	class := storageClassName(values)
	classes, err := host.StorageV1().StorageClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		progress(fmt.Sprintf("Warning: cannot read the host's StorageClasses (%v): knestd's data volume needs %s", err, wantClass(class)))
		return nil
	}
	var names []string
	for _, sc := range classes.Items {
		if class == "" && sc.Annotations[defaultStorageClassAnnotation] == "true" || class != "" && sc.Name == class {
			return nil
		}
		names = append(names, sc.Name)
	}
	// A claim binds a pre-provisioned volume of its class name (none for
	// an empty one) without any StorageClass object.
	pvs, err := host.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		progress(fmt.Sprintf("Warning: the host has %s and its PersistentVolumes cannot be read (%v): knestd's pod stays Pending unless a volume of that class is free", noClass(class), err))
		return nil
	}
	for _, pv := range pvs.Items {
		if pv.Status.Phase == corev1.VolumeAvailable && pv.Spec.ClaimRef == nil && pv.Spec.StorageClassName == class {
			progress(fmt.Sprintf("The host has %s: knestd's data volume binds a free PersistentVolume (%s)", noClass(class), pv.Name))
			return nil
		}
	}
	other := "the host has no StorageClass"
	if len(names) > 0 {
		other = "the host's StorageClasses are " + strings.Join(names, ", ")
	}
	how := "name one with --set knestd.storage.storageClassName=CLASS or mark one the default (storageclass.kubernetes.io/is-default-class=true)"
	if class != "" {
		how = "name an existing one with --set knestd.storage.storageClassName=CLASS, or leave it empty for the host's default class"
	}
	return &PreflightError{Check: "StorageClass", Reason: fmt.Sprintf(
		"the host has %s and no free PersistentVolume of that class: knestd's data volume (knestd.storage) would stay unbound and its pod Pending; %s; %s", noClass(class), other, how)}
}

// wantClass names the class knestd's claim needs; noClass says it is
// missing.
func wantClass(class string) string {
	if class == "" {
		return "a default StorageClass"
	}
	return fmt.Sprintf("StorageClass %q (knestd.storage.storageClassName)", class)
}

func noClass(class string) string {
	if class == "" {
		return "no default StorageClass"
	}
	return fmt.Sprintf("no StorageClass %q (knestd.storage.storageClassName)", class)
}

// vmRuntimeHandlers are substrings of RuntimeClass handlers that run pods
// in a virtual machine (Kata Containers with QEMU, Cloud Hypervisor or
// Firecracker).
var vmRuntimeHandlers = []string{"kata", "qemu", "clh", "firecracker", "fc"}

// imagePullHelp says what to do about a knestd image the host cannot
// pull: the values that name it, and where the README says how to build
// and load it.
func imagePullHelp(name, ns string, err error) error {
	var e *tenant.ImagePullError
	if !errors.As(err, &e) {
		return err
	}
	return fmt.Errorf("tenant %s cannot start: %w. Name an image the host can pull with --set knestd.image.repository=REPO --set knestd.image.tag=TAG "+
		"(and imagePullSecrets for a private registry), or build and load the default one (README: \"On a real host cluster\"); "+
		"the tenant stays installed: 'knest create %s -n %s --upgrade --set ...' retries with another image, 'knest delete %s -n %s' removes it",
		name, e, name, ns, name, ns)
}
