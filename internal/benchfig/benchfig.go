// Package benchfig runs the project's benchmarks and collects their figures into the one JSON
// object `make bench` prints.
//
// A benchmark registers itself from an init function in a package that cmd/dsnscale imports. Each
// run returns named figures; the runner repeats a benchmark and keeps each figure's median.
package benchfig

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/dsnscale/dsnscale/internal/registry"
)

// Benchmark measures one or more figures. Figure names are "<area>_<what>_<unit>" and start with
// Area (cp, sim, tsdb, search, inventory, loadgen).
type Benchmark struct {
	Name string
	Area string
	// Runs is how many times to repeat the benchmark; the median of each figure is kept. 0 means 3.
	Runs int
	// Figures names the figures every run must measure; a run without one of them fails the
	// benchmark. Figures a run measures beyond these are kept too, but must then be measured
	// by every run.
	Figures []string
	// Run measures once. It writes progress to log lines, never to stdout. A figure it cannot
	// measure (a server it needs is missing, a search found no bracket) is an error, never a
	// figure left out.
	Run func(ctx context.Context, env Env) (map[string]float64, error)
}

// ErrMissingServer marks a benchmark that needs a server nobody gave it.
var ErrMissingServer = errors.New("a server the benchmark needs is missing")

// ServerURL returns the URL of a server a benchmark needs from the environment variable
// variable, or an ErrMissingServer error naming it and what starts one (hint).
func ServerURL(variable, hint string) (string, error) {
	if u := os.Getenv(variable); u != "" {
		return u, nil
	}
	return "", fmt.Errorf("%w: %s is not set (%s)", ErrMissingServer, variable, hint)
}

// Env is what the runner gives a benchmark.
type Env struct {
	// WorkDir is a fresh temporary directory for this run.
	WorkDir string
	// Binary is the path of the dsnscale binary, for benchmarks that need separate processes.
	Binary string
	// Logf writes a progress line to stderr.
	Logf func(format string, args ...any)
}

// benchmarks holds the benchmarks by name.
var benchmarks = registry.New[Benchmark]("benchmark")

// Register adds a benchmark; it panics on a duplicate or malformed registration, which is a
// programming error caught by any test that imports the package.
func Register(b Benchmark) {
	if b.Name == "" || b.Area == "" || b.Run == nil {
		panic(fmt.Sprintf("benchfig: incomplete benchmark %q", b.Name))
	}
	benchmarks.MustRegister(b.Name, b)
}

// Select returns the registered benchmarks whose area starts with prefix ("" for all), by name.
func Select(prefix string) []Benchmark {
	var out []Benchmark
	for _, b := range benchmarks.All() {
		if strings.HasPrefix(b.Area, prefix) {
			out = append(out, b)
		}
	}
	return out
}

// Median returns the median of xs (the mean of the middle two for an even count).
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
