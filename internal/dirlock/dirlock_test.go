package dirlock

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAcquireRefusesASecondHolderAndNamesTheFirst(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "lock")
	// flock locks belong to open file descriptions, so a second process is
	// needed to see the conflict: flock(1) from util-linux holds it.
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("flock(1) not installed")
	}
	if err := os.WriteFile(path, []byte("4242"), 0o600); err != nil {
		t.Fatal(err)
	}
	holder := exec.Command("flock", "--no-fork", "-x", path, "sleep", "30")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	deadline := time.Now().Add(5 * time.Second)
	for {
		held, err := Held(path)
		if err != nil {
			t.Fatal(err)
		}
		if held {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("flock(1) never took the lock")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, err := Acquire(path)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid 4242") {
		t.Fatalf("Acquire while held: err = %v, want ErrLocked naming pid 4242", err)
	}
	holder.Process.Kill()
	holder.Wait()
	l, err := Acquire(path)
	if err != nil {
		t.Fatalf("Acquire after the holder exited: %v", err)
	}
	defer l.Release()
	pid, err := Holder(path)
	if err != nil || pid != os.Getpid() {
		t.Errorf("Holder = %d, %v; want our pid %d", pid, err, os.Getpid())
	}
	if held, _ := Held(path); !held {
		t.Errorf("Held = false while we hold the lock")
	}
}
