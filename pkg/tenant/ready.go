package tenant

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// NotReadyError is a tenant that was not ready in time, with the last state
// it was seen in.
type NotReadyError struct {
	Namespace string
	State     string
}

func (e *NotReadyError) Error() string {
	return fmt.Sprintf("not ready: %s; see 'kubectl -n %s describe pod %s' and 'kubectl -n %s logs %s'",
		e.State, e.Namespace, PodName, e.Namespace, PodName)
}

// ImagePullError is a knestd pod whose image the host cannot pull: waiting
// longer does not help until the image is changed, pushed or loaded.
type ImagePullError struct {
	Namespace string
	// Image is the knestd container's image, as the pod names it.
	Image string
	// Reason and Message are the container's waiting state, as the kubelet
	// set it (ErrImagePull, ImagePullBackOff, InvalidImageName,
	// ErrImageNeverPull).
	Reason, Message string
}

func (e *ImagePullError) Error() string {
	return fmt.Sprintf("the host cannot pull knestd's image %s: %s", e.Image, withMessage(e.Reason, e.Message)[2:])
}

// imagePullReasons are the waiting reasons of a container whose image the
// kubelet failed to pull or may not pull (pullPolicy Never and the image
// absent from the node).
var imagePullReasons = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true, "ErrImageNeverPull": true,
}

// imagePullFailure returns the pull failure of knestd's container in pod,
// or nil.
func imagePullFailure(namespace string, pod *corev1.Pod) *ImagePullError {
	if pod == nil {
		return nil
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name != ContainerName || cs.State.Waiting == nil || !imagePullReasons[cs.State.Waiting.Reason] {
			continue
		}
		image := cs.Image
		for _, c := range pod.Spec.Containers {
			if c.Name == ContainerName {
				image = c.Image
			}
		}
		return &ImagePullError{Namespace: namespace, Image: image, Reason: cs.State.Waiting.Reason, Message: cs.State.Waiting.Message}
	}
	return nil
}

// pollInterval is how often WaitReady looks.
const pollInterval = time.Second

// WaitReady waits until the tenant's knestd runs the StatefulSet's current
// revision, is ready (its pod's readiness probe is the tenant API server's
// /readyz), and has published the admin kubeconfig, which it does once its
// controllers run too. Each change of state goes to progress as one line.
// When ctx ends first, the error is a *NotReadyError naming the last state;
// when the host cannot pull knestd's image it is an *ImagePullError at once,
// rather than at the deadline.
func WaitReady(ctx context.Context, c kubernetes.Interface, namespace string, progress func(string)) error {
	last, lastErr := "", ""
	err := wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
		state, ready, pod, err := readiness(ctx, c, namespace)
		if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
			return false, err
		}
		if err != nil {
			// A failed read (or one cut short by the deadline) says nothing
			// new about the tenant: the last state seen stays the news.
			if last == "" && err.Error() != lastErr && ctx.Err() == nil {
				progress("cannot read the tenant's state: " + err.Error())
			}
			lastErr = err.Error()
			return false, nil
		}
		if state != last {
			last = state
			progress(state)
		}
		if e := imagePullFailure(namespace, pod); e != nil {
			return false, e
		}
		return ready, nil
	})
	if err != nil && ctx.Err() != nil {
		if last == "" {
			last = "its state could not be read: " + lastErr
		}
		return &NotReadyError{Namespace: namespace, State: last}
	}
	return err
}

// State describes the tenant's control plane in one line ("knestd-0:
// running, not ready yet") and says whether it is ready, as WaitReady
// judges it.
func State(ctx context.Context, c kubernetes.Interface, namespace string) (string, bool, error) {
	state, ready, _, err := readiness(ctx, c, namespace)
	return state, ready, err
}

// readiness is State, with knestd's pod when it runs the StatefulSet's
// current revision (nil otherwise: an older pod's image is not the one
// being installed).
func readiness(ctx context.Context, c kubernetes.Interface, namespace string) (string, bool, *corev1.Pod, error) {
	sts, err := c.AppsV1().StatefulSets(namespace).Get(ctx, StatefulSetName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "StatefulSet " + StatefulSetName + " does not exist", false, nil, nil
	}
	if err != nil {
		return "", false, nil, err
	}
	pod, err := c.CoreV1().Pods(namespace).Get(ctx, PodName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		pod, err = nil, nil
	}
	if err != nil {
		return "", false, nil, err
	}
	state := PodName + ": " + DescribePod(pod)
	var cur *corev1.Pod
	if pod != nil && current(sts, pod) {
		cur = pod
	}
	if pod == nil || !podReady(pod) {
		return state, false, cur, nil
	}
	if cur == nil {
		return state + ", an older revision: waiting for the rollout", false, nil, nil
	}
	if _, err := Kubeconfig(ctx, c, namespace); errors.Is(err, ErrNotPublished) {
		return state + ", waiting for the admin kubeconfig (published once the controllers run)", false, pod, nil
	} else if err != nil {
		return "", false, nil, err
	}
	return PodName + ": ready", true, pod, nil
}

// current reports whether pod runs the StatefulSet's latest revision.
func current(sts *appsv1.StatefulSet, pod *corev1.Pod) bool {
	if sts.Status.ObservedGeneration < sts.Generation || sts.Status.UpdateRevision == "" {
		return false
	}
	return pod.Labels[appsv1.ControllerRevisionHashLabelKey] == sts.Status.UpdateRevision
}

func podReady(pod *corev1.Pod) bool {
	if pod.DeletionTimestamp != nil {
		return false
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// DescribePod says in a few words where knestd's pod is on its way to
// ready, with the reason the host gives when it is stuck: unschedulable,
// an image that cannot be pulled, a crash (with knestd's last line, which
// the chart makes the termination message).
func DescribePod(pod *corev1.Pod) string {
	switch {
	case pod == nil:
		return "not created yet"
	case pod.DeletionTimestamp != nil:
		return "terminating"
	case pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded:
		return "exited (" + string(pod.Status.Phase) + ")" + withMessage(pod.Status.Reason, pod.Status.Message)
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return "not scheduled" + withMessage(c.Reason, c.Message)
		}
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name != ContainerName {
			continue
		}
		if w := cs.State.Waiting; w != nil {
			s := strings.TrimSpace(w.Reason)
			if s == "" {
				s = "waiting"
			}
			if t := cs.LastTerminationState.Terminated; t != nil {
				return s + fmt.Sprintf(" (restarts: %d, last exit code %d%s)", cs.RestartCount, t.ExitCode, lastLine(t.Message))
			}
			return s + withMessage("", w.Message)
		}
		if cs.State.Running != nil {
			if podReady(pod) {
				return "running and ready"
			}
			return "running, not ready yet"
		}
	}
	if pod.Status.Phase == "" {
		return "pending"
	}
	return strings.ToLower(string(pod.Status.Phase))
}

func withMessage(reason, message string) string {
	switch {
	case reason != "" && message != "":
		return ": " + reason + ": " + message
	case reason != "" || message != "":
		return ": " + reason + message
	}
	return ""
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if s == "" {
		return ""
	}
	return ": " + s
}
