package main

import (
	"os"
	"testing"
	"time"
)

// TestContextSwitches reads this process's threads: a count that grows
// when a thread sleeps and wakes.
func TestContextSwitches(t *testing.T) {
	before, err := contextSwitches(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		time.Sleep(10 * time.Millisecond)
	}
	after, err := contextSwitches(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if before <= 0 || after < before+5 {
		t.Errorf("context switches %d then %d after 5 sleeps", before, after)
	}
	if _, err := contextSwitches(-1); err == nil {
		t.Error("no error for a process that does not exist")
	}
}
