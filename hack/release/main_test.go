package main

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
)

// TestSBOMIsSPDX23OfEachBinary writes the SBOM of two binaries (copies of
// this test binary, which has build info like any Go binary) and checks
// what SPDX 2.3 requires of it and what the release promises: each binary
// a package with its SHA-256, described by the document, containing the Go
// standard library and every module of its build info, each listed once.
func TestSBOMIsSPDX23OfEachBinary(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var bins []string
	for _, name := range []string{"knest-v9.9.9-linux-amd64", "knestd-v9.9.9-linux-amd64"} {
		bin := filepath.Join(dir, name)
		if err := os.WriteFile(bin, data, 0o755); err != nil {
			t.Fatal(err)
		}
		bins = append(bins, bin)
	}
	info, err := buildinfo.ReadFile(bins[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Deps) == 0 {
		t.Fatal("the test binary lists no modules: nothing to check")
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1765000000")
	out := filepath.Join(dir, "knest.spdx.json")
	if err := run(append([]string{"sbom", "--out", out, "--name", "knest", "--version", "v9.9.9"}, bins...)); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		SPDXVersion       string
		DataLicense       string
		SPDXID            string
		Name              string
		DocumentNamespace string
		CreationInfo      struct {
			Created  string
			Creators []string
		}
		Packages []struct {
			Name             string
			SPDXID           string
			VersionInfo      string
			DownloadLocation string
			FilesAnalyzed    *bool
			Checksums        []struct{ Algorithm, ChecksumValue string }
			ExternalRefs     []struct{ ReferenceCategory, ReferenceType, ReferenceLocator string }
		}
		Relationships []struct {
			SPDXElementID      string `json:"spdxElementId"`
			RelationshipType   string
			RelatedSPDXElement string
		}
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.SPDXID != "SPDXRef-DOCUMENT" || doc.Name != "knest-v9.9.9" {
		t.Errorf("document header: %q %q %q %q", doc.SPDXVersion, doc.DataLicense, doc.SPDXID, doc.Name)
	}
	if doc.DocumentNamespace == "" || regexp.MustCompile(`#`).MatchString(doc.DocumentNamespace) {
		t.Errorf("documentNamespace %q: want a URI without #", doc.DocumentNamespace)
	}
	if doc.CreationInfo.Created != "2025-12-06T05:46:40Z" {
		t.Errorf("created %q, want SOURCE_DATE_EPOCH as YYYY-MM-DDThh:mm:ssZ", doc.CreationInfo.Created)
	}
	if len(doc.CreationInfo.Creators) == 0 || !regexp.MustCompile(`^(Tool|Organization|Person): `).MatchString(doc.CreationInfo.Creators[0]) {
		t.Errorf("creators %q", doc.CreationInfo.Creators)
	}

	idRE := regexp.MustCompile(`^SPDXRef-[A-Za-z0-9.-]+$`)
	byID := map[string]int{}
	byName := map[string]string{}
	purls := map[string]bool{}
	for i, p := range doc.Packages {
		if !idRE.MatchString(p.SPDXID) {
			t.Errorf("package %s: SPDXID %q is not SPDXRef-[letters, digits, . and -]", p.Name, p.SPDXID)
		}
		if _, dup := byID[p.SPDXID]; dup {
			t.Errorf("SPDXID %q twice", p.SPDXID)
		}
		byID[p.SPDXID] = i
		if p.Name == "" || p.DownloadLocation == "" || p.FilesAnalyzed == nil {
			t.Errorf("package %q: name, downloadLocation and filesAnalyzed are required", p.SPDXID)
		}
		byName[p.Name] = p.SPDXID
		for _, r := range p.ExternalRefs {
			if r.ReferenceCategory == "PACKAGE-MANAGER" && r.ReferenceType == "purl" {
				purls[r.ReferenceLocator] = true
			}
		}
	}
	rels := map[[3]string]bool{}
	for _, r := range doc.Relationships {
		rels[[3]string{r.SPDXElementID, r.RelationshipType, r.RelatedSPDXElement}] = true
		for _, id := range []string{r.SPDXElementID, r.RelatedSPDXElement} {
			if _, ok := byID[id]; !ok && id != "SPDXRef-DOCUMENT" {
				t.Errorf("relationship %+v names %q, which is no element of the document", r, id)
			}
		}
	}
	sum := sha256.Sum256(data)
	for _, bin := range bins {
		id, ok := byName[filepath.Base(bin)]
		if !ok {
			t.Errorf("binary %s is not in the SBOM", filepath.Base(bin))
			continue
		}
		p := doc.Packages[byID[id]]
		if len(p.Checksums) != 1 || p.Checksums[0].Algorithm != "SHA256" || p.Checksums[0].ChecksumValue != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: checksums %+v, want its SHA256", p.Name, p.Checksums)
		}
		if !rels[[3]string{"SPDXRef-DOCUMENT", "DESCRIBES", id}] {
			t.Errorf("the document does not describe %s", p.Name)
		}
		if std := byName["stdlib"]; !rels[[3]string{id, "CONTAINS", std}] {
			t.Errorf("%s does not contain the Go standard library", p.Name)
		}
		for _, m := range info.Deps {
			if m.Replace != nil {
				m = m.Replace
			}
			mid, ok := byName[m.Path]
			if !ok || !purls["pkg:golang/"+m.Path+"@"+m.Version] {
				t.Errorf("module %s@%s: no package with its purl", m.Path, m.Version)
				continue
			}
			if !rels[[3]string{id, "CONTAINS", mid}] {
				t.Errorf("%s does not contain %s", p.Name, m.Path)
			}
		}
	}
	// Two binaries of the same modules: each module once, plus the binaries
	// and the standard library.
	if want := len(info.Deps) + 1 + len(bins); len(doc.Packages) != want {
		t.Errorf("%d packages, want %d (each module once)", len(doc.Packages), want)
	}
}

// TestSPDXIDsAreUnique: module paths that differ only in characters an
// SPDX identifier cannot hold still get identifiers of their own.
func TestSPDXIDsAreUnique(t *testing.T) {
	var ids spdxIDs
	a, newA := ids.get("Module", "example.com/a/b-c@v1.0.0")
	b, newB := ids.get("Module", "example.com/a-b/c@v1.0.0")
	again, newAgain := ids.get("Module", "example.com/a/b-c@v1.0.0")
	if !newA || !newB || newAgain {
		t.Errorf("new: %v %v %v, want true true false", newA, newB, newAgain)
	}
	if a == b {
		t.Errorf("two modules share the identifier %q", a)
	}
	if again != a {
		t.Errorf("the same module got %q, then %q", a, again)
	}
}

// TestChartPackage packages the chart as the release does and loads the
// archive back as Helm would install it.
func TestChartPackage(t *testing.T) {
	out := t.TempDir()
	if err := run([]string{"chart", "--chart", "../../charts/knest", "--out", out}); err != nil {
		t.Fatal(err)
	}
	src, err := loader.LoadDir("../../charts/knest")
	if err != nil {
		t.Fatal(err)
	}
	c, err := loader.Load(filepath.Join(out, "knest-"+src.Metadata.Version+".tgz"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Name() != "knest" || c.Schema == nil || len(c.Templates) != len(src.Templates) {
		t.Errorf("packaged chart %s: schema %v, %d templates (source %d)", c.Name(), c.Schema != nil, len(c.Templates), len(src.Templates))
	}
}
