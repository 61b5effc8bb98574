package knestd

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/knest-dev/knest/pkg/policy"
)

// RestoredPodRefused is the reason of the Event on a restored pod the
// current policy refuses.
const RestoredPodRefused = "RestoredPodRefused"

// recheckRestoredPods runs after a restore, before the syncer starts: a
// restore writes objects that never went through admission, under a policy
// that may have changed since the snapshot. Pods the current policy refuses
// are deleted, with an Event saying why, before anything of them reaches the
// host; their controllers' new pods then meet admission as usual. Other
// kinds meet the policy in the syncer's builders at every host write.
func recheckRestoredPods(ctx context.Context, client kubernetes.Interface, pol *policy.Policy) error {
	logger := klog.FromContext(ctx)
	pods, err := client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("failed to list the restored pods: %w", err)
	}
	refused := 0
	for i := range pods.Items {
		pod := &pods.Items[i]
		spec := pod.Spec.DeepCopy()
		// The syncer bound it; the check is of the tenant's spec.
		spec.NodeName = ""
		errs := policy.CheckPod(&pod.ObjectMeta, spec, field.NewPath("spec"), pol)
		if len(errs) == 0 {
			continue
		}
		refused++
		reason := errs.ToAggregate().Error()
		logger.Info("Deleting a restored pod the current policy refuses", "pod", klog.KObj(pod), "reason", reason)
		event := &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{GenerateName: pod.Name + ".", Namespace: pod.Namespace},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
			Reason:         RestoredPodRefused, Type: corev1.EventTypeWarning,
			Message:        "restored from a snapshot, refused by the current policy and deleted: " + reason,
			Source:         corev1.EventSource{Component: "knestd"},
			FirstTimestamp: metav1.Now(), LastTimestamp: metav1.Now(), Count: 1,
			ReportingController: "knest.io/knestd", ReportingInstance: "knestd",
		}
		if _, err := client.CoreV1().Events(pod.Namespace).Create(ctx, event, metav1.CreateOptions{}); err != nil {
			logger.Error(err, "Failed to record an Event", "pod", klog.KObj(pod))
		}
		grace := int64(0)
		if err := client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
			return fmt.Errorf("failed to delete restored pod %s/%s that the current policy refuses: %w", pod.Namespace, pod.Name, err)
		}
	}
	logger.Info("Checked the restored pods against the current policy", "pods", len(pods.Items), "refused", refused)
	return nil
}
