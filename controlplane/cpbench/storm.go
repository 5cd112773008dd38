package cpbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/dsnscale/dsnscale/internal/benchfig"
	"github.com/dsnscale/dsnscale/reports"
)

// stormScenario is the library scenario the storm figures come from, and stormDSNs the fleet
// size it runs with.
const (
	stormScenario = "storm-restart"
	stormDSNs     = 10_000
	// burstStep is the scenario's step of intent changes made with the whole fleet connected.
	burstStep = "burst"
)

// The figures of the storm scenario benchmark.
const (
	figEventsLost    = "cp_events_lost_storm_10k"
	figEventsRolled  = "cp_events_rolled_up_storm_10k"
	figWatchDups     = "cp_watch_duplicates_storm_10k"
	figSeedConv99    = "cp_seed_convergence_p99_ms_10k"
	figRSSPerDSNScen = "cp_rss_bytes_per_dsn_scenario"
)

func init() {
	benchfig.Register(benchfig.Benchmark{Name: "cp_storm_scenario", Area: "cp", Runs: 1, Run: runStormScenario, Figures: []string{
		figEventsLost, figEventsRolled, figWatchDups, figSeedConv99, figRSSPerDSNScen,
	}})
}

// runStormScenario runs the storm-restart scenario with stormDSNs DSNs once, as a user runs it
// (`dsnscale run storm-restart --set dsns=10000`), and derives its figures from the run's
// record (stormFigures).
func runStormScenario(ctx context.Context, env benchfig.Env) (map[string]float64, error) {
	run, err := runLibraryScenario(ctx, env, "cp_storm_scenario", stormScenario, stormDSNs)
	if err != nil {
		return nil, err
	}
	return stormFigures(run, stormDSNs)
}

// runLibraryScenario runs the library scenario name with dsns DSNs once, as a user runs it
// (`dsnscale run NAME --set dsns=N [--set K=V ...]`), and loads its record. bench names the
// benchmark in the progress lines; set are further parameters (K=V).
func runLibraryScenario(ctx context.Context, env benchfig.Env, bench, name string, dsns int, set ...string) (*reports.Run, error) {
	dir := filepath.Join(env.WorkDir, strings.Join(append([]string{"run", name}, set...), "-"))
	args := []string{"run", name, "--set", "dsns=" + strconv.Itoa(dsns), "--out", dir}
	for _, kv := range set {
		args = append(args, "--set", kv)
	}
	cmd := exec.CommandContext(ctx, env.Binary, args...)
	// The run's progress and outcome (stdout) and its errors (stderr), to say why it broke.
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	env.Logf("%s: running %s with %d DSNs %v (several minutes)", bench, name, dsns, set)
	err := cmd.Run()
	// A run whose SLOs failed (exit 1) still measured: its figures are as good. One that broke
	// (exit 3) did not finish measuring.
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		why := lastLines(out.String(), 8)
		if run, lerr := reports.Load(dir); lerr == nil && run.Error != "" {
			why = run.Error + "\n" + why
		}
		return nil, fmt.Errorf("dsnscale run %s: %w: %s", name, err, why)
	}
	run, err := reports.Load(dir)
	if err != nil {
		return nil, err
	}
	env.Logf("%s: run %s: %s", bench, run.ID, run.Result)
	return run, nil
}

// stormFigures derives the storm figures from a run of the storm scenario with dsns DSNs:
//   - events the fleet sent that are neither found in the search backend nor counted as rolled
//     up into an event series (the run's telemetry measurement), and the rolled-up ones;
//   - duplicate deliveries the DSNs' watches saw (watch-correctness);
//   - the p99, over the changes of the burst step, of the time from each API call until 99% of
//     the fleet acked it;
//   - the control plane's peak resident memory over the run, per DSN.
//
// A figure the run did not measure is an error naming why, never a 0.
func stormFigures(run *reports.Run, dsns int) (map[string]float64, error) {
	figs := map[string]float64{}
	var errs []error
	take := func(fig, measurement, value string, scale float64) {
		v, err := runValue(run, measurement, value)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", fig, err))
			return
		}
		figs[fig] = v * scale
	}
	take(figEventsLost, "telemetry", "telemetry_events_lost", 1)
	take(figEventsRolled, "telemetry", "telemetry_events_rolled_up", 1)
	take(figWatchDups, "watch-correctness", "watch_duplicates", 1)
	take(figRSSPerDSNScen, "resources", "cp_peak_rss_bytes", 1/float64(dsns))
	if v, err := burstP99(run); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", figSeedConv99, err))
	} else {
		figs[figSeedConv99] = v
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("run %s (%s): %w", run.ID, run.Result, errors.Join(errs...))
	}
	return figs, nil
}

// runValue is the value named value of the run-wide measurement (not a step's) named
// measurement.
func runValue(run *reports.Run, measurement, value string) (float64, error) {
	return stepValue(run, "", measurement, value)
}

// stepValue is the value named value of the measurement named measurement taken in step (""
// for the run-wide one).
func stepValue(run *reports.Run, step, measurement, value string) (float64, error) {
	if step != "" {
		measurement = step + "/" + measurement
	}
	for _, m := range run.Measurements {
		if m.Name != measurement || m.Step != step {
			continue
		}
		for _, v := range m.Values {
			if v.Name != value {
				continue
			}
			if !v.Present() {
				return 0, fmt.Errorf("%s.%s is missing: %s", measurement, value, v.Missing)
			}
			return v.Value, nil
		}
		return 0, fmt.Errorf("the %s measurement has no value %s", measurement, value)
	}
	return 0, fmt.Errorf("the run has no %s measurement", measurement)
}

// burstP99 is the p99 (nearest rank) over the burst step's intent changes of each change's time
// to reach 99% of the fleet. A change that never reached 99% of it is an error: its time is
// unknown, and leaving it out would flatter the figure.
func burstP99(run *reports.Run) (float64, error) {
	var ms []float64
	never := 0
	for _, c := range run.Convergence {
		if c.Step != burstStep {
			continue
		}
		if c.To99Ms == nil {
			never++
			continue
		}
		ms = append(ms, *c.To99Ms)
	}
	switch {
	case never > 0:
		return 0, fmt.Errorf("%d of the %d changes of step %s never reached 99%% of the fleet", never, never+len(ms), burstStep)
	case len(ms) == 0:
		return 0, fmt.Errorf("the run recorded no intent change in step %s", burstStep)
	}
	sort.Float64s(ms)
	rank := int(math.Ceil(0.99*float64(len(ms)))) - 1
	return ms[max(rank, 0)], nil
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
