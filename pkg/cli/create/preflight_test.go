package create

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/knest-dev/knest/pkg/policy"
	"github.com/knest-dev/knest/pkg/tenant"
)

func runtimeClass(name, handler string) *nodev1.RuntimeClass {
	return &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Handler: handler}
}

func storageClass(name string, isDefault bool) *storagev1.StorageClass {
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: "example.com/csi"}
	if isDefault {
		sc.Annotations = map[string]string{defaultStorageClassAnnotation: "true"}
	}
	return sc
}

func volume(name, class string, claimed bool) *corev1.PersistentVolume {
	pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PersistentVolumeSpec{StorageClassName: class},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeAvailable}}
	if claimed {
		pv.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "other", Name: "data"}
		pv.Status.Phase = corev1.VolumeBound
	}
	return pv
}

func TestPreflight(t *testing.T) {
	t.Parallel()
	kata := runtimeClass("kata", "kata-qemu")
	std := storageClass("standard", true)
	tests := []struct {
		name    string
		objects []runtime.Object
		values  map[string]any
		profile policy.Profile
		exists  bool
		// forbid makes reads of these resources forbidden.
		forbid []string
		// wantErr is in the refusal, "" for none; wantWarning in the
		// progress lines.
		wantErr, wantWarning string
	}{
		{name: "a hard tenant with kata and a default class passes", objects: []runtime.Object{kata, std}, profile: policy.ProfileHard},
		{name: "a hard tenant without the kata RuntimeClass is refused", objects: []runtime.Object{std}, profile: policy.ProfileHard,
			wantErr: `the host has no RuntimeClass "kata", which the hard profile runs every tenant pod with`},
		{name: "the refusal says how to go on", objects: []runtime.Object{std}, profile: policy.ProfileHard, wantErr: "--isolation soft"},
		{name: "a soft tenant needs no RuntimeClass", objects: []runtime.Object{std}, profile: policy.ProfileSoft},
		{name: "a forced class the host lacks is refused in soft too", objects: []runtime.Object{kata, std}, profile: policy.ProfileSoft,
			values:  map[string]any{"policy": map[string]any{"runtimeClasses": map[string]any{"forced": "gvisor"}}},
			wantErr: `no RuntimeClass "gvisor", which the soft profile`},
		{name: "the forced class replaces kata in hard", objects: []runtime.Object{runtimeClass("gvisor", "runsc"), std}, profile: policy.ProfileHard,
			values:      map[string]any{"policy": map[string]any{"runtimeClasses": map[string]any{"forced": "gvisor"}}},
			wantWarning: `RuntimeClass gvisor runs handler "runsc", which is not a VM runtime`},
		{name: "a RuntimeClass the user may not read is a warning", objects: []runtime.Object{std}, profile: policy.ProfileHard,
			forbid: []string{"runtimeclasses"}, wantWarning: "cannot read RuntimeClass kata"},
		{name: "no default StorageClass and no free volume is refused", objects: []runtime.Object{kata, storageClass("fast", false), volume("pv1", "", true)},
			profile: policy.ProfileHard, wantErr: "the host has no default StorageClass and no free PersistentVolume of that class: knestd's data volume (knestd.storage) would stay unbound and its pod Pending; the host's StorageClasses are fast"},
		{name: "a free classless volume binds the classless claim", objects: []runtime.Object{kata, volume("pv1", "", false)},
			profile: policy.ProfileHard, wantWarning: "The host has no default StorageClass: knestd's data volume binds a free PersistentVolume (pv1)"},
		{name: "a named class that exists passes without a default", objects: []runtime.Object{kata, storageClass("fast", false)}, profile: policy.ProfileHard,
			values: map[string]any{"knestd": map[string]any{"storage": map[string]any{"storageClassName": "fast"}}}},
		{name: "a named class that does not exist is refused", objects: []runtime.Object{kata, std, volume("pv1", "", false)}, profile: policy.ProfileHard,
			values:  map[string]any{"knestd": map[string]any{"storage": map[string]any{"storageClassName": "no-such-class"}}},
			wantErr: `the host has no StorageClass "no-such-class" (knestd.storage.storageClassName) and no free PersistentVolume`},
		{name: "an upgrade has its claim already", objects: []runtime.Object{kata}, profile: policy.ProfileHard, exists: true},
		{name: "without knestd there is no claim", objects: []runtime.Object{kata}, profile: policy.ProfileHard,
			values: map[string]any{"knestd": map[string]any{"enabled": false}}},
		{name: "StorageClasses the user may not read are a warning", objects: []runtime.Object{kata}, profile: policy.ProfileHard,
			forbid: []string{"storageclasses"}, wantWarning: "cannot read the host's StorageClasses"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := fake.NewClientset(tc.objects...)
			for _, r := range tc.forbid {
				c.PrependReactor("*", r, func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, errors.New("forbidden: " + r)
				})
			}
			values := tc.values
			if values == nil {
				values = map[string]any{}
			}
			_, knestd, err := effective(values)
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			err = preflight(t.Context(), c, values, tc.profile, knestd, tc.exists, func(s string) { lines = append(lines, s) })
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "--skip-preflight")):
				t.Errorf("error = %v, want one with %q and --skip-preflight", err, tc.wantErr)
			}
			if progress := strings.Join(lines, "\n"); tc.wantWarning != "" && !strings.Contains(progress, tc.wantWarning) {
				t.Errorf("progress lacks %q:\n%s", tc.wantWarning, progress)
			}
		})
	}
}

func TestImagePullHelpNamesTheImageAndTheValues(t *testing.T) {
	t.Parallel()
	err := imagePullHelp("acme", "knest-acme", &tenant.ImagePullError{Image: "ghcr.io/knest-dev/knestd:v0.1.0", Reason: "ImagePullBackOff", Message: "Back-off pulling image"})
	for _, want := range []string{"ghcr.io/knest-dev/knestd:v0.1.0", "ImagePullBackOff", "--set knestd.image.repository=", "knestd.image.tag=", "On a real host cluster", "knest delete acme -n knest-acme"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	other := errors.New("boom")
	if got := imagePullHelp("acme", "knest-acme", other); got != other {
		t.Errorf("other errors change: %v", got)
	}
}
