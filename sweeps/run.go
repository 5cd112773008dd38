package sweeps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dsnscale/dsnscale/reports"
)

// ErrDirNotEmpty is returned when the sweep's directory already holds something.
var ErrDirNotEmpty = errors.New("sweep directory is not empty")

// Options tune Run.
type Options struct {
	// Dir is the sweep's directory; it must be empty or absent.
	Dir string
	// Points runs each point.
	Points PointRunner
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Progress receives a line per point: which of how many, its outcome, the time left.
	Progress io.Writer
	// Seed makes the capacity interval repeatable.
	Seed uint64
}

// DefaultDir is sweeps/<time>-<name>, the directory of a sweep started at start.
func DefaultDir(start time.Time, name string) string {
	return filepath.Join("sweeps", start.UTC().Format("20060102T150405Z")+"-"+name)
}

// Run runs the plan's points (or its limit search) one after another, recording each in
// sweep.json as it ends, and then models the figures and writes the sweep's files. A point
// that breaks is recorded as broken and the sweep goes on; when ctx ends, the point under way
// is recorded as aborted, no other starts, and the files are written all the same. The budget,
// when set, keeps a point from starting when the time left is less than the point is expected
// to take.
func Run(ctx context.Context, plan *Plan, opt Options) (*Result, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Progress == nil {
		opt.Progress = io.Discard
	}
	if entries, err := os.ReadDir(opt.Dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrDirNotEmpty, opt.Dir)
	}
	if err := os.MkdirAll(opt.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("sweeps: %w", err)
	}
	sw := plan.Sweep
	r := &Result{
		SchemaVersion: SchemaVersion, ID: filepath.Base(opt.Dir), Name: sw.Metadata.Name, Description: sw.Metadata.Description,
		Source: sw.Source, Scenario: sw.Scenario, Set: sw.Set, Repeat: sw.Repeat, Budget: sw.Budget,
		Status: StatusRunning, Start: opt.Now(), Planned: len(plan.Points), FirstFailing: -1,
	}
	for _, a := range sw.Axes {
		r.Axes = append(r.Axes, AxisRecord{Param: a.Param, Values: a.Values})
	}
	if err := WriteResult(opt.Dir, r); err != nil {
		return nil, err
	}
	e := &executor{plan: plan, opt: opt, r: r, info: map[string]figureInfo{}}
	if plan.Search != nil {
		e.search(ctx)
	} else {
		e.grid(ctx)
	}
	if r.Status == StatusRunning {
		r.Status = StatusComplete
	}
	if ctx.Err() != nil {
		r.Status = StatusInterrupted
	}
	r.End = opt.Now()
	var slos []reports.Verdict
	for _, p := range r.Points {
		if len(p.SLOs) > 0 {
			slos = p.SLOs
			break
		}
	}
	r.Analysis = Analyze(r, modelNames(sw, slos), e.info, opt.Seed)
	return r, WriteAll(opt.Dir, r)
}

// WriteAll writes sweep.json and the files rendered from it.
func WriteAll(dir string, r *Result) error {
	if err := WriteResult(dir, r); err != nil {
		return err
	}
	for name, render := range map[string]func(io.Writer, *Result) error{
		SummaryFile: RenderSummary, JUnitFile: RenderJUnit, ReportFile: RenderHTML,
	} {
		var b strings.Builder
		if err := render(&b, r); err != nil {
			return fmt.Errorf("sweeps: render %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
			return fmt.Errorf("sweeps: %w", err)
		}
	}
	return nil
}

type executor struct {
	plan *Plan
	opt  Options
	r    *Result
	info map[string]figureInfo
	// took and expected sum the measured and step-estimated durations of the points done, to
	// scale the estimates of the points left.
	took, expected time.Duration
}

// estimate is how long a point is expected to take, from the points done so far.
func (e *executor) estimate(pt Point) time.Duration {
	if e.expected > 0 && pt.Least > 0 {
		return time.Duration(float64(pt.Least) * float64(e.took) / float64(e.expected))
	}
	if n := len(e.r.Points); n > 0 {
		return e.took / time.Duration(n)
	}
	return pt.Least
}

// outOfBudget reports whether pt would not finish within the budget.
func (e *executor) outOfBudget(pt Point) bool {
	b := e.plan.Sweep.Budget
	return b > 0 && e.opt.Now().Sub(e.r.Start)+e.estimate(pt) > b
}

func (e *executor) grid(ctx context.Context) {
	pts := e.plan.Points
	for i, pt := range pts {
		if ctx.Err() != nil {
			return
		}
		if e.outOfBudget(pt) {
			e.r.Status = StatusBudget
			fmt.Fprintf(e.opt.Progress, "budget of %s spent: %d of %d points run\n", e.plan.Sweep.Budget, i, len(pts))
			return
		}
		var eta time.Duration
		for _, rest := range pts[i:] {
			eta += e.estimate(rest)
		}
		fmt.Fprintf(e.opt.Progress, "point %d of %d: %s, run %d of %d (about %s left)\n", i+1, len(pts), describePoint(e.plan, pt), pt.Repeat, e.plan.Sweep.Repeat, roundDur(eta))
		e.runPoint(ctx, pt)
	}
}

func (e *executor) runPoint(ctx context.Context, pt Point) PointRecord {
	rec := PointRecord{Point: pt, Start: e.opt.Now()}
	out := e.opt.Points.RunPoint(ctx, e.plan.Sweep.scenarioPath(), pt.Set, filepath.Join(e.opt.Dir, pt.Dir))
	rec.End = e.opt.Now()
	rec.Exit, rec.Error = out.Exit, out.Err
	switch {
	case ctx.Err() != nil:
		rec.Status = PointAborted
		if rec.Error == "" {
			rec.Error = "interrupted"
		}
	case out.Exit == ExitPass:
		rec.Status = PointPass
	case out.Exit == ExitFail:
		rec.Status = PointFail
	default:
		rec.Status = PointBroken
	}
	if out.Run != nil {
		rec.RunID = out.Run.ID
		rec.SLOs = out.Run.SLOs
		names := modelNames(e.plan.Sweep, out.Run.SLOs)
		rec.Figures, rec.Missing = extract(out.Run, names, e.info)
		if out.Run.Result == reports.ResultAborted && rec.Status != PointAborted {
			rec.Status = PointBroken
		}
	}
	if rec.Status != PointPass && e.r.FirstFailing < 0 {
		e.r.FirstFailing = len(e.r.Points)
	}
	e.r.Points = append(e.r.Points, rec)
	e.took += rec.End.Sub(rec.Start)
	e.expected += pt.Least
	line := fmt.Sprintf("  %s in %s", strings.ToUpper(string(rec.Status)), roundDur(rec.End.Sub(rec.Start)))
	if rec.Error != "" && rec.Status != PointFail {
		line += ": " + rec.Error
	}
	for _, v := range rec.SLOs {
		if !v.Pass && rec.Status == PointFail {
			line += "; failed " + v.Name
		}
	}
	fmt.Fprintln(e.opt.Progress, line)
	if err := WriteResult(e.opt.Dir, e.r); err != nil {
		fmt.Fprintf(e.opt.Progress, "  %v\n", err)
	}
	return rec
}

func (e *executor) search(ctx context.Context) {
	spec := *e.plan.Search
	kind, example := e.plan.kinds[0], e.plan.Sweep.Axes[0].Values[0]
	round := func(x float64) (float64, string) {
		v := format(x, kind, example)
		n, _ := number(v, kind)
		return n, v
	}
	probes := 0
	res := Search(spec, round, func(n float64, value, phase string) Verdict {
		probes++
		verdict := Verdict{Pass: true}
		for k := 1; k <= e.plan.Sweep.Repeat; k++ {
			pt, err := e.plan.searchPoint(n, k)
			if err != nil {
				return Verdict{Note: err.Error()}
			}
			if ctx.Err() != nil {
				return Verdict{Stopped: true}
			}
			if e.outOfBudget(pt) {
				e.r.Status = StatusBudget
				fmt.Fprintf(e.opt.Progress, "budget of %s spent after %d runs\n", e.plan.Sweep.Budget, len(e.r.Points))
				return Verdict{Stopped: true}
			}
			fmt.Fprintf(e.opt.Progress, "search probe %d (%s): %s, run %d of %d\n", probes, phase, describePoint(e.plan, pt), k, e.plan.Sweep.Repeat)
			rec := e.runPoint(ctx, pt)
			switch rec.Status {
			case PointAborted:
				return Verdict{Stopped: true}
			case PointFail:
				verdict.Pass = false
			case PointBroken:
				verdict.Pass, verdict.Note = false, "a run broke: "+rec.Error
			}
			if !verdict.Pass {
				break // one failing run settles the size
			}
		}
		return verdict
	})
	e.r.Search = &SearchRecord{SearchSpec: spec, SearchResult: res}
	fmt.Fprintf(e.opt.Progress, "search: %s (last pass %s, first fail %s)\n", res.Reason, orNone(res.LastPass), orNone(res.FirstFail))
}

func roundDur(d time.Duration) time.Duration {
	if d >= time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(100 * time.Millisecond)
}

// ExitCode is the sweep's exit code: 3 when a run broke or the sweep was interrupted, else
// 1 when a run failed an SLO (for a limit search, when it found no limit), else 0.
func (r *Result) ExitCode() int {
	if r.Status == StatusInterrupted {
		return ExitBroken
	}
	var failed, broken bool
	for _, p := range r.Points {
		failed = failed || p.Status == PointFail
		broken = broken || p.Status == PointBroken || p.Status == PointAborted
	}
	if r.Search != nil {
		// Failing sizes are what a limit search looks for; it fails when it found no size
		// that passes.
		switch {
		case r.Search.Resolved:
			return ExitPass
		case broken:
			return ExitBroken
		case r.Search.LastPass == 0:
			return ExitFail
		}
		return ExitPass
	}
	switch {
	case broken:
		return ExitBroken
	case failed:
		return ExitFail
	}
	return ExitPass
}
