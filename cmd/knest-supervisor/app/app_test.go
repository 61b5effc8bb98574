package app

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/knest-dev/knest/internal/readyzcheck"
)

func TestParseKnestdFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		want    knestdFlags
		wantErr string
	}{
		{name: "the defaults are knestd's", args: []string{"--data-dir", "/d"}, want: knestdFlags{bindAddress: "127.0.0.1", securePort: 6443, dataDir: "/d"}},
		{
			name: "the flags it needs are read among knestd's others, bool flags included",
			args: []string{"--frozen", "--data-dir=/d", "--host-namespace", "t", "--bind-address", "0.0.0.0", "--pool-nodes", "--secure-port=7443", "--sleep-after", "10m"},
			want: knestdFlags{bindAddress: "0.0.0.0", securePort: 7443, dataDir: "/d"},
		},
		{name: "a data dir is required", args: []string{"--secure-port", "1"}, wantErr: "--data-dir is required"},
		{name: "the bind address must be an IP", args: []string{"--data-dir", "/d", "--bind-address", "localhost"}, wantErr: "not an IP address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseKnestdFlags(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestFailedChecksNamesWhatFailed(t *testing.T) {
	t.Parallel()
	body := "[+]ping ok\n[-]etcd failed: reason withheld\n[+]log ok\n[-]knest-syncer failed: reason withheld\nreadyz check failed\n"
	if got, want := failedChecks(body), "[-]etcd failed: reason withheld; [-]knest-syncer failed: reason withheld"; got != want {
		t.Errorf("failedChecks = %q, want %q", got, want)
	}
	if got := failedChecks("forbidden\n"); got != "forbidden" {
		t.Errorf("failedChecks of a short answer = %q", got)
	}
}

// TestTheWakeSkipsExactlyKnestdsOwnChecks keeps apiReadyz excluding the
// checks knestd registers (readyzcheck, shared with pkg/knestd, which the
// supervisor does not import: it links no control-plane code).
func TestTheWakeSkipsExactlyKnestdsOwnChecks(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(apiReadyz)
	if err != nil {
		t.Fatal(err)
	}
	excluded := u.Query()["exclude"]
	for _, name := range []string{readyzcheck.Syncer, readyzcheck.DNS} {
		if !slices.Contains(excluded, name) {
			t.Errorf("knestd's check %q is not excluded from the wake's readiness (%s)", name, apiReadyz)
		}
	}
	if u.Path != "/readyz" || len(excluded) != 2 {
		t.Errorf("apiReadyz %s: want /readyz without exactly knestd's two checks", apiReadyz)
	}
}
