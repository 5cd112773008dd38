package scencli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// Host is what the machine offers parallel test beds.
type Host struct {
	// OpenFiles is the soft limit on open descriptors (ulimit -n), which each bed's process
	// inherits.
	OpenFiles uint64
	// MemAvailable is /proc/meminfo's MemAvailable, in bytes.
	MemAvailable int64
	CPUs         int
}

// The estimates a bed is checked against.
//
// bedBytesPerDSN and bedBaseBytes are estimates with headroom, from two library smoke runs on
// the inproc driver with the control plane in process (dsnscale run smoke --set dsns=N, the
// harness's peak RSS in run.json): 148.9 MiB at 100 DSNs, 181.8 MiB at 400, a slope of about
// 112 KiB per DSN and an intercept of about 138 MiB. Those DSNs shared bus connections; a DSN
// with a mutual-TLS connection of its own costs more on both ends, and longer scenarios keep
// more samples, so the estimates are rounded up well past the slope and intercept: 512 KiB per
// DSN and 256 MiB per bed.
const (
	bedBytesPerDSN = 512 << 10
	bedBaseBytes   = 256 << 20
	// Each DSN with a bus connection of its own costs a descriptor on both ends, and with the
	// control plane in the bed's process both ends count against its limit.
	bedFilesPerDSN = 2
	// bedBaseFiles covers the control plane's listeners, stores and logs, and the API load.
	bedBaseFiles = 512
)

// ErrOversubscribed is returned when parallel beds would need more than the machine has.
var ErrOversubscribed = errors.New("the beds would oversubscribe this machine")

// checkBeds refuses beds (the fleet size of each) that would not fit on h, saying every
// shortfall with its numbers.
func checkBeds(h Host, dsns []int) error {
	var (
		problems []string
		total    int
		largest  int
	)
	for _, n := range dsns {
		total += n
		largest = max(largest, n)
	}
	mem := int64(len(dsns))*bedBaseBytes + int64(total)*bedBytesPerDSN
	if mem > h.MemAvailable {
		problems = append(problems, fmt.Sprintf("memory: about %s estimated (%d beds × %s + %d DSNs × %s) > %s available (MemAvailable)",
			bytesText(mem), len(dsns), bytesText(bedBaseBytes), total, bytesText(bedBytesPerDSN), bytesText(h.MemAvailable)))
	}
	files := uint64(largest)*bedFilesPerDSN + bedBaseFiles
	if files > h.OpenFiles {
		problems = append(problems, fmt.Sprintf("open files: the largest bed (%d DSNs) needs about %d descriptors (%d per DSN + %d) > the limit of %d (ulimit -n)",
			largest, files, bedFilesPerDSN, bedBaseFiles, h.OpenFiles))
	}
	if len(dsns) > h.CPUs {
		problems = append(problems, fmt.Sprintf("CPUs: %d beds > %d CPUs", len(dsns), h.CPUs))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w:\n  %s", ErrOversubscribed, strings.Join(problems, "\n  "))
}

func bytesText(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%d MiB", b>>20)
	}
	return fmt.Sprintf("%d KiB", b>>10)
}

// readHost reads this machine's limits: the descriptor limit, /proc/meminfo and the CPU count.
func readHost() (Host, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return Host{}, fmt.Errorf("open-file limit: %w", err)
	}
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return Host{}, err
	}
	defer f.Close()
	mem, err := memAvailable(f)
	if err != nil {
		return Host{}, fmt.Errorf("/proc/meminfo: %w", err)
	}
	return Host{OpenFiles: lim.Cur, MemAvailable: mem, CPUs: runtime.NumCPU()}, nil
}

// memAvailable reads MemAvailable (in kB) from /proc/meminfo's text.
func memAvailable(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("MemAvailable line %q: want \"N kB\"", sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 {
			return 0, fmt.Errorf("MemAvailable line %q: %q is not a size", sc.Text(), f[0])
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no MemAvailable line")
}
