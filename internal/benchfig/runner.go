package benchfig

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"time"
)

// Result is the JSON object `make bench` prints.
type Result struct {
	Commit    string             `json:"commit"`
	CPUs      int                `json:"cpus"`
	GoVersion string             `json:"go_version"`
	StartedAt string             `json:"started_at"`
	Seconds   float64            `json:"seconds"`
	Figures   map[string]float64 `json:"figures"`
	// Runs counts how many runs each figure's median was taken over.
	Runs map[string]int `json:"runs"`
	// Errors maps a benchmark that failed to why; its figures are missing.
	Errors map[string]string `json:"errors,omitempty"`
}

// RunAll runs each benchmark Runs times in a fresh directory under workRoot and keeps each
// figure's median. A failing benchmark is recorded in Errors and the others still run.
func RunAll(ctx context.Context, benches []Benchmark, workRoot, binary string, logf func(string, ...any)) Result {
	start := time.Now()
	res := Result{
		Commit:    commit(),
		CPUs:      runtime.NumCPU(),
		GoVersion: runtime.Version(),
		StartedAt: start.UTC().Format(time.RFC3339),
		Figures:   map[string]float64{},
		Runs:      map[string]int{},
		Errors:    map[string]string{},
	}
	for _, b := range benches {
		runs := b.Runs
		if runs <= 0 {
			runs = 3
		}
		samples := map[string][]float64{}
		for i := 0; i < runs; i++ {
			if ctx.Err() != nil {
				res.Errors[b.Name] = ctx.Err().Error()
				break
			}
			logf("bench %s: run %d/%d", b.Name, i+1, runs)
			dir, err := os.MkdirTemp(workRoot, "bench-"+b.Name+"-")
			if err != nil {
				res.Errors[b.Name] = err.Error()
				break
			}
			figs, err := b.Run(ctx, Env{WorkDir: dir, Binary: binary, Logf: logf})
			_ = os.RemoveAll(dir)
			if err != nil {
				res.Errors[b.Name] = err.Error()
				logf("bench %s: %v", b.Name, err)
				break
			}
			for k, v := range figs {
				samples[k] = append(samples[k], v)
			}
		}
		names := make([]string, 0, len(samples))
		for k := range samples {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			res.Figures[k] = Median(samples[k])
			res.Runs[k] = len(samples[k])
			logf("bench %s: %s = %.4g (median of %d)", b.Name, k, res.Figures[k], len(samples[k]))
		}
	}
	res.Seconds = time.Since(start).Seconds()
	if len(res.Errors) == 0 {
		res.Errors = nil
	}
	return res
}

func commit() string {
	if out, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
		c := strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
			c += "-dirty"
		}
		return c
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}
