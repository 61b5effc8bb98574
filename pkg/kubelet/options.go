package kubelet

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	k8scorev1 "k8s.io/kubernetes/pkg/apis/core/v1"
)

// newParameterCodec reads query parameters into core/v1 options as the API
// server and the kubelet do. client-go's scheme can write options into a
// query but not read them back: the conversions from url.Values are
// generated in k8s.io/kubernetes only.
func newParameterCodec() (runtime.ParameterCodec, error) {
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := k8scorev1.RegisterConversions(scheme); err != nil {
		return nil, err
	}
	return runtime.NewParameterCodec(scheme), nil
}

// logOptions reads a containerLogs query, which is PodLogOptions' query
// (the older "tail" too, as the kubelet reads it), and checks it as the API
// server does. The container and the TLS flag are not the caller's to set:
// the path names the container, and how a backend reaches its logs is its
// own business.
func (s *Server) logOptions(q url.Values) (*corev1.PodLogOptions, error) {
	q = maps.Clone(q) // Set and Del replace values, never edit them.
	if tail := q.Get("tail"); tail != "" {
		q.Del("tail")
		q.Set("tailLines", tail)
		if tail == "all" {
			q.Del("tailLines")
		}
	}
	opts := &corev1.PodLogOptions{}
	if err := s.params.DecodeParameters(q, corev1.SchemeGroupVersion, opts); err != nil {
		return nil, err
	}
	opts.TypeMeta = metav1.TypeMeta{}
	opts.Container, opts.InsecureSkipTLSVerifyBackend = "", false
	return opts, validateLogOptions(opts)
}

// validateLogOptions refuses what the API server's validation refuses.
func validateLogOptions(opts *corev1.PodLogOptions) error {
	var errs []error
	if opts.TailLines != nil && *opts.TailLines < 0 {
		errs = append(errs, fmt.Errorf("tailLines=%d is negative", *opts.TailLines))
	}
	if opts.LimitBytes != nil && *opts.LimitBytes < 1 {
		errs = append(errs, fmt.Errorf("limitBytes=%d is not positive", *opts.LimitBytes))
	}
	if opts.SinceSeconds != nil && *opts.SinceSeconds < 1 {
		errs = append(errs, fmt.Errorf("sinceSeconds=%d is not positive", *opts.SinceSeconds))
	}
	if opts.SinceSeconds != nil && opts.SinceTime != nil {
		errs = append(errs, errors.New("sinceSeconds and sinceTime are exclusive"))
	}
	if opts.Stream != nil {
		switch *opts.Stream {
		case corev1.LogStreamStdout, corev1.LogStreamStderr:
			if opts.TailLines != nil {
				errs = append(errs, fmt.Errorf("tailLines and stream=%s are exclusive", *opts.Stream))
			}
		case corev1.LogStreamAll:
		default:
			errs = append(errs, fmt.Errorf("stream=%q is none of %s, %s and %s", *opts.Stream, corev1.LogStreamStdout, corev1.LogStreamStderr, corev1.LogStreamAll))
		}
	}
	return errors.Join(errs...)
}

// streamOptions reads the streams an exec or attach asks for, with the
// kubelet's own reading of its query (input, output, error and tty set to
// "1"): at least one stream, and no stderr with a TTY, which merges it
// into stdout.
func streamOptions(r *http.Request) (*remotecommand.Options, error) {
	return remotecommand.NewOptions(r)
}

// portForwardOptions reads the ports of a port-forward, with the kubelet's
// own reading: a WebSocket request names them in its query ("port", comma
// separated), an SPDY one in each stream.
func portForwardOptions(r *http.Request) (*corev1.PodPortForwardOptions, error) {
	opts, err := portforward.NewV4Options(r)
	if err != nil {
		return nil, err
	}
	return &corev1.PodPortForwardOptions{Ports: opts.Ports}, nil
}
