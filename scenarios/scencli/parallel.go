package scencli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dsnscale/dsnscale/reports"
	"github.com/dsnscale/dsnscale/scenarios"
)

// MaxParallel bounds --parallel: beyond it a number is a typo.
const MaxParallel = 64

// Files of a parallel group directory.
const (
	ParallelJSON = "parallel.json"
	ParallelMD   = "parallel.md"
)

// Bed is one test bed of a parallel group, as parallel.json lists it.
type Bed struct {
	Scenario string `json:"scenario"`
	// Dir is the bed's run directory, relative to the group directory.
	Dir string `json:"dir"`
	// Log holds the bed's own output.
	Log      string `json:"log"`
	DSNs     int    `json:"dsns"`
	ExitCode int    `json:"exitCode"`
	// Result is the run's verdict from its run.json; empty when the run left none.
	Result   reports.Result `json:"result,omitempty"`
	Error    string         `json:"error,omitempty"`
	Seconds  float64        `json:"seconds,omitempty"`
	SLOs     int            `json:"slos"`
	SLOsPass int            `json:"slosPassed"`
	// FailedSLOs names the SLOs that failed.
	FailedSLOs []string `json:"failedSLOs,omitempty"`
	// ControlPlaneNATS is the bed's own control plane's bus URL.
	ControlPlaneNATS string `json:"controlPlaneNATS,omitempty"`
	// PeakRSS is the peak resident memory of each component of the bed, in bytes.
	PeakRSS map[string]int64 `json:"peakRSSBytes,omitempty"`
}

// Parallel is parallel.json: the beds of one `dsnscale run --parallel N` and the worst exit.
type Parallel struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Host     Host      `json:"host"`
	Beds     []Bed     `json:"beds"`
	ExitCode int       `json:"exitCode"`
}

// parallelRun runs test beds as child processes of the dsnscale binary.
type parallelRun struct {
	exe  string
	host func() (Host, error)
	now  func() time.Time
}

// runParallel is `dsnscale run --parallel N SCENARIO...`: N beds at once, bed i running
// scenario i modulo the scenarios named, each a `dsnscale run` of its own (its own process,
// run directory, control plane, ports and data), under one group directory (--out, or
// runs/<time>-parallel-xN) with parallel.json and parallel.md. The exit code is the worst of
// the beds'.
func runParallel(ctx context.Context, ra runArgs, stdout, stderr io.Writer) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "dsnscale run: %v\n", err)
		return ExitBroken
	}
	return parallelRun{exe: exe, host: readHost, now: time.Now}.do(ctx, ra, stdout, stderr)
}

// plan loads each bed's scenario and checks the beds against the host.
func (p parallelRun) plan(ra runArgs) (beds []Bed, host Host, err error) {
	if len(ra.targets) > ra.parallel {
		return nil, host, fmt.Errorf("%d scenarios for --parallel %d: name at most one scenario per bed", len(ra.targets), ra.parallel)
	}
	set, err := scenarios.ParseSet(ra.set)
	if err != nil {
		return nil, host, err
	}
	var sizes []int
	for i := range ra.parallel {
		name := ra.targets[i%len(ra.targets)]
		s, err := scenarios.Load(name, set)
		if err != nil {
			return nil, host, err
		}
		if s.ControlPlane.Mode == scenarios.CPExternal {
			return nil, host, fmt.Errorf("%s: its control plane is external; parallel beds each need their own", name)
		}
		dir := fmt.Sprintf("bed-%d-%s", i+1, s.Metadata.Name)
		beds = append(beds, Bed{Scenario: name, Dir: dir, Log: dir + ".log", DSNs: s.Fleet.Size})
		sizes = append(sizes, s.Fleet.Size)
	}
	if host, err = p.host(); err != nil {
		return nil, host, fmt.Errorf("reading this machine's limits: %w", err)
	}
	if err := checkBeds(host, sizes); err != nil && !ra.oversubscribe {
		return nil, host, fmt.Errorf("refusing %d parallel beds: %w\n--oversubscribe runs them anyway", len(beds), err)
	}
	return beds, host, nil
}

func (p parallelRun) do(ctx context.Context, ra runArgs, stdout, stderr io.Writer) int {
	beds, host, err := p.plan(ra)
	if err != nil {
		if errors.Is(err, scenarios.ErrNotFound) || errors.Is(err, scenarios.ErrInvalid) {
			printLoadError(stderr, err)
		} else {
			fmt.Fprintf(stderr, "dsnscale run: %v\n", err)
		}
		return ExitUsage
	}
	start := p.now()
	dir := ra.out
	if dir == "" {
		dir = filepath.Join("runs", fmt.Sprintf("%s-parallel-x%d", start.UTC().Format("20060102T150405Z"), len(beds)))
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		fmt.Fprintf(stderr, "dsnscale run: group directory %s is not empty\n", dir)
		return ExitUsage
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(stderr, "dsnscale run: %v\n", err)
		return ExitBroken
	}
	fmt.Fprintf(stdout, "running %d beds at once in %s\n", len(beds), dir)
	var wg sync.WaitGroup
	for i := range beds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.runBed(ctx, dir, &beds[i], ra.set)
			fmt.Fprintf(stdout, "bed %d (%s): exit %d\n", i+1, beds[i].Scenario, beds[i].ExitCode)
		}()
	}
	wg.Wait()
	g := Parallel{Start: start, End: p.now(), Host: host, Beds: beds}
	for _, b := range beds {
		g.ExitCode = max(g.ExitCode, b.ExitCode)
	}
	if err := writeParallel(dir, &g); err != nil {
		fmt.Fprintf(stderr, "dsnscale run: %v\n", err)
		return ExitBroken
	}
	fmt.Fprintln(stdout)
	_ = parallelMarkdown(stdout, &g)
	fmt.Fprintf(stdout, "summary: %s\n", filepath.Join(dir, ParallelMD))
	return g.ExitCode
}

// runBed runs one bed to its end and fills in what its run.json says.
func (p parallelRun) runBed(ctx context.Context, dir string, b *Bed, set []string) {
	args := []string{"run", b.Scenario, "--out", filepath.Join(dir, b.Dir)}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	log, err := os.Create(filepath.Join(dir, b.Log))
	if err != nil {
		b.ExitCode, b.Error = ExitBroken, err.Error()
		return
	}
	defer log.Close()
	cmd := exec.CommandContext(ctx, p.exe, args...)
	cmd.Stdout, cmd.Stderr = log, log
	// Ctrl-C reaches each bed as an interrupt, which ends its run and writes its report.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 2 * time.Minute
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		b.ExitCode = ee.ExitCode()
		if b.ExitCode < 0 {
			b.ExitCode, b.Error = ExitBroken, err.Error()
		}
	case err != nil:
		b.ExitCode, b.Error = ExitBroken, err.Error()
	}
	run, err := reports.Load(filepath.Join(dir, b.Dir))
	if err != nil {
		if b.Error == "" {
			b.Error = "no run record: " + err.Error()
		}
		b.ExitCode = max(b.ExitCode, ExitBroken)
		return
	}
	b.Result, b.Seconds = run.Result, run.Duration().Seconds()
	if b.Error == "" {
		b.Error = run.Error
	}
	b.ControlPlaneNATS = run.Environment.Extra["controlPlane.nats"]
	for _, v := range run.SLOs {
		b.SLOs++
		if v.Pass {
			b.SLOsPass++
		} else {
			b.FailedSLOs = append(b.FailedSLOs, v.Name)
		}
	}
	for _, c := range run.Components {
		if c.PeakRSSBytes > 0 {
			if b.PeakRSS == nil {
				b.PeakRSS = map[string]int64{}
			}
			b.PeakRSS[c.Name] = c.PeakRSSBytes
		}
	}
}

func writeParallel(dir string, g *Parallel) error {
	data, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ParallelJSON), append(data, '\n'), 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, ParallelMD))
	if err != nil {
		return err
	}
	if err := parallelMarkdown(f, g); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// parallelMarkdown writes the group's table: one row per bed.
func parallelMarkdown(w io.Writer, g *Parallel) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %d parallel beds: exit %d\n\n", len(g.Beds), g.ExitCode)
	b.WriteString("| bed | scenario | run directory | DSNs | verdict | exit | duration | SLOs passed | control plane peak RSS | error |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for i, bed := range g.Beds {
		verdict, dur, slos, rss := "missing", "missing", "missing", "missing"
		if bed.Result != "" {
			verdict = strings.ToUpper(string(bed.Result))
			dur = strconv.FormatFloat(bed.Seconds, 'f', 1, 64) + " s"
			slos = fmt.Sprintf("%d of %d", bed.SLOsPass, bed.SLOs)
			if len(bed.FailedSLOs) > 0 {
				slos += " (failed: " + strings.Join(bed.FailedSLOs, ", ") + ")"
			}
		}
		if v, ok := bed.PeakRSS[reports.ComponentControlPlane]; ok {
			rss = bytesText(v)
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %d | %s | %d | %s | %s | %s | %s |\n", i+1, bed.Scenario, bed.Dir, bed.DSNs,
			verdict, bed.ExitCode, dur, slos, rss, strings.ReplaceAll(bed.Error, "|", `\|`))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
