package loadgen

import (
	"fmt"
	"runtime"
	"syscall"
	"time"
)

// ProcessCPU returns the CPU time (user and system) the process has used so far.
func ProcessCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

func defaultCores() int { return runtime.GOMAXPROCS(0) }

// cpuMeter measures the process's CPU time over a run.
type cpuMeter struct {
	read  func() (time.Duration, error)
	start time.Duration
	ok    bool
}

func startCPU(read func() (time.Duration, error)) *cpuMeter {
	m := &cpuMeter{read: read}
	if v, err := read(); err == nil {
		m.start, m.ok = v, true
	}
	return m
}

func (m *cpuMeter) used() (time.Duration, bool) {
	if !m.ok {
		return 0, false
	}
	v, err := m.read()
	if err != nil {
		return 0, false
	}
	return v - m.start, true
}

// account fills the self-accounting part of a summary: CPU use, and whether (and why) the
// generator could not keep the requested load.
func account(s *Summary, o Options, cpu *cpuMeter, wall time.Duration, maxVUs int) {
	s.Cores = o.Cores
	if used, ok := cpu.used(); ok {
		s.CPUSeconds = used.Seconds()
		if wall > 0 && o.Cores > 0 {
			s.CPUShare = used.Seconds() / (wall.Seconds() * float64(o.Cores))
		}
	}
	var reasons []string
	if s.Missed > 0 {
		reasons = append(reasons, fmt.Sprintf("%d of %d scheduled iterations missed: all %d VUs (maxVUs) were busy; raise maxVUs, or the target is saturated",
			s.Missed, s.Planned, maxVUs))
	}
	if s.Started > 0 && float64(s.LateStarts) > o.LateFraction*float64(s.Started) {
		reasons = append(reasons, fmt.Sprintf("%d of %d iterations (%.1f%%) started more than %s late (worst %s): the generator could not keep its schedule",
			s.LateStarts, s.Started, 100*float64(s.LateStarts)/float64(s.Started), o.LateThreshold, s.MaxLateness.Round(time.Microsecond)))
	}
	if s.CPUShare > o.CPUThreshold {
		reasons = append(reasons, fmt.Sprintf("process CPU at %.0f%% of %d cores (threshold %.0f%%): the generator may be starved of CPU",
			100*s.CPUShare, o.Cores, 100*o.CPUThreshold))
	}
	s.GeneratorLimited = len(reasons) > 0
	s.LimitReasons = reasons
}
