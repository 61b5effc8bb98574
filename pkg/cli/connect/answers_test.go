package connect

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// A tenant API that answers but is not ready yet (right after create, its
// syncer's caches syncing) is asked again until it is; one that is never
// ready fails with the reason; a refused credential or no answer fails at
// once.
func TestCheckAnswersWaitsForAnAnsweringAPIToBeReady(t *testing.T) {
	defer func(w time.Duration) { readyWait = w }(readyWait)
	readyWait = time.Second
	tests := []struct {
		name       string
		notReady   int32 // answers 500 this many times, then ok
		code       int   // answer with this code instead (with notReady -1)
		wantErr    string
		maxQueries int32
	}{
		{name: "ready after two answers that it is not", notReady: 2, maxQueries: 3},
		{name: "never ready", notReady: 1 << 30, wantErr: "answers but is not ready after 1s"},
		{name: "a refused credential fails at once", notReady: -1, code: http.StatusUnauthorized, wantErr: "does not answer", maxQueries: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var queries atomic.Int32
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/readyz" {
					http.NotFound(w, r)
					return
				}
				n := queries.Add(1)
				switch {
				case tc.notReady < 0:
					http.Error(w, "refused", tc.code)
				case n <= tc.notReady:
					http.Error(w, "[-]knest-syncer failed: reason withheld\nreadyz check failed", http.StatusInternalServerError)
				default:
					_, _ = w.Write([]byte("ok"))
				}
			}))
			defer srv.Close()
			err := checkAnswers(context.Background(), configFor(srv), srv.URL)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("checkAnswers: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("checkAnswers: %v, want an error with %q", err, tc.wantErr)
			}
			if tc.maxQueries > 0 && queries.Load() > tc.maxQueries {
				t.Errorf("%d queries of /readyz, want at most %d", queries.Load(), tc.maxQueries)
			}
		})
	}
	t.Run("no answer fails at once", func(t *testing.T) {
		srv := httptest.NewTLSServer(http.NotFoundHandler())
		cfg := configFor(srv)
		srv.Close()
		start := time.Now()
		err := checkAnswers(context.Background(), cfg, srv.URL)
		if err == nil || !strings.Contains(err.Error(), "does not answer") {
			t.Fatalf("checkAnswers: %v, want does not answer", err)
		}
		if d := time.Since(start); d >= readyWait {
			t.Errorf("took %s: a closed server is not waited for", d)
		}
	})
}

func configFor(srv *httptest.Server) *clientcmdapi.Config {
	cfg := clientcmdapi.NewConfig()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	cfg.Clusters["t"] = &clientcmdapi.Cluster{Server: srv.URL, CertificateAuthorityData: ca}
	cfg.AuthInfos["t"] = &clientcmdapi.AuthInfo{Token: "x"}
	cfg.Contexts["t"] = &clientcmdapi.Context{Cluster: "t", AuthInfo: "t"}
	cfg.CurrentContext = "t"
	return cfg
}
