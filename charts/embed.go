// Package charts embeds knest's Helm charts, so the knest CLI installs
// exactly the chart it was built with.
package charts

import (
	"embed"
	"fmt"
	"io/fs"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

//go:embed all:knest
var files embed.FS

// Knest loads the knest chart.
func Knest() (*chart.Chart, error) {
	var bufs []*loader.BufferedFile
	err := fs.WalkDir(files, "knest", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		bufs = append(bufs, &loader.BufferedFile{Name: strings.TrimPrefix(p, "knest/"), Data: data})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return loader.LoadFiles(bufs)
}

// KnestdRoleName is the name of knestd's host Role and of the
// ServiceAccount bound to it.
const KnestdRoleName = "knestd"

// KnestdRoleYAML is knestd's host Role as the chart holds it
// (files/knestd-role.yaml): the one source of that Role, which the chart
// installs, `knest dev` grants, and hack/manifests publishes as
// manifests/knestd-role.yaml.
func KnestdRoleYAML() []byte {
	data, err := files.ReadFile("knest/files/knestd-role.yaml")
	if err != nil {
		// The file is embedded at build time; its absence is a build bug.
		panic(fmt.Sprintf("charts: knestd-role.yaml is not embedded: %v", err))
	}
	return data
}

// KnestdRole returns knestd's host Role for a host namespace.
func KnestdRole(namespace string) (*rbacv1.Role, error) {
	var r rbacv1.Role
	if err := yaml.UnmarshalStrict(KnestdRoleYAML(), &r); err != nil {
		return nil, fmt.Errorf("knestd role manifest: %w", err)
	}
	r.Namespace = namespace
	return &r, nil
}
