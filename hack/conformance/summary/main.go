// Command summary reads the ginkgo JSON reports hack/conformance.sh writes
// for each target and writes OUT/summary.md: per SIG, how many specs
// passed and failed on each target, and the specs that pass on the host
// but fail on a tenant (each a knest bug or a documented refusal).
//
// With --allowed FILE (one spec name a line, # comments) it is also a
// gate: it exits 1 when a tenant fails a spec the file does not list
// (without a host run every tenant failure counts), so a regression of
// the API surface fails CI.
//
//	go run ./hack/conformance/summary --out DIR [--commit REV] [--allowed FILE] TARGET...
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2/types"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "summary:", err)
		os.Exit(1)
	}
}

// result is how one target ran one spec.
type result struct {
	sig   string
	state types.SpecState
	// message is the failure's message, if it failed.
	message string
}

// causes sorts the host's failures by what the spec needed that the host
// lacks, matched on the failure message in this order: on the devcluster
// (KWOK: pods are Running at once, never exit, print nothing and serve
// nothing) it sizes what a host that runs containers would add.
var causes = []struct {
	name    string
	pattern *regexp.Regexp
}{
	{"not run to the end: the run's timeout", regexp.MustCompile(`A suite timeout occurred|interrupted`)},
	{"a container's exit or output (exit codes, logs, files it writes)", regexp.MustCompile(`expected pod "[^"]*" success|to succeed|job completion|job completed|container to fail|Job\.batch|write to subpath|Failed to find`)},
	{"traffic to a server in a pod", regexp.MustCompile(`not reachable|connections failed|exposed host ports|pre-stop|rate limiter Wait|client logs|Error dialing|serving content|handle-http-request`)},
	{"exec into a container", regexp.MustCompile(`failed to execute command|error executing command|exit status`)},
	{"kubelet behaviour KWOK does not simulate (probes, restarts, start order, in-place resize)", regexp.MustCompile(`restarts|out of waiting|not to start running|re-created|didn't start|enter running|became ready|should not be ready|Expected Pod to be in|availableReplicas|Test Panicked`)},
	{"a kubelet-issued credential (pod certificates, trust bundles)", regexp.MustCompile(`certificate`)},
	{"waited for what a running container does (DNS answers, volume contents it reads, exit states)", regexp.MustCompile(`Timed out|timed out|context deadline exceeded|Told to stop trying`)},
}

// cause names why a spec failed, from its failure message.
func cause(r result) string {
	for _, c := range causes {
		if c.pattern.MatchString(r.message) {
			return c.name
		}
	}
	return "other"
}

var sigPattern = regexp.MustCompile(`\[sig-[a-z-]+\]`)

func run(args []string) error {
	fs := flag.NewFlagSet("summary", flag.ContinueOnError)
	out := fs.String("out", "_output/conformance", "the directory hack/conformance.sh wrote")
	commit := fs.String("commit", "unknown", "the commit the results are of")
	allowedFile := fs.String("allowed", "", "specs tenants may fail, one a line; others fail the run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	targets := fs.Args()
	if len(targets) == 0 {
		return errors.New("name at least one target")
	}
	results := map[string]map[string]result{}
	for _, t := range targets {
		r, err := read(filepath.Join(*out, t, "report.json"))
		if err != nil {
			return err
		}
		results[t] = r
	}
	md := render(targets, results, *commit, time.Now().UTC())
	if err := os.WriteFile(filepath.Join(*out, "summary.md"), []byte(md), 0o644); err != nil {
		return err
	}
	if *allowedFile == "" {
		return nil
	}
	allowed, err := readAllowed(*allowedFile)
	if err != nil {
		return err
	}
	if bad := unexpected(targets, results, allowed); len(bad) > 0 {
		return fmt.Errorf("specs failed on a tenant that %s does not allow:\n  %s", *allowedFile, strings.Join(bad, "\n  "))
	}
	return nil
}

// readAllowed reads spec names, one a line; blank lines and # comments
// are skipped.
func readAllowed(path string) (map[string]bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", path, err)
	}
	out := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			out[line] = true
		}
	}
	return out, nil
}

// unexpected lists "target: spec" for every spec a tenant failed that the
// host passed (or that no host run covered) and allowed does not list.
func unexpected(targets []string, results map[string]map[string]result, allowed map[string]bool) []string {
	host := results["host"]
	var out []string
	for _, t := range targets {
		if t == "host" {
			continue
		}
		for name, r := range results[t] {
			if !failed(r.state) || allowed[name] {
				continue
			}
			if h, ok := host[name]; ok && !passed(h.state) {
				continue
			}
			out = append(out, t+": "+name)
		}
	}
	slices.Sort(out)
	return out
}

// read returns the specs of a ginkgo JSON report by full name.
func read(path string) (map[string]result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", path, err)
	}
	var reports []types.Report
	if err := json.Unmarshal(data, &reports); err != nil {
		return nil, fmt.Errorf("failed to parse %s: %w", path, err)
	}
	out := map[string]result{}
	for _, r := range reports {
		for _, s := range r.SpecReports {
			if s.LeafNodeType != types.NodeTypeIt {
				continue
			}
			name := s.FullText()
			sig := sigPattern.FindString(name)
			if sig == "" {
				sig = "[other]"
			}
			out[name] = result{sig: sig, state: s.State, message: s.Failure.Message}
		}
	}
	return out, nil
}

func passed(s types.SpecState) bool { return s == types.SpecStatePassed }

func failed(s types.SpecState) bool { return s.Is(types.SpecStateFailureStates) }

func render(targets []string, results map[string]map[string]result, commit string, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Conformance, %s, commit %s\n\n", now.Format("2006-01-02"), commit)
	sigs := map[string]bool{}
	for _, r := range results {
		for _, s := range r {
			sigs[s.sig] = true
		}
	}
	fmt.Fprintf(&b, "| SIG |")
	for _, t := range targets {
		fmt.Fprintf(&b, " %s passed / failed / skipped |", t)
	}
	fmt.Fprintf(&b, "\n|---|%s\n", strings.Repeat("---|", len(targets)))
	for _, sig := range append(slices.Sorted(maps.Keys(sigs)), "total") {
		fmt.Fprintf(&b, "| %s |", sig)
		for _, t := range targets {
			var p, f, s int
			for _, r := range results[t] {
				if sig != "total" && r.sig != sig {
					continue
				}
				switch {
				case passed(r.state):
					p++
				case failed(r.state):
					f++
				default:
					s++
				}
			}
			fmt.Fprintf(&b, " %d / %d / %d |", p, f, s)
		}
		b.WriteString("\n")
	}
	host, ok := results["host"]
	if !ok {
		return b.String()
	}
	byCause := map[string][]string{}
	for name, r := range host {
		if failed(r.state) {
			byCause[cause(r)] = append(byCause[cause(r)], name)
		}
	}
	if len(byCause) > 0 {
		b.WriteString("\n## Failures on the host, by cause\n\n| cause | specs |\n|---|---|\n")
		names := slices.SortedFunc(maps.Keys(byCause), func(a, b string) int { return len(byCause[b]) - len(byCause[a]) })
		for _, c := range names {
			fmt.Fprintf(&b, "| %s | %d |\n", c, len(byCause[c]))
		}
		for _, c := range names {
			slices.Sort(byCause[c])
			fmt.Fprintf(&b, "\n### %s\n\n", c)
			for _, name := range byCause[c] {
				fmt.Fprintf(&b, "- %s\n", name)
			}
		}
	}
	for _, t := range targets {
		if t == "host" {
			continue
		}
		var regressions []string
		for name, r := range results[t] {
			if h, ok := host[name]; ok && passed(h.state) && failed(r.state) {
				regressions = append(regressions, name)
			}
		}
		slices.Sort(regressions)
		fmt.Fprintf(&b, "\n## Pass on the host, fail on %s: %d\n\n", t, len(regressions))
		for _, name := range regressions {
			fmt.Fprintf(&b, "- %s\n", name)
		}
	}
	return b.String()
}
