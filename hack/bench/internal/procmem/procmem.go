// Package procmem reads a process's resident memory from /proc for the
// benchmarks: VmRSS in total, RssAnon (private: heap, stacks) and RssFile
// (mapped files: mostly the binary, whose pages processes running the same
// file share).
package procmem

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// MiB is resident memory in MiB.
type MiB struct {
	RSS, Anon, File float64
}

// Read returns the resident memory of process pid.
func Read(pid int) (MiB, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return MiB{}, err
	}
	var m MiB
	found := false
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			m.RSS, found = kb/1024, true
		case "RssAnon:":
			m.Anon = kb / 1024
		case "RssFile:":
			m.File = kb / 1024
		}
	}
	if !found {
		return MiB{}, errors.New("VmRSS not found")
	}
	return m, nil
}
