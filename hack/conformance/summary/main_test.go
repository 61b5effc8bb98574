package main

import (
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"
)

func TestRenderCountsBySIGAndListsTenantRegressions(t *testing.T) {
	t.Parallel()
	spec := func(sig string, state types.SpecState) result { return result{sig: sig, state: state} }
	results := map[string]map[string]result{
		"host": {
			"[sig-api-machinery] a [Conformance]": spec("[sig-api-machinery]", types.SpecStatePassed),
			"[sig-api-machinery] b [Conformance]": spec("[sig-api-machinery]", types.SpecStatePassed),
			"[sig-node] c [Conformance]":          spec("[sig-node]", types.SpecStateFailed),
		},
		"tenant-hard": {
			"[sig-api-machinery] a [Conformance]": spec("[sig-api-machinery]", types.SpecStatePassed),
			"[sig-api-machinery] b [Conformance]": spec("[sig-api-machinery]", types.SpecStateTimedout),
			"[sig-node] c [Conformance]":          spec("[sig-node]", types.SpecStateFailed),
		},
	}
	got := render([]string{"host", "tenant-hard"}, results, "abc123", time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC))
	for _, want := range []string{
		"# Conformance, 2026-12-06, commit abc123",
		"| [sig-api-machinery] | 2 / 0 / 0 | 1 / 1 / 0 |",
		"| [sig-node] | 0 / 1 / 0 | 0 / 1 / 0 |",
		"| total | 2 / 1 / 0 | 1 / 2 / 0 |",
		"## Pass on the host, fail on tenant-hard: 1\n\n- [sig-api-machinery] b [Conformance]\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	if _, regressions, _ := strings.Cut(got, "## Pass on the host"); strings.Contains(regressions, "- [sig-node] c") {
		t.Errorf("a spec that fails on the host too is not a tenant regression:\n%s", got)
	}
}

func TestUnexpectedFailuresFailTheGate(t *testing.T) {
	t.Parallel()
	spec := func(state types.SpecState) result { return result{sig: "[sig-api-machinery]", state: state} }
	results := map[string]map[string]result{
		"host":        {"a": spec(types.SpecStatePassed), "b": spec(types.SpecStateFailed), "c": spec(types.SpecStatePassed)},
		"tenant-hard": {"a": spec(types.SpecStateFailed), "b": spec(types.SpecStateFailed), "c": spec(types.SpecStateFailed), "d": spec(types.SpecStateFailed)},
	}
	got := unexpected([]string{"host", "tenant-hard"}, results, map[string]bool{"c": true})
	want := []string{"tenant-hard: a", "tenant-hard: d"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("unexpected = %v, want %v (b fails on the host too, c is allowed, d had no host run)", got, want)
	}
}

func TestHostFailuresAreSortedByCause(t *testing.T) {
	t.Parallel()
	fail := func(message string) result {
		return result{sig: "[sig-node]", state: types.SpecStateFailed, message: message}
	}
	results := map[string]map[string]result{"host": {
		"a": fail(`expected pod "pod-secrets-1" success: Timed out after 300.000s.`),
		"b": fail(`expected pod "downwardapi-volume-2" success: Timed out after 300.000s.`),
		"c": fail(`service is not reachable within 2m0s timeout on endpoint nodeport-test:80 over TCP protocol`),
		"d": fail(`failed to execute command in pod test-pod, container test-container: command terminated with exit code 1`),
		"e": fail(`something nobody foresaw`),
		"f": {sig: "[sig-node]", state: types.SpecStatePassed},
	}}
	got := render([]string{"host"}, results, "abc123", time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC))
	for _, want := range []string{
		"| a container's exit or output (exit codes, logs, files it writes) | 2 |",
		"| traffic to a server in a pod | 1 |",
		"| exec into a container | 1 |",
		"| other | 1 |",
		"### other\n\n- e\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "- f\n") {
		t.Errorf("a passed spec has no cause:\n%s", got)
	}
}
