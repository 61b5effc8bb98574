// Command release packages knest's release artifacts that need more than
// `go build`: the Helm chart (packaged, and pushed to an OCI registry with
// the Helm SDK) and an SPDX SBOM of built binaries. hack/release.sh runs it.
//
//	go run ./hack/release chart --out DIR [--push oci://REGISTRY/REPO]
//	go run ./hack/release sbom --out FILE --name NAME --version V BINARY...
package main

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/registry"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "release: "+err.Error())
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: release chart|sbom [flags]")
	}
	switch args[0] {
	case "chart":
		return chart(args[1:])
	case "sbom":
		return sbom(args[1:])
	}
	return fmt.Errorf("unknown command %q (chart or sbom)", args[0])
}

// chart packages charts/knest into out, as `helm package` does, and pushes
// it to push (oci://host/path) when set, as `helm push` does, with the
// credentials of `helm registry login`.
func chart(args []string) error {
	fs := flag.NewFlagSet("chart", flag.ContinueOnError)
	dir := fs.String("chart", "charts/knest", "chart directory")
	out := fs.String("out", "_output/release", "directory the .tgz is written to")
	push := fs.String("push", "", "OCI registry to push the chart to, oci://host/path (empty: no push)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := loader.LoadDir(*dir)
	if err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	path, err := chartutil.Save(c, *out)
	if err != nil {
		return fmt.Errorf("failed to package the chart: %w", err)
	}
	fmt.Println(path)
	if *push == "" {
		return nil
	}
	if !strings.HasPrefix(*push, "oci://") {
		return fmt.Errorf("--push %q: want oci://host/path", *push)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	client, err := registry.NewClient(registry.ClientOptEnableCache(true))
	if err != nil {
		return err
	}
	ref := fmt.Sprintf("%s/%s:%s", strings.TrimSuffix(strings.TrimPrefix(*push, "oci://"), "/"), c.Name(), c.Metadata.Version)
	res, err := client.Push(data, ref, registry.PushOptStrictMode(true))
	if err != nil {
		return fmt.Errorf("failed to push %s: %w", ref, err)
	}
	fmt.Printf("pushed %s (%s)\n", res.Ref, res.Manifest.Digest)
	return nil
}

// SPDX 2.3 (https://spdx.github.io/spdx-spec/v2.3/), the fields this
// SBOM fills: one package per binary and per Go module it was built from
// (go version -m's list, read with debug/buildinfo), each module
// a dependency of the binary that contains it.
type spdxDoc struct {
	SPDXVersion       string         `json:"spdxVersion"`
	DataLicense       string         `json:"dataLicense"`
	SPDXID            string         `json:"SPDXID"`
	Name              string         `json:"name"`
	DocumentNamespace string         `json:"documentNamespace"`
	CreationInfo      spdxCreation   `json:"creationInfo"`
	Packages          []spdxPackage  `json:"packages"`
	Relationships     []spdxRelation `json:"relationships"`
}

type spdxCreation struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	Name             string         `json:"name"`
	SPDXID           string         `json:"SPDXID"`
	VersionInfo      string         `json:"versionInfo,omitempty"`
	DownloadLocation string         `json:"downloadLocation"`
	FilesAnalyzed    bool           `json:"filesAnalyzed"`
	Checksums        []spdxChecksum `json:"checksums,omitempty"`
	ExternalRefs     []spdxRef      `json:"externalRefs,omitempty"`
	Comment          string         `json:"comment,omitempty"`
}

type spdxChecksum struct {
	Algorithm     string `json:"algorithm"`
	ChecksumValue string `json:"checksumValue"`
}

type spdxRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

type spdxRelation struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

func sbom(args []string) error {
	fs := flag.NewFlagSet("sbom", flag.ContinueOnError)
	out := fs.String("out", "", "SPDX JSON file to write")
	name := fs.String("name", "knest", "document name")
	version := fs.String("version", "", "release version")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() == 0 {
		return errors.New("sbom: --out and at least one binary are required")
	}
	// The commit time of the release, not the wall clock, when known: the
	// same tree gives the same SBOM.
	created := time.Now().UTC().Format(time.RFC3339)
	if epoch := os.Getenv("SOURCE_DATE_EPOCH"); epoch != "" {
		var sec int64
		if _, err := fmt.Sscan(epoch, &sec); err == nil {
			created = time.Unix(sec, 0).UTC().Format(time.RFC3339)
		}
	}
	doc := spdxDoc{
		SPDXVersion: "SPDX-2.3", DataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT",
		Name:              *name + "-" + *version,
		DocumentNamespace: "https://github.com/knest-dev/knest/releases/" + *version + "/sbom",
		CreationInfo:      spdxCreation{Created: created, Creators: []string{"Tool: knest hack/release"}},
	}
	ids := spdxIDs{}
	for i, bin := range fs.Args() {
		info, err := buildinfo.ReadFile(bin)
		if err != nil {
			return fmt.Errorf("%s: %w", bin, err)
		}
		data, err := os.ReadFile(bin)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		binID := fmt.Sprintf("SPDXRef-Binary-%d", i)
		var goos, goarch string
		for _, s := range info.Settings {
			switch s.Key {
			case "GOOS":
				goos = s.Value
			case "GOARCH":
				goarch = s.Value
			}
		}
		doc.Packages = append(doc.Packages, spdxPackage{
			Name: filepath.Base(bin), SPDXID: binID, VersionInfo: *version, DownloadLocation: "NOASSERTION",
			Checksums: []spdxChecksum{{Algorithm: "SHA256", ChecksumValue: hex.EncodeToString(sum[:])}},
			Comment:   fmt.Sprintf("%s for %s/%s, built with %s", info.Path, goos, goarch, info.GoVersion),
		})
		doc.Relationships = append(doc.Relationships, spdxRelation{"SPDXRef-DOCUMENT", "DESCRIBES", binID})
		// The Go standard library is in every binary, at the toolchain's
		// version: scanners match its vulnerabilities by this purl.
		id, isNew := ids.get("Go-stdlib", info.GoVersion)
		if isNew {
			v := strings.TrimPrefix(info.GoVersion, "go")
			doc.Packages = append(doc.Packages, spdxPackage{
				Name: "stdlib", SPDXID: id, VersionInfo: info.GoVersion, DownloadLocation: "https://go.dev/dl/",
				ExternalRefs: []spdxRef{{"PACKAGE-MANAGER", "purl", "pkg:golang/stdlib@v" + v}},
				Comment:      "the Go standard library of the toolchain the binary was built with",
			})
		}
		doc.Relationships = append(doc.Relationships, spdxRelation{binID, "CONTAINS", id})
		for _, m := range info.Deps {
			if m.Replace != nil {
				m = m.Replace
			}
			id, isNew := ids.get("Module", m.Path+"@"+m.Version)
			if isNew {
				doc.Packages = append(doc.Packages, spdxPackage{
					Name: m.Path, SPDXID: id, VersionInfo: m.Version, DownloadLocation: "https://proxy.golang.org/" + m.Path + "/@v/" + m.Version + ".zip",
					ExternalRefs: []spdxRef{{"PACKAGE-MANAGER", "purl", "pkg:golang/" + m.Path + "@" + m.Version}},
					Comment:      "go.sum hash " + m.Sum,
				})
			}
			doc.Relationships = append(doc.Relationships, spdxRelation{binID, "CONTAINS", id})
		}
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(*out, append(data, '\n'), 0o644)
}

// spdxIDs gives each element (kind and key, such as a module's
// path@version) one SPDX identifier, unique in the document: two keys that
// spdxID maps to the same characters (a/b-c and a-b/c) get a numbered suffix.
type spdxIDs struct {
	byKey map[string]string
	used  map[string]bool
}

// get returns the identifier of kind and key, and whether it is new.
func (s *spdxIDs) get(kind, key string) (id string, isNew bool) {
	if s.byKey == nil {
		s.byKey, s.used = map[string]string{}, map[string]bool{}
	}
	if id, ok := s.byKey[kind+" "+key]; ok {
		return id, false
	}
	base := "SPDXRef-" + kind + "-" + spdxID(key)
	id = base
	for n := 2; s.used[id]; n++ {
		id = fmt.Sprintf("%s-%d", base, n)
	}
	s.byKey[kind+" "+key], s.used[id] = id, true
	return id, true
}

// spdxID keeps the characters an SPDX identifier may hold.
func spdxID(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '-'
	}, s)
}
