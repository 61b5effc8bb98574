package proccpu

import (
	"testing"
	"time"
)

func TestParseProcessStat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		stat    string
		want    float64
		wantErr bool
	}{
		{
			name: "user and system time in clock ticks",
			stat: "1234 (knestd) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 30 0 100 0 0",
			want: 3,
		},
		{
			name: "a command name with spaces and parentheses",
			stat: "1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194560 100 0 0 0 10 20 0 0 20 0 30 0 100 0 0",
			want: 0.3,
		},
		{name: "too few fields", stat: "1234 (x) S 1 2", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseProcessStat(tt.stat)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseProcessStat = %v, %v; want %v (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseSystemStatCountsBusyTimeOnly(t *testing.T) {
	t.Parallel()
	// user nice system idle iowait irq softirq steal guest guest_nice
	got, err := parseSystemStat("cpu  100 10 50 9000 300 5 5 30 70 0\ncpu0 50 5 25 4500 150 2 3 15 35 0\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := 2.0; got != want { // (100+10+50+5+5+30) / 100
		t.Errorf("busy seconds %v, want %v", got, want)
	}
	if _, err := parseSystemStat("intr 1 2 3\n"); err == nil {
		t.Error("a stat without the cpu line was accepted")
	}
}

func TestCores(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	a := Mark{At: t0, Processes: []float64{10, 20}, System: 100}
	b := Mark{At: t0.Add(2 * time.Second), Processes: []float64{12, 21}, System: 105}
	procs, other, wall, err := Cores(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if procs[0] != 1 || procs[1] != 0.5 || other != 1 || wall != 2*time.Second {
		t.Errorf("Cores = %v, other %v, wall %v; want [1 0.5], other 1, wall 2s", procs, other, wall)
	}
}
