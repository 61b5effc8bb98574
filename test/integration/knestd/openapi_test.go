package knestd

import (
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/knest-dev/knest/test/integration/framework"
)

// TestIntegrationOpenAPI checks the OpenAPI documents knestd serves now
// that the kube-apiserver's v2 spec is built on the first request instead
// of at start (pkg/controlplane/openapi.go): /openapi/v2 has every path that
// upstream's /openapi/v3 lists for each group version, and the definitions
// of the built-in kinds with their group-version-kind, on the first request
// and on a second one (from the cache).
func TestIntegrationOpenAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	k := framework.Start(t, t.TempDir(), "--name=openapi", fmt.Sprintf("--secure-port=%d", framework.FreePort(t)))
	k.WaitReady(t, readyTimeout)
	client := framework.Client(t, framework.AdminConfig(t, k.AdminKubeconfig()))
	rc := client.Discovery().RESTClient()
	ctx := t.Context()

	var v3 struct {
		Paths map[string]struct {
			ServerRelativeURL string `json:"serverRelativeURL"`
		} `json:"paths"`
	}
	body, err := rc.Get().AbsPath("/openapi/v3").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(body, &v3); err != nil {
		t.Fatal(err)
	}
	for _, gv := range []string{"api/v1", "apis/apps/v1", "apis/rbac.authorization.k8s.io/v1", "apis/apiextensions.k8s.io/v1", "apis/apiregistration.k8s.io/v1"} {
		if _, ok := v3.Paths[gv]; !ok {
			t.Errorf("/openapi/v3 lacks %s", gv)
		}
	}

	type v2Doc struct {
		Paths       map[string]json.RawMessage `json:"paths"`
		Definitions map[string]struct {
			GVK []map[string]string `json:"x-kubernetes-group-version-kind"`
		} `json:"definitions"`
	}
	getV2 := func() (v2Doc, time.Duration) {
		t.Helper()
		var doc v2Doc
		begin := time.Now()
		body, err := rc.Get().AbsPath("/openapi/v2").SetHeader("Accept", "application/json").DoRaw(ctx)
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(begin)
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatal(err)
		}
		return doc, took
	}
	first, took := getV2()
	t.Logf("first /openapi/v2: %d paths, %d definitions, %v", len(first.Paths), len(first.Definitions), took)

	missing := 0
	for gv, ref := range v3.Paths {
		if !strings.HasPrefix(gv, "api/") && !strings.HasPrefix(gv, "apis/") {
			continue
		}
		var group struct {
			Paths map[string]json.RawMessage `json:"paths"`
		}
		u, err := url.Parse(ref.ServerRelativeURL)
		if err != nil {
			t.Fatalf("%s: %v", gv, err)
		}
		hash := u.Query().Get("hash")
		body, err := rc.Get().AbsPath(u.Path).Param("hash", hash).SetHeader("Accept", "application/json").DoRaw(ctx)
		if err != nil {
			t.Fatalf("%s: %v", gv, err)
		}
		// The index names each document by the hash of its JSON: knestd
		// builds the kube-apiserver's documents again when asked for.
		if got := fmt.Sprintf("%X", sha512.Sum512(body)); got != hash {
			t.Errorf("%s: the document's hash is %.16s..., the index says %.16s...", gv, got, hash)
		}
		if err := json.Unmarshal(body, &group); err != nil {
			t.Fatalf("%s: %v", gv, err)
		}
		for p := range group.Paths {
			if _, ok := first.Paths[p]; !ok {
				missing++
				if missing <= 10 {
					t.Errorf("/openapi/v2 lacks %s (in /openapi/v3 %s)", p, gv)
				}
			}
		}
	}
	if missing > 10 {
		t.Errorf("... and %d more", missing-10)
	}

	for name, want := range map[string]string{
		"io.k8s.api.core.v1.Pod":                                             "Pod",
		"io.k8s.api.apps.v1.Deployment":                                      "Deployment",
		"io.k8s.api.rbac.v1.ClusterRole":                                     "ClusterRole",
		"io.k8s.api.scheduling.v1.PriorityClass":                             "PriorityClass",
		"io.k8s.api.networking.v1.NetworkPolicy":                             "NetworkPolicy",
		"io.k8s.api.coordination.v1.Lease":                                   "Lease",
		"io.k8s.api.batch.v1.CronJob":                                        "CronJob",
		"io.k8s.api.storage.v1.StorageClass":                                 "StorageClass",
		"io.k8s.api.admissionregistration.v1.ValidatingWebhookConfiguration": "ValidatingWebhookConfiguration",
	} {
		def, ok := first.Definitions[name]
		if !ok {
			t.Errorf("/openapi/v2 lacks the definition %s", name)
			continue
		}
		if len(def.GVK) == 0 || def.GVK[0]["kind"] != want {
			t.Errorf("definition %s: x-kubernetes-group-version-kind %v, want kind %s", name, def.GVK, want)
		}
	}

	second, _ := getV2()
	if len(second.Paths) != len(first.Paths) || len(second.Definitions) != len(first.Definitions) {
		t.Errorf("second /openapi/v2: %d paths, %d definitions; the first had %d, %d", len(second.Paths), len(second.Definitions), len(first.Paths), len(first.Definitions))
	}
}
