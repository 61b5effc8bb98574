package tenant

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/knest-dev/knest/pkg/encryption"
	"github.com/knest-dev/knest/pkg/policy"
)

func pod(tweaks ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: PodName}, Status: corev1.PodStatus{Phase: corev1.PodPending}}
	for _, tw := range tweaks {
		tw(p)
	}
	return p
}

func withContainer(s corev1.ContainerStatus) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		s.Name = ContainerName
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, s)
	}
}

func withCondition(t corev1.PodConditionType, s corev1.ConditionStatus, reason, msg string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: t, Status: s, Reason: reason, Message: msg})
	}
}

func TestDescribePodSaysWhereKnestdIsStuck(t *testing.T) {
	t.Parallel()
	now := metav1.Now()
	tests := []struct {
		name string
		pod  *corev1.Pod
		want string
	}{
		{name: "no pod yet", pod: nil, want: "not created yet"},
		{name: "unschedulable, with the scheduler's reason", pod: pod(withCondition(corev1.PodScheduled, corev1.ConditionFalse, "Unschedulable", "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims.")),
			want: "not scheduled: Unschedulable: 0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims."},
		{name: "an image that cannot be pulled", pod: pod(withContainer(corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "not found"}}})),
			want: "ImagePullBackOff: not found"},
		{name: "a crash loop shows knestd's last line", pod: pod(withContainer(corev1.ContainerStatus{
			RestartCount:         3,
			State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Message: "I1 starting\nknestd: --policy-file: bad"}},
		})), want: "CrashLoopBackOff (restarts: 3, last exit code 1: knestd: --policy-file: bad)"},
		{name: "running, not ready", pod: pod(func(p *corev1.Pod) { p.Status.Phase = corev1.PodRunning },
			withContainer(corev1.ContainerStatus{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}})),
			want: "running, not ready yet"},
		{name: "ready", pod: pod(func(p *corev1.Pod) { p.Status.Phase = corev1.PodRunning },
			withCondition(corev1.PodReady, corev1.ConditionTrue, "", ""),
			withContainer(corev1.ContainerStatus{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}})),
			want: "running and ready"},
		{name: "terminating", pod: pod(func(p *corev1.Pod) { p.DeletionTimestamp = &now }), want: "terminating"},
		{name: "evicted", pod: pod(func(p *corev1.Pod) {
			p.Status.Phase, p.Status.Reason, p.Status.Message = corev1.PodFailed, "Evicted", "low on memory"
		}), want: "exited (Failed): Evicted: low on memory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := DescribePod(tc.pod); got != tc.want {
				t.Errorf("DescribePod = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNamespaceLabelsFollowTheFloor(t *testing.T) {
	t.Parallel()
	// baseline in both: a host namespace at restricted would refuse the
	// root pods the hard profile runs sandboxed.
	for profile, level := range map[policy.Profile]string{policy.ProfileHard: "baseline", policy.ProfileSoft: "baseline"} {
		want := map[string]string{
			LabelNamespaceTenant:                 "acme",
			"pod-security.kubernetes.io/enforce": level,
			"pod-security.kubernetes.io/audit":   level,
			"pod-security.kubernetes.io/warn":    level,
		}
		if diff := cmp.Diff(want, NamespaceLabels("acme", profile)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", profile, diff)
		}
		if ns := Namespace("knest-acme", "acme", profile); ns.Labels[LabelCreatedBy] != "knest" {
			t.Errorf("a namespace knest creates is not marked as such: %v", ns.Labels)
		}
	}
}

func TestValidateName(t *testing.T) {
	t.Parallel()
	for name, wantErr := range map[string]string{
		"acme":                  "",
		strings.Repeat("a", 53): "",
		strings.Repeat("a", 54): "longer than 53",
		"Acme":                  "is invalid",
		"team_a":                "is invalid",
		"-a":                    "is invalid",
		"a":                     "",
	} {
		err := ValidateName(name)
		if (wantErr == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), wantErr) {
			t.Errorf("ValidateName(%q) = %v, want %q", name, err, wantErr)
		}
	}
	if n := len(DefaultNamespace(strings.Repeat("a", MaxNameLength))); n > 63 {
		t.Errorf("the longest name makes a %d-character namespace", n)
	}
}

func TestAStoredKeyIsAKeyFile(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, EncodeKey(key), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := encryption.LoadKey(path)
	if err != nil || string(got) != string(key) {
		t.Errorf("LoadKey of the Secret's value = %q, %v", got, err)
	}
}

func TestOwnedSelectorsCoverControlPlaneAndSyncedObjects(t *testing.T) {
	t.Parallel()
	want := []string{"knest.io/control-plane=acme", "knest.io/tenant=acme"}
	if diff := cmp.Diff(want, OwnedSelectors("acme")); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
