// Package proccpu reads from /proc the CPU time processes and the whole
// machine have used, and what the machine is (CPU model, load average), for
// the benchmarks' reports.
package proccpu

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc; fixed at 100 for user
// space on Linux whatever the kernel's HZ.
const userHZ = 100

// Seconds returns the CPU seconds (user + system) process pid has used.
func Seconds(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseProcessStat(string(data))
}

func parseProcessStat(s string) (float64, error) {
	// The command name may hold spaces and parentheses: fields start
	// after its last ')'.
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, errors.New("/proc/PID/stat: too few fields")
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return (utime + stime) / userHZ, nil
}

// SystemSeconds returns the busy CPU seconds of the whole machine (all
// cores): everything but idle and iowait.
func SystemSeconds() (float64, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseSystemStat(string(data))
}

func parseSystemStat(s string) (float64, error) {
	line, _, _ := strings.Cut(s, "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, errors.New("/proc/stat: no cpu line")
	}
	busy := 0.0
	for i, v := range f[1:] {
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, err
		}
		// user nice system idle iowait irq softirq steal guest guest_nice;
		// guest time is counted in user already.
		if i == 3 || i == 4 || i >= 8 {
			continue
		}
		busy += x
	}
	return busy / userHZ, nil
}

// Mark is the CPU seconds of some processes and of the machine at one
// moment.
type Mark struct {
	At time.Time
	// Processes are the CPU seconds of the processes, in the order Take
	// got them.
	Processes []float64
	System    float64
	err       error
}

// Take marks the CPU seconds of processes pids and of the machine now.
// Errors are kept for Cores, so taking a mark never delays a run.
func Take(pids ...int) Mark {
	m := Mark{At: time.Now(), Processes: make([]float64, len(pids))}
	var errs []error
	for i, pid := range pids {
		var err error
		m.Processes[i], err = Seconds(pid)
		errs = append(errs, err)
	}
	var err error
	m.System, err = SystemSeconds()
	m.err = errors.Join(append(errs, err)...)
	return m
}

// Cores returns how many cores each process kept busy from a to b, the
// rest of the machine's busy cores, and the wall time between the marks.
func Cores(a, b Mark) (processes []float64, other float64, wall time.Duration, err error) {
	if err := errors.Join(a.err, b.err); err != nil {
		return nil, 0, 0, err
	}
	if len(a.Processes) != len(b.Processes) {
		return nil, 0, 0, errors.New("the marks are of different processes")
	}
	wall = b.At.Sub(a.At)
	s := wall.Seconds()
	other = (b.System - a.System) / s
	for i := range a.Processes {
		c := (b.Processes[i] - a.Processes[i]) / s
		processes = append(processes, c)
		other -= c
	}
	return processes, max(0, other), wall, nil
}

// Model is the machine's CPU model name, or "".
func Model() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// LoadAverage is the machine's 1, 5 and 15 minute load averages, or "".
func LoadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	return strings.Join(f[:min(3, len(f))], " ")
}
