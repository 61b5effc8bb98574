package simkubelet

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
)

const (
	uidFile    = "uid"
	workDirDir = "workdir"
)

// podFiles keeps the files of the pods under root/<namespace>/<pod>.
type podFiles struct {
	root string
	// mu serializes changes to the directories, so that two first requests
	// for a pod, or a request and the sweep, do not undo each other's work.
	mu sync.Mutex
}

func (f *podFiles) podDir(namespace, name string) string {
	return filepath.Join(f.root, namespace, name)
}

// prepare makes the pod's directory current, creating the container's log if
// it has none, and returns the log's path and the workdir. A directory left
// by an earlier pod of the same name is emptied first.
func (f *podFiles) prepare(pod *corev1.Pod, container string, now time.Time) (logFile, workDir string, err error) {
	for _, name := range []string{pod.Namespace, pod.Name, container} {
		// The API server validates these names; a path must not be made of
		// anything else.
		if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
			return "", "", fmt.Errorf("%q cannot name a directory", name)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	dir := f.podDir(pod.Namespace, pod.Name)
	uid, err := os.ReadFile(filepath.Join(dir, uidFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", "", err
	}
	if err != nil || string(uid) != string(pod.UID) {
		if err := os.RemoveAll(dir); err != nil {
			return "", "", fmt.Errorf("failed to remove the files of an earlier pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", "", err
		}
		if err := os.WriteFile(filepath.Join(dir, uidFile), []byte(pod.UID), 0o600); err != nil {
			return "", "", err
		}
	}
	// Created every time: a command run by exec may have removed it.
	workDir = filepath.Join(dir, workDirDir)
	if err := os.MkdirAll(workDir, 0o700); err != nil {
		return "", "", err
	}
	logFile = filepath.Join(dir, container+".log")
	file, err := os.OpenFile(logFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return logFile, workDir, nil
	}
	if err != nil {
		return "", "", err
	}
	_, err = file.Write(initialLog(pod, container, logFile, now))
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", "", fmt.Errorf("failed to write %s: %w", logFile, err)
	}
	return logFile, workDir, nil
}

// initialLog is what a container's log holds at first, in the CRI log format
// the kubelet writes (and KWOK reads), stamped with the container's start.
func initialLog(pod *corev1.Pod, container, path string, now time.Time) []byte {
	stamp := startedAt(pod, container, now).UTC().Format(time.RFC3339Nano)
	var b strings.Builder
	for _, line := range []string{
		fmt.Sprintf("knest devcluster: %s/%s/%s started", pod.Namespace, pod.Name, container),
		"knest devcluster: the container is simulated, no process runs in it",
		fmt.Sprintf(`knest devcluster: lines appended to %s as "<RFC 3339 time> stdout F <text>" show up here`, path),
	} {
		fmt.Fprintf(&b, "%s stdout F %s\n", stamp, line)
	}
	return []byte(b.String())
}

func startedAt(pod *corev1.Pod, container string, now time.Time) time.Time {
	statuses := append(append(append([]corev1.ContainerStatus(nil), pod.Status.InitContainerStatuses...),
		pod.Status.ContainerStatuses...), pod.Status.EphemeralContainerStatuses...)
	for _, s := range statuses {
		if s.Name != container {
			continue
		}
		if s.State.Running != nil {
			return s.State.Running.StartedAt.Time
		}
		if s.State.Terminated != nil {
			return s.State.Terminated.StartedAt.Time
		}
	}
	if pod.Status.StartTime != nil {
		return pod.Status.StartTime.Time
	}
	return now
}

// sweep removes the directories of pods that are gone (or replaced by a pod
// of the same name), and namespaces' directories left empty.
func (f *podFiles) sweep(ctx context.Context, pods corev1client.PodsGetter) error {
	namespaces, err := os.ReadDir(f.root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, ns := range namespaces {
		if !ns.IsDir() {
			continue
		}
		names, err := os.ReadDir(filepath.Join(f.root, ns.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, name := range names {
			uid, _ := os.ReadFile(filepath.Join(f.podDir(ns.Name(), name.Name()), uidFile))
			pod, err := pods.Pods(ns.Name()).Get(ctx, name.Name(), metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
			case err != nil:
				errs = append(errs, err)
				continue
			case string(pod.UID) == string(uid):
				continue
			}
			if err := f.removeIfStale(ns.Name(), name.Name(), string(uid)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// removeIfStale removes a pod's directory if it still belongs to the pod of
// UID staleUID: a request may have claimed it for a new pod meanwhile.
func (f *podFiles) removeIfStale(namespace, name, staleUID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	dir := f.podDir(namespace, name)
	uid, _ := os.ReadFile(filepath.Join(dir, uidFile))
	if string(uid) != staleUID {
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("failed to remove the files of deleted pod %s/%s: %w", namespace, name, err)
	}
	// Fails, harmlessly, while other pods of the namespace have files.
	_ = os.Remove(filepath.Join(f.root, namespace))
	return nil
}
