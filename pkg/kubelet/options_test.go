package kubelet

import (
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestLogOptions(t *testing.T) {
	t.Parallel()
	params, err := newParameterCodec()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{params: params}
	since := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	tests := []struct {
		name    string
		in      url.Values
		want    *corev1.PodLogOptions
		wantErr bool
	}{
		{name: "no options", in: url.Values{}, want: &corev1.PodLogOptions{}},
		{
			name: "every option the API server sends",
			in: url.Values{
				"follow": {"true"}, "previous": {"true"}, "timestamps": {"true"}, "sinceSeconds": {"60"},
				"tailLines": {"10"}, "limitBytes": {"4096"}, "stream": {"All"},
			},
			want: &corev1.PodLogOptions{
				Follow: true, Previous: true, Timestamps: true, SinceSeconds: ptr.To[int64](60),
				TailLines: ptr.To[int64](10), LimitBytes: ptr.To[int64](4096), Stream: ptr.To("All"),
			},
		},
		{name: "a since time", in: url.Values{"sinceTime": {"2026-01-02T03:04:05Z"}}, want: &corev1.PodLogOptions{SinceTime: &since}},
		{name: "one stream", in: url.Values{"stream": {"Stderr"}}, want: &corev1.PodLogOptions{Stream: ptr.To("Stderr")}},
		{name: "the older tail", in: url.Values{"tail": {"2"}}, want: &corev1.PodLogOptions{TailLines: ptr.To[int64](2)}},
		{name: "tail=all is every line", in: url.Values{"tail": {"all"}, "tailLines": {"3"}}, want: &corev1.PodLogOptions{}},
		{name: "tail wins over tailLines, as on the kubelet", in: url.Values{"tail": {"1"}, "tailLines": {"3"}}, want: &corev1.PodLogOptions{TailLines: ptr.To[int64](1)}},
		{
			// The API server's own reading: anything but "false" and "0"
			// is true.
			name: "a flag reads as the API server reads it", in: url.Values{"follow": {"1"}, "previous": {"0"}},
			want: &corev1.PodLogOptions{Follow: true},
		},
		{
			name: "what the caller may not set is dropped",
			in:   url.Values{"container": {"other"}, "insecureSkipTLSVerifyBackend": {"true"}},
			want: &corev1.PodLogOptions{},
		},
		{name: "a count that is not a number", in: url.Values{"tailLines": {"ten"}}, wantErr: true},
		{name: "a time that is not RFC 3339", in: url.Values{"sinceTime": {"yesterday"}}, wantErr: true},
		{name: "a negative tailLines", in: url.Values{"tailLines": {"-1"}}, wantErr: true},
		{name: "a limitBytes of zero", in: url.Values{"limitBytes": {"0"}}, wantErr: true},
		{name: "a sinceSeconds of zero", in: url.Values{"sinceSeconds": {"0"}}, wantErr: true},
		{name: "since in seconds and as a time", in: url.Values{"sinceSeconds": {"5"}, "sinceTime": {"2026-01-02T03:04:05Z"}}, wantErr: true},
		{name: "an unknown stream", in: url.Values{"stream": {"Stdlog"}}, wantErr: true},
		{name: "tailLines of one stream", in: url.Values{"stream": {"Stdout"}, "tailLines": {"1"}}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := s.logOptions(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Errorf("no error, got %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("logOptions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStreamOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		query   string
		want    [4]bool // stdin, stdout, stderr, tty
		wantErr bool
	}{
		{name: "every stream and a TTY, stderr merged into the TTY", query: "input=1&output=1&error=1&tty=1", want: [4]bool{true, true, false, true}},
		{name: "stdout only", query: "output=1", want: [4]bool{false, true, false, false}},
		{name: "the API's names are not the kubelet's", query: "stdout=true", wantErr: true},
		{name: "no stream", query: "command=date", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := streamOptions(httptest.NewRequest("POST", "/exec/default/app/main?"+tc.query, nil))
			if tc.wantErr {
				if err == nil {
					t.Errorf("no error, got %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, [4]bool{got.Stdin, got.Stdout, got.Stderr, got.TTY}); diff != "" {
				t.Errorf("streams (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPortForwardOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		query     string
		websocket bool
		want      []int32
		wantErr   bool
	}{
		{name: "WebSocket: comma-separated and repeated ports", query: "port=8080,9090&port=22", websocket: true, want: []int32{8080, 9090, 22}},
		{name: "WebSocket: no port", websocket: true, wantErr: true},
		{name: "WebSocket: a port out of range", query: "port=70000", websocket: true, wantErr: true},
		{name: "SPDY: the streams name the ports, not the query", query: "port=8080"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/portForward/default/app?"+tc.query, nil)
			if tc.websocket {
				r.Header.Set("Connection", "Upgrade")
				r.Header.Set("Upgrade", "websocket")
			}
			got, err := portForwardOptions(r)
			if tc.wantErr {
				if err == nil {
					t.Errorf("no error, got %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(&corev1.PodPortForwardOptions{Ports: tc.want}, got); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
		})
	}
}
