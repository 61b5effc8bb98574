package podtimeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
)

// Creator creates pods in one namespace and records in its Timeline when
// each Create returned.
type Creator struct {
	// Name names the creator in errors ("direct", "tenant").
	Name     string
	Pods     corev1client.PodInterface
	Timeline *Timeline
	// Pod returns the pod to create.
	Pod func(name string) *corev1.Pod
}

// Create creates the named pods with workers concurrent Creates. After
// the first failure the rest are cancelled.
func (c Creator) Create(ctx context.Context, names []string, workers int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for range min(workers, len(names)) {
		wg.Go(func() {
			for name := range next {
				pod := c.Pod(name)
				called := time.Now()
				_, err := c.Pods.Create(ctx, pod, metav1.CreateOptions{})
				if err != nil {
					mu.Lock()
					if len(errs) == 0 || !errors.Is(err, context.Canceled) {
						errs = append(errs, fmt.Errorf("failed to create pod %s (%s run): %w", name, c.Name, err))
					}
					mu.Unlock()
					cancel()
					continue
				}
				c.Timeline.Created(name, called, time.Now())
			}
		})
	}
feed:
	for _, name := range names {
		select {
		case next <- name:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return ctx.Err()
}

// Names returns n pod names: prefix and a five-digit number, so they sort
// in creation order.
func Names(prefix string, n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s%05d", prefix, i)
	}
	return names
}
