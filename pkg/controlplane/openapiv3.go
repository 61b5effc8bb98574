package controlplane

import (
	"bytes"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	restful "github.com/emicklei/go-restful/v3"
	"github.com/munnerz/goautoneg"
	"k8s.io/klog/v2"
	"k8s.io/kube-openapi/pkg/builder3"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/common/restfuladapter"
	"k8s.io/kube-openapi/pkg/handler3"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// openAPIV3 serves the kube-apiserver's /openapi/v3 (the index and one
// document per group version) as upstream's routes.OpenAPI.InstallV3 and
// kube-openapi's handler3 do, with the same documents, hashes and headers,
// but without keeping every group version's spec resident.
//
// Upstream builds the spec of every built-in group version before the
// server serves and keeps it, and the index, which names each document by
// the hash of its JSON, makes handler3 marshal and keep every document's
// JSON too: ~20 MB of an idle tenant's heap (12 MB of specs, 8 MB of
// JSON), although a tenant's clients ask for a few group versions, if any
// (kubectl explain, client-side validation). Here the index is built on its
// first request: each group version's document is built, hashed and
// dropped, one at a time. A document is built again when a client asks for
// it and then kept (JSON, and protobuf once asked for), as upstream keeps
// every one. The built-in routes never change after the server is built,
// and the builds are deterministic, so a document built again hashes as
// the index says; if it did not, the index follows the document (and a
// client holding the old hash is redirected, as upstream does).
type openAPIV3 struct {
	config *common.OpenAPIV3Config
	// groups are the web services by group version path ("api/v1",
	// "apis/apps/v1"), as InstallV3 groups them.
	groups map[string][]*restful.WebService

	mu           sync.Mutex
	etags        map[string]string // group version -> hash of its JSON
	index        []byte            // nil until first asked for
	indexETag    string
	lastModified time.Time
	served       map[string]*openAPIV3Document
}

type openAPIV3Document struct {
	json, protobuf []byte
	lastModified   time.Time
}

const (
	openAPIV3JSON                = "json"
	openAPIV3Protobuf            = "com.github.proto-openapi.spec.v3.v1.0+protobuf"
	openAPIV3ProtobufDeprecated  = "com.github.proto-openapi.spec.v3@v1.0+protobuf"
	openAPIV3PathPrefix          = "/openapi/v3"
	openAPIV3ImmutableCacheYears = 1
)

func newOpenAPIV3(config *common.OpenAPIV3Config, webServices []*restful.WebService) *openAPIV3 {
	o := &openAPIV3{config: config, groups: map[string][]*restful.WebService{}, served: map[string]*openAPIV3Document{}}
	for _, ws := range webServices {
		// InstallV3 keys each web service by its root path without the
		// leading "/" (one web service per group version).
		o.groups[strings.TrimPrefix(ws.RootPath(), "/")] = []*restful.WebService{ws}
	}
	return o
}

// register serves the index and the documents on mux, at upstream's paths.
func (o *openAPIV3) register(mux common.PathHandlerByGroupVersion) {
	mux.Handle(openAPIV3PathPrefix, http.HandlerFunc(o.serveIndex))
	mux.HandlePrefix(openAPIV3PathPrefix+"/", http.HandlerFunc(o.serveGroupVersion))
}

// definitionsConfig is the configuration with the definitions computed
// once, for a run of builds: the v3 builder asks GetDefinitions on every
// build unless they are set, and knestd does not keep them between runs
// (releaseOpenAPIDefinitions).
func (o *openAPIV3) definitionsConfig() *common.OpenAPIV3Config {
	c := *o.config
	if c.Definitions == nil && c.GetDefinitions != nil {
		c.Definitions = c.GetDefinitions(func(name string) spec.Ref {
			defName, _ := c.GetDefinitionName(name)
			return spec.MustCreateRef("#/components/schemas/" + common.EscapeJsonPointer(defName))
		})
	}
	return &c
}

// build is InstallV3's build of one group version's document, marshalled
// as handler3 serves it.
func (o *openAPIV3) build(c *common.OpenAPIV3Config, gv string) ([]byte, error) {
	s, err := builder3.BuildOpenAPISpecFromRoutes(restfuladapter.AdaptWebServices(o.groups[gv]), c)
	if err != nil {
		return nil, fmt.Errorf("openapi v3 of %s: %w", gv, err)
	}
	if group, version, ok := openAPIGroupVersion(gv); ok {
		filterCrossRegisteredGVKs(s, group, version)
	}
	return json.Marshal(s)
}

func openAPIV3ETag(b []byte) string { return fmt.Sprintf("%X", sha512.Sum512(b)) }

func openAPIV3URL(gv, etag string) string {
	u := url.URL{Path: path.Join(openAPIV3PathPrefix, gv), RawQuery: url.Values{"hash": {etag}}.Encode()}
	return u.String()
}

// indexLocked builds the index on its first use: every document is built
// and hashed, and only the hashes are kept.
func (o *openAPIV3) indexLocked() error {
	if o.index != nil {
		return nil
	}
	c := o.definitionsConfig()
	etags := make(map[string]string, len(o.groups))
	for gv := range o.groups {
		b, err := o.build(c, gv)
		if err != nil {
			// InstallV3 leaves a group version it cannot build out.
			klog.ErrorS(err, "OpenAPI v3: group version left out of the index", "groupVersion", gv)
			continue
		}
		etags[gv] = openAPIV3ETag(b)
	}
	o.etags = etags
	return o.writeIndexLocked()
}

func (o *openAPIV3) writeIndexLocked() error {
	d := handler3.OpenAPIV3Discovery{Paths: make(map[string]handler3.OpenAPIV3DiscoveryGroupVersion, len(o.etags))}
	for gv, etag := range o.etags {
		d.Paths[gv] = handler3.OpenAPIV3DiscoveryGroupVersion{ServerRelativeURL: openAPIV3URL(gv, etag)}
	}
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	o.index, o.indexETag, o.lastModified = b, openAPIV3ETag(b), time.Now()
	return nil
}

// document returns a group version's document, built on first request.
func (o *openAPIV3) document(gv string, protobuf bool) ([]byte, string, time.Time, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.indexLocked(); err != nil {
		return nil, "", time.Time{}, err
	}
	etag, ok := o.etags[gv]
	if !ok {
		return nil, "", time.Time{}, errNoGroupVersion
	}
	d := o.served[gv]
	if d == nil {
		b, err := o.build(o.definitionsConfig(), gv)
		if err != nil {
			return nil, "", time.Time{}, err
		}
		d = &openAPIV3Document{json: b, lastModified: o.lastModified}
		o.served[gv] = d
		if got := openAPIV3ETag(b); got != etag {
			klog.InfoS("OpenAPI v3: a document built again differs from the one indexed; the index follows", "groupVersion", gv)
			o.etags[gv], etag = got, got
			d.lastModified = time.Now()
			if err := o.writeIndexLocked(); err != nil {
				return nil, "", time.Time{}, err
			}
		}
	}
	if !protobuf {
		return d.json, etag, d.lastModified, nil
	}
	if d.protobuf == nil {
		pb, err := handler3.ToV3ProtoBinary(d.json)
		if err != nil {
			return nil, "", time.Time{}, err
		}
		d.protobuf = pb
	}
	return d.protobuf, etag, d.lastModified, nil
}

var errNoGroupVersion = errors.New("no such group version")

func (o *openAPIV3) serveIndex(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	err := o.indexLocked()
	index, etag, modified := o.index, o.indexETag, o.lastModified
	o.mu.Unlock()
	if err != nil {
		klog.ErrorS(err, "OpenAPI v3: serving the index")
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.Header().Set("Etag", strconv.Quote(etag))
	w.Header().Set("Content-Type", "application/json")
	http.ServeContent(w, r, openAPIV3PathPrefix, modified, bytes.NewReader(index))
}

func (o *openAPIV3) serveGroupVersion(w http.ResponseWriter, r *http.Request) {
	gv := strings.TrimPrefix(r.URL.Path, openAPIV3PathPrefix+"/")
	accept := r.Header.Get("Accept")
	if accept == "" {
		accept = "*/*"
	}
	w.Header().Add("Vary", "Accept")
	for _, clause := range goautoneg.ParseAccept(accept) {
		for _, subType := range []string{openAPIV3JSON, openAPIV3Protobuf, openAPIV3ProtobufDeprecated} {
			if clause.Type != "application" && clause.Type != "*" {
				continue
			}
			if clause.SubType != subType && clause.SubType != "*" {
				continue
			}
			protobuf := subType != openAPIV3JSON
			data, etag, modified, err := o.document(gv, protobuf)
			if err == errNoGroupVersion {
				http.NotFound(w, r)
				return
			}
			if err != nil {
				klog.ErrorS(err, "OpenAPI v3: serving a group version", "groupVersion", gv)
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			contentType := "application/" + openAPIV3JSON
			if protobuf {
				contentType = "application/" + openAPIV3Protobuf
			}
			w.Header().Set("Content-Type", contentType)
			w.Header().Set("Etag", strconv.Quote(etag))
			if hash := r.URL.Query().Get("hash"); hash != "" {
				if hash != etag {
					http.Redirect(w, r, openAPIV3URL(gv, etag), http.StatusMovedPermanently)
					return
				}
				w.Header().Set("Cache-Control", "public, immutable")
				w.Header().Set("Expires", time.Now().AddDate(openAPIV3ImmutableCacheYears, 0, 0).Format(time.RFC1123))
			}
			http.ServeContent(w, r, "", modified, bytes.NewReader(data))
			return
		}
	}
	w.WriteHeader(http.StatusNotAcceptable)
}

// openAPIGroupVersion is InstallV3's reading of a group version path:
// "api/v1" is the core group, "apis/<group>/<version>" any other.
func openAPIGroupVersion(p string) (group, version string, ok bool) {
	parts := strings.SplitN(p, "/", 4)
	switch {
	case len(parts) == 2 && parts[0] == "api":
		return "", parts[1], true
	case len(parts) == 3 && parts[0] == "apis":
		return parts[1], parts[2], true
	}
	return "", "", false
}

// filterCrossRegisteredGVKs does what InstallV3 does to each built-in
// document (its filterScopedGVKs, unexported): the meta types registered
// into every group (WatchEvent, DeleteOptions) list only this group
// version and core/v1 in x-kubernetes-group-version-kind, not every group.
func filterCrossRegisteredGVKs(s *spec3.OpenAPI, group, version string) {
	if s == nil || s.Components == nil {
		return
	}
	names := make([]string, 0, len(s.Components.Schemas))
	for name := range s.Components.Schemas {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		schema := s.Components.Schemas[name]
		if schema == nil {
			continue
		}
		gvks, ok := schema.Extensions["x-kubernetes-group-version-kind"].([]interface{})
		if !ok || len(gvks) <= 1 {
			continue
		}
		first, _ := gvks[0].(map[string]interface{})
		if kind, _ := first["kind"].(string); kind != "WatchEvent" && kind != "DeleteOptions" {
			continue
		}
		var kept []interface{}
		for _, item := range gvks {
			m, ok := item.(map[string]interface{})
			if !ok {
				continue
			}
			g, gok := m["group"].(string)
			v, vok := m["version"].(string)
			if gok && vok && ((g == group && v == version) || (g == "" && v == "v1")) {
				kept = append(kept, item)
			}
		}
		if len(kept) > 0 {
			schema.Extensions["x-kubernetes-group-version-kind"] = kept
		} else {
			delete(schema.Extensions, "x-kubernetes-group-version-kind")
		}
	}
}
