// Package procstat reads a Linux process's CPU time and resident memory from /proc.
package procstat

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ErrUnavailable is returned where /proc does not describe the process.
var ErrUnavailable = errors.New("process statistics unavailable")

// clockTicks is USER_HZ, the unit of CPU times in /proc/<pid>/stat; it is 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// Sample is one reading of a process.
type Sample struct {
	CPUSeconds float64 // user + system since the process started
	RSSBytes   int64   // resident set size now
	PeakRSS    int64   // high-water mark of the resident set (VmHWM)
}

// Read samples process pid (0 for the calling process).
func Read(pid int) (Sample, error) {
	p := "self"
	if pid != 0 {
		p = strconv.Itoa(pid)
	}
	var s Sample
	stat, err := os.ReadFile("/proc/" + p + "/stat")
	if err != nil {
		return s, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	// The command name (field 2) may hold spaces and parentheses: fields start after the last ')'.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return s, fmt.Errorf("%w: malformed /proc/%s/stat", ErrUnavailable, p)
	}
	f := strings.Fields(string(stat[i+1:]))
	// After ')': state(3) ... utime is field 14, stime 15 (1-based in proc(5)); here index 11, 12.
	if len(f) < 13 {
		return s, fmt.Errorf("%w: short /proc/%s/stat", ErrUnavailable, p)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return s, fmt.Errorf("%w: /proc/%s/stat: %w", ErrUnavailable, p, err)
	}
	s.CPUSeconds = float64(ut+st) / clockTicks

	status, err := os.ReadFile("/proc/" + p + "/status")
	if err != nil {
		return s, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			s.RSSBytes, err = kib(rest)
		} else if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			s.PeakRSS, err = kib(rest)
		}
		if err != nil {
			return s, fmt.Errorf("%w: /proc/%s/status: %w", ErrUnavailable, p, err)
		}
	}
	return s, nil
}

func kib(field string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(field), " kB"), 10, 64)
	return n * 1024, err
}

// Stopped reports whether every thread of process pid is stopped (state T, as after SIGSTOP).
// A stop signal takes effect per thread, each as it next leaves the kernel, so the process as a
// whole is frozen only when the last of them has stopped.
func Stopped(pid int) (bool, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	for _, t := range tasks {
		stat, err := os.ReadFile(dir + "/" + t.Name() + "/stat")
		if errors.Is(err, os.ErrNotExist) {
			continue // the thread ended
		}
		if err != nil {
			return false, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 || i+2 >= len(stat) {
			return false, fmt.Errorf("%w: malformed %s/%s/stat", ErrUnavailable, dir, t.Name())
		}
		if state := stat[i+2]; state != 'T' && state != 't' {
			return false, nil
		}
	}
	return true, nil
}
