package controlplane

import (
	"runtime"
	"testing"
	"time"

	restful "github.com/emicklei/go-restful/v3"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/kube-openapi/pkg/builder"
	"k8s.io/kube-openapi/pkg/builder3"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/common/restfuladapter"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
)

// TestOpenAPIBuildersAreNotKeptByTheirConfiguration builds a v2 and a v3
// spec as the API servers do, from upstream's default configurations, and
// checks that the definitions the builders asked for are garbage once the
// specs are built: the configurations (which live as long as the server)
// must not keep them. Without keepNoOpenAPIBuilder upstream's builders keep
// them through the operation-ID function they set on the configuration,
// and upstream's v3 configuration keeps its own until
// releaseOpenAPIDefinitions.
func TestOpenAPIBuildersAreNotKeptByTheirConfiguration(t *testing.T) {
	for _, keep := range []bool{false, true} {
		name := "fixed"
		if keep {
			name = "upstream (control)"
		}
		t.Run(name, func(t *testing.T) {
			collected := make(chan string, 16)
			defs := func(label string) common.GetOpenAPIDefinitions {
				return func(ref common.ReferenceCallback) map[string]common.OpenAPIDefinition {
					// A large definition, as every built-in type's are, with
					// a cleanup that reports when nothing holds it.
					marker := &spec.SchemaOrArray{Schema: spec.StringProperty()}
					runtime.AddCleanup(marker, func(l string) { collected <- l }, label)
					return map[string]common.OpenAPIDefinition{
						"io.k8s.test.Widget": {Schema: spec.Schema{SchemaProps: spec.SchemaProps{Type: []string{"object"}, Items: marker}}},
					}
				}
			}
			namer := openapinamer.NewDefinitionNamer(legacyscheme.Scheme)
			v2 := genericapiserver.DefaultOpenAPIConfig(defs("v2"), namer)
			v3 := genericapiserver.DefaultOpenAPIV3Config(defs("v3"), namer)
			if !keep {
				keepNoOpenAPIBuilder(v2, v3)
			}
			ws := new(restful.WebService).Path("/apis/test.k8s.io/v1")
			ws.Route(ws.GET("/widgets").Operation("listWidgets").To(func(*restful.Request, *restful.Response) {}))
			routes := restfuladapter.AdaptWebServices([]*restful.WebService{ws})
			if _, err := builder.BuildOpenAPISpecFromRoutes(routes, v2); err != nil {
				t.Fatalf("v2 build: %v", err)
			}
			if _, err := builder3.BuildOpenAPISpecFromRoutes(routes, v3); err != nil {
				t.Fatalf("v3 build: %v", err)
			}
			if !keep {
				releaseOpenAPIDefinitions(v3)
				// A build after the release still has every definition.
				if _, err := builder3.BuildOpenAPISpecFromRoutes(routes, v3); err != nil {
					t.Fatalf("v3 build after the release: %v", err)
				}
			}
			got := map[string]bool{}
			deadline := time.Now().Add(3 * time.Second)
			for len(got) < 2 && time.Now().Before(deadline) {
				runtime.GC()
				select {
				case l := <-collected:
					got[l] = true
				case <-time.After(50 * time.Millisecond):
				}
			}
			if keep {
				if len(got) != 0 {
					t.Errorf("upstream's builders no longer keep their definitions (collected: %v): keepNoOpenAPIBuilder may be unneeded", got)
				}
			} else if !got["v2"] || !got["v3"] {
				t.Errorf("definitions collected after the builds: %v, want v2 and v3: a configuration keeps a builder", got)
			}
			runtime.KeepAlive(v2)
			runtime.KeepAlive(v3)
		})
	}
}
