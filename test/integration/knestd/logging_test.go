package knestd

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/knest-dev/knest/test/integration/framework"
)

// TestIntegrationJSONLogs starts knestd with --logging-format=json, lets it
// become ready and stops it: every line it writes to stderr, its own, the
// Kubernetes components' and embedded etcd's, is one JSON object, and
// nothing goes to stdout.
func TestIntegrationJSONLogs(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	stdout, stderr := &lockedBuffer{}, &lockedBuffer{}
	cmd := exec.Command(framework.KnestdPath(), "--data-dir="+t.TempDir(), "--secure-port=0", "--logging-format=json")
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	deadline := time.After(readyTimeout)
	for !strings.Contains(stderr.String(), framework.ReadyMessage) {
		select {
		case err := <-exited:
			t.Fatalf("knestd exited before it was ready (%v):\n%s", err, stderr.String())
		case <-deadline:
			t.Fatalf("knestd not ready within %s", readyTimeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("knestd exited with %v after SIGTERM", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("knestd did not exit within a minute of SIGTERM")
	}

	if stdout.Len() > 0 {
		t.Errorf("knestd wrote to stdout:\n%s", stdout.String())
	}
	var lines, etcdLines int
	var started, ready bool
	sc := bufio.NewScanner(strings.NewReader(stderr.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines++
		var entry map[string]any
		if err := json.Unmarshal(sc.Bytes(), &entry); err != nil {
			t.Errorf("stderr line %d is not JSON (%v): %s", lines, err, sc.Text())
			continue
		}
		msg, _ := entry["msg"].(string)
		if msg == "" {
			t.Errorf("stderr line %d has no msg: %s", lines, sc.Text())
		}
		// etcd's zap logger names the level; klog's json logger the
		// verbosity ("v").
		if _, ok := entry["level"]; ok {
			etcdLines++
		}
		if msg == "Starting knestd" {
			started = entry["version"] != nil && entry["commit"] != nil && strings.HasPrefix(fmt.Sprint(entry["kubernetes"]), "v1.")
		}
		ready = ready || msg == framework.ReadyMessage
	}
	if lines == 0 || etcdLines == 0 {
		t.Errorf("%d lines, %d of them etcd's: the check saw no etcd line", lines, etcdLines)
	}
	if !started {
		t.Errorf("no \"Starting knestd\" line with the version, commit and Kubernetes version")
	}
	if !ready {
		t.Errorf("no %q line", framework.ReadyMessage)
	}
}

// lockedBuffer is a buffer the process's output is copied into while the
// test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *lockedBuffer) Len() int { return len(b.String()) }
