// Package procstat reads a process's CPU time and memory from Linux /proc,
// summed over the process and its descendants (nginx's workers are
// children of its master).
package procstat

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports for this harness.
const clockTick = 10 * time.Millisecond

// Sample is one reading of a process tree.
type Sample struct {
	CPU   time.Duration // user + system time of all live processes in the tree
	RSS   int64         // resident set size now, bytes (VmRSS), summed
	HWM   int64         // peak resident set size, bytes (VmHWM), summed
	Procs int           // processes read
}

// Read samples pid and every live descendant.
func Read(pid int) (Sample, error) {
	var s Sample
	for _, p := range tree(pid) {
		cpu, err := cpuTime(p)
		if err != nil {
			if p == pid {
				return s, err
			}
			continue // a child that just exited
		}
		rss, hwm, err := memory(p)
		if err != nil && p == pid {
			return s, err
		}
		s.CPU += cpu
		s.RSS += rss
		s.HWM += hwm
		s.Procs++
	}
	return s, nil
}

// tree returns pid followed by its descendants, read from
// /proc/PID/task/TID/children.
func tree(pid int) []int {
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", out[i]))
		if err != nil {
			continue
		}
		for _, t := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", out[i], t.Name()))
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(f); err == nil {
					out = append(out, c)
				}
			}
		}
	}
	return out
}

// cpuTime is utime+stime of pid (all its threads), from /proc/PID/stat.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("procstat: %w", err)
	}
	// The command name (field 2) may hold spaces; fields after its closing
	// parenthesis start with field 3 (state).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("procstat: /proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("procstat: /proc/%d/stat: short", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("procstat: /proc/%d/stat: bad times", pid)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// memory reads VmRSS and VmHWM (bytes) from /proc/PID/status.
func memory(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("procstat: %w", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		f := strings.Fields(val) // "1234 kB"
		if len(f) == 0 {
			continue
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		if key == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	return rss, hwm, nil
}

// Children returns pid's live descendants.
func Children(pid int) []int { return tree(pid)[1:] }

// Alive reports whether pid exists and is not a zombie.
func Alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z'
}
