package metrics

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		text string
		want Snapshot
	}{
		{
			name: "a sample without labels is its name and value",
			text: "go_gc_heap_live_bytes 1.2345e+08\n",
			want: Snapshot{{Name: "go_gc_heap_live_bytes", Labels: map[string]string{}, Value: 1.2345e+08}},
		},
		{
			name: "labels are read, comments and blank lines skipped",
			text: "# HELP x y\n# TYPE rest_client_requests_total counter\n\nrest_client_requests_total{code=\"201\",host=\"127.0.0.1:6443\",method=\"POST\"} 2001\n",
			want: Snapshot{{Name: "rest_client_requests_total", Labels: map[string]string{"code": "201", "host": "127.0.0.1:6443", "method": "POST"}, Value: 2001}},
		},
		{
			name: "escaped quotes and commas stay in a label value, a timestamp is ignored",
			text: `m{a="x\"y,z}",b="2"} 3 1700000000` + "\n",
			want: Snapshot{{Name: "m", Labels: map[string]string{"a": `x"y,z}`, "b": "2"}, Value: 3}},
		},
		{
			name: "a histogram is its buckets, sum and count",
			text: `# TYPE r histogram
r_bucket{kind="Pod",le="0.1"} 4
r_bucket{kind="Pod",le="+Inf"} 5
r_sum{kind="Pod"} 0.25
r_count{kind="Pod"} 5
`,
			want: Snapshot{
				{Name: "r_bucket", Labels: map[string]string{"kind": "Pod", "le": "0.1"}, Value: 4},
				{Name: "r_bucket", Labels: map[string]string{"kind": "Pod", "le": "+Inf"}, Value: 5},
				{Name: "r_sum", Labels: map[string]string{"kind": "Pod"}, Value: 0.25},
				{Name: "r_count", Labels: map[string]string{"kind": "Pod"}, Value: 5},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(strings.NewReader(tt.text))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRefusesBrokenText(t *testing.T) {
	t.Parallel()
	if _, err := Parse(strings.NewReader("m{a=\"x} 1\n")); err == nil {
		t.Error("an unterminated label value was accepted")
	}
}

func mustParse(t *testing.T, text string) Snapshot {
	t.Helper()
	m, err := Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDeltaGroupsByLabels(t *testing.T) {
	t.Parallel()
	before := mustParse(t, `w{cluster="host",kind="Pod",op="create"} 1
w{cluster="host",kind="Secret",op="create"} 5
`)
	after := mustParse(t, `w{cluster="host",kind="Pod",op="create"} 11
w{cluster="host",kind="Secret",op="create"} 5
w{cluster="tenant",kind="Pod",op="status"} 4
`)
	got := Delta(before, after, "w", map[string]string{"cluster": "host"}, "kind", "op")
	if diff := cmp.Diff(map[string]float64{"Pod create": 10}, got); diff != "" {
		t.Errorf("Delta (-want +got):\n%s", diff)
	}
}

func TestSum(t *testing.T) {
	t.Parallel()
	m := mustParse(t, `r{method="GET",code="200"} 3
r{method="GET",code="404"} 1
r{method="POST",code="201"} 7
`)
	tests := []struct {
		name      string
		metric    string
		match     map[string]string
		want      float64
		wantFound bool
	}{
		{name: "every sample of a metric", metric: "r", want: 11, wantFound: true},
		{name: "the samples whose labels match", metric: "r", match: map[string]string{"method": "GET"}, want: 4, wantFound: true},
		{name: "no sample matches", metric: "r", match: map[string]string{"method": "PUT"}},
		{name: "an unknown metric", metric: "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, found := m.Sum(tt.metric, tt.match)
			if got != tt.want || found != tt.wantFound {
				t.Errorf("Sum = %v, %v; want %v, %v", got, found, tt.want, tt.wantFound)
			}
		})
	}
}

func TestMeanDelta(t *testing.T) {
	t.Parallel()
	before := mustParse(t, `# TYPE d histogram
d_bucket{verb="POST",le="+Inf"} 2
d_sum{verb="POST"} 0.5
d_count{verb="POST"} 2
d_bucket{verb="GET",le="+Inf"} 3
d_sum{verb="GET"} 0.3
d_count{verb="GET"} 3
`)
	after := mustParse(t, `# TYPE d histogram
d_bucket{verb="POST",le="+Inf"} 12
d_sum{verb="POST"} 0.55
d_count{verb="POST"} 12
d_bucket{verb="GET",le="+Inf"} 3
d_sum{verb="GET"} 0.3
d_count{verb="GET"} 3
`)
	got := MeanDelta(before, after, "d", nil, "verb")
	// Ten new POSTs took 0.05 s together; no new GET.
	if len(got) != 1 || got["POST"] < 0.00499 || got["POST"] > 0.00501 {
		t.Errorf("MeanDelta = %v, want POST 0.005 only", got)
	}
}
