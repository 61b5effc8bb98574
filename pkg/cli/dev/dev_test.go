package dev

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/knest-dev/knest/pkg/cli"
)

func TestFindBinary(t *testing.T) {
	beside, onPath := t.TempDir(), t.TempDir()
	self := filepath.Join(beside, "knest")
	t.Setenv("PATH", onPath)

	_, err := FindBinary(self)
	for _, want := range []string{"knest-dev binary", beside, "make build"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("with no knest-dev anywhere: got %v, want an error naming %q", err, want)
		}
	}

	write := func(dir string) string {
		p := filepath.Join(dir, Binary)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	inPath := write(onPath)
	if got, err := FindBinary(self); err != nil || got != inPath {
		t.Errorf("on PATH only: got %q, %v; want %q", got, err, inPath)
	}
	next := write(beside)
	if got, err := FindBinary(self); err != nil || got != next {
		t.Errorf("next to knest and on PATH: got %q, %v; want the one next to knest, %q", got, err, next)
	}
}

func TestForwardedFlags(t *testing.T) {
	cmd := NewCommand(cli.Streams{})
	up, _, err := cmd.Find([]string{"up"})
	if err != nil {
		t.Fatal(err)
	}
	if err := up.ParseFlags([]string{"--dir", "/tmp/x y", "--tenants=a:soft,b", "--nodes", "4", "--isolation", "soft", "--host-node-info"}); err != nil {
		t.Fatal(err)
	}
	// Only the flags given are passed, each as one --name=value argument,
	// so knest-dev's defaults stay the defaults.
	want := []string{"up", "--dir=/tmp/x y", "--host-node-info=true", "--isolation=soft", "--nodes=4", "--tenants=a:soft,b"}
	if diff := cmp.Diff(want, Args("up", up.Flags())); diff != "" {
		t.Errorf("knest-dev arguments (-want +got):\n%s", diff)
	}
	if up.Example == "" {
		t.Error("knest dev up has no example")
	}
}
