package controlplane

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	restful "github.com/emicklei/go-restful/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/mux"
	"k8s.io/apiserver/pkg/server/routes"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/handler3"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
	_ "k8s.io/kubernetes/pkg/apis/apps/install"
	_ "k8s.io/kubernetes/pkg/apis/core/install"
	generatedopenapi "k8s.io/kubernetes/pkg/generated/openapi"
)

// testWebServices are two group versions' routes shaped like the API
// server's: lists, watches (WatchEvent, registered into every group) and
// deletes (DeleteOptions, likewise).
func testWebServices() *restful.Container {
	c := restful.NewContainer()
	c.Add(testWebService("/api/v1", "CoreV1", "pods", "Pod", corev1.PodList{}, corev1.Pod{}))
	c.Add(testWebService("/apis/apps/v1", "AppsV1", "deployments", "Deployment", appsv1.DeploymentList{}, metav1.Status{}))
	return c
}

func testWebService(root, prefix, resource, kind string, list, deleted any) *restful.WebService {
	h := func(*restful.Request, *restful.Response) {}
	ws := new(restful.WebService).Path(root).Produces("application/json").Consumes("*/*")
	ns := ws.PathParameter("namespace", "namespace")
	ws.Route(ws.GET("/namespaces/{namespace}/"+resource).To(h).Operation("list"+prefix+"Namespaced"+kind).
		Param(ns).Returns(http.StatusOK, "OK", list))
	ws.Route(ws.GET("/watch/namespaces/{namespace}/"+resource).To(h).Operation("watch"+prefix+"Namespaced"+kind+"List").
		Param(ns).Returns(http.StatusOK, "OK", metav1.WatchEvent{}))
	ws.Route(ws.DELETE("/namespaces/{namespace}/"+resource+"/{name}").To(h).Operation("delete"+prefix+"Namespaced"+kind).
		Param(ns).Param(ws.PathParameter("name", "name")).Reads(metav1.DeleteOptions{}).Returns(http.StatusOK, "OK", deleted))
	return ws
}

func testV3Config() *common.OpenAPIV3Config {
	c := genericapiserver.DefaultOpenAPIV3Config(generatedopenapi.GetOpenAPIDefinitions, openapinamer.NewDefinitionNamer(legacyscheme.Scheme))
	c.Info.Version = "v1.37.2" // as Complete sets it
	return c
}

func get(t *testing.T, h http.Handler, path, accept string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if accept != "" {
		r.Header.Set("Accept", accept)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestOpenAPIV3ServesUpstreamsDocuments serves the same routes with
// upstream's InstallV3 and with openAPIV3, and checks that clients get the
// same index, documents (JSON and protobuf), hashes and cache headers, and
// that openAPIV3 keeps no document it was not asked for.
func TestOpenAPIV3ServesUpstreamsDocuments(t *testing.T) {
	c := testWebServices()
	upstream := mux.NewPathRecorderMux("upstream")
	routes.OpenAPI{V3Config: testV3Config()}.InstallV3(c, upstream)

	cfg := testV3Config()
	keepNoOpenAPIBuilder(nil, cfg)
	releaseOpenAPIDefinitions(cfg)
	o := newOpenAPIV3(cfg, c.RegisteredWebServices())
	ours := mux.NewPathRecorderMux("knestd")
	o.register(ours)

	up, got := get(t, upstream, "/openapi/v3", ""), get(t, ours, "/openapi/v3", "")
	if up.Code != http.StatusOK || got.Code != http.StatusOK {
		t.Fatalf("index: upstream %d, knestd %d", up.Code, got.Code)
	}
	if up.Body.String() != got.Body.String() {
		t.Fatalf("index differs:\nupstream %s\nknestd   %s", up.Body, got.Body)
	}
	for _, h := range []string{"Etag", "Content-Type"} {
		if up.Header().Get(h) != got.Header().Get(h) {
			t.Errorf("index %s: upstream %q, knestd %q", h, up.Header().Get(h), got.Header().Get(h))
		}
	}
	if n := len(o.served); n != 0 {
		t.Errorf("after the index knestd keeps %d documents, want none", n)
	}
	var index handler3.OpenAPIV3Discovery
	if err := json.Unmarshal(got.Body.Bytes(), &index); err != nil {
		t.Fatal(err)
	}
	if len(index.Paths) != 2 {
		t.Fatalf("index paths %v, want api/v1 and apis/apps/v1", index.Paths)
	}
	for gv, p := range index.Paths {
		for _, accept := range []string{"application/json", "application/com.github.proto-openapi.spec.v3.v1.0+protobuf", "application/com.github.proto-openapi.spec.v3@v1.0+protobuf", "*/*", ""} {
			up, got := get(t, upstream, p.ServerRelativeURL, accept), get(t, ours, p.ServerRelativeURL, accept)
			if up.Code != http.StatusOK || got.Code != up.Code {
				t.Errorf("%s (Accept %q): upstream %d, knestd %d", gv, accept, up.Code, got.Code)
				continue
			}
			if up.Body.String() != got.Body.String() {
				t.Errorf("%s (Accept %q): documents differ (%d and %d bytes)", gv, accept, up.Body.Len(), got.Body.Len())
			}
			for _, h := range []string{"Etag", "Content-Type", "Cache-Control", "Vary"} {
				if up.Header().Get(h) != got.Header().Get(h) {
					t.Errorf("%s (Accept %q) %s: upstream %q, knestd %q", gv, accept, h, up.Header().Get(h), got.Header().Get(h))
				}
			}
			if got.Header().Get("Expires") == "" {
				t.Errorf("%s: no Expires with a hash", gv)
			}
		}
		stale := "/openapi/v3/" + gv + "?hash=0123"
		up, got := get(t, upstream, stale, "application/json"), get(t, ours, stale, "application/json")
		if up.Code != http.StatusMovedPermanently || got.Code != up.Code || up.Header().Get("Location") != got.Header().Get("Location") {
			t.Errorf("%s with a stale hash: upstream %d %q, knestd %d %q", gv, up.Code, up.Header().Get("Location"), got.Code, got.Header().Get("Location"))
		}
	}
	if n := len(o.served); n != 2 {
		t.Errorf("knestd keeps %d documents after both were asked for, want 2", n)
	}
	if w := get(t, ours, "/openapi/v3/apis/nothing.example/v1", "application/json"); w.Code != http.StatusNotFound {
		t.Errorf("unknown group version: %d, want 404", w.Code)
	}
	if w := get(t, ours, "/openapi/v3/api/v1", "text/html"); w.Code != http.StatusNotAcceptable {
		t.Errorf("Accept text/html: %d, want 406", w.Code)
	}
}
