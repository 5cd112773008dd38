package benchfig

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
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
// figure's median. A benchmark any run of which failed, or did not measure a figure it should
// have, is recorded in Errors and none of its figures is kept: the median of the runs that
// happened to succeed would not be the median of the runs asked for. The others still run.
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
		samples, err := runOne(ctx, b, workRoot, binary, logf)
		if err != nil {
			res.Errors[b.Name] = err.Error()
			logf("bench %s: FAILED: %v", b.Name, err)
			continue
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

// runOne runs b its number of times and returns each figure's samples, or why b failed.
func runOne(ctx context.Context, b Benchmark, workRoot, binary string, logf func(string, ...any)) (map[string][]float64, error) {
	runs := b.Runs
	if runs <= 0 {
		runs = 3
	}
	want := append([]string(nil), b.Figures...)
	samples := map[string][]float64{}
	for i := 0; i < runs; i++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("run %d of %d: %w", i+1, runs, err)
		}
		logf("bench %s: run %d/%d", b.Name, i+1, runs)
		dir, err := os.MkdirTemp(workRoot, "bench-"+b.Name+"-")
		if err != nil {
			return nil, err
		}
		figs, err := b.Run(ctx, Env{WorkDir: dir, Binary: binary, Logf: logf})
		_ = os.RemoveAll(dir)
		if err == nil {
			err = checkFigures(figs, want)
		}
		if err != nil {
			return nil, fmt.Errorf("run %d of %d: %w", i+1, runs, err)
		}
		if i == 0 {
			// What the first run measured, every later run must measure too.
			for k := range figs {
				if !slices.Contains(want, k) {
					want = append(want, k)
				}
			}
		}
		for k, v := range figs {
			samples[k] = append(samples[k], v)
		}
	}
	return samples, nil
}

// checkFigures checks that a run measured something, every figure in want, and only numbers.
func checkFigures(figs map[string]float64, want []string) error {
	if len(figs) == 0 {
		return errors.New("measured no figure")
	}
	var missing []string
	for _, k := range want {
		if _, ok := figs[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("did not measure %s", strings.Join(missing, ", "))
	}
	for k, v := range figs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%s is %v, not a measurement", k, v)
		}
	}
	return nil
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
