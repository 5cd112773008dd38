package reports

import (
	"strings"

	"github.com/dsnscale/dsnscale/internal/registry"
)

// FigureKind says how a comparison treats a figure.
type FigureKind string

// The kinds of figure.
const (
	// KindPerformance figures (latencies, recovery times, CPU, memory, availability) are
	// noisy: a comparison judges them with statistics over repeated runs.
	KindPerformance FigureKind = "performance"
	// KindCorrectness figures count things that must not happen (crashes, lost DSNs, watch
	// gaps, failed SLOs, broken runs): any increase from the base is a regression, without
	// statistics or tolerance.
	KindCorrectness FigureKind = "correctness"
	// KindInfo figures say what the scenario did (changes made, DSNs restarted, requests sent):
	// shown, never judged.
	KindInfo FigureKind = "info"
)

// FigureSpec is what the product knows about one of its figures.
type FigureSpec struct {
	// Name is a built-in figure's full name ("api.p99.max"), or a measurement value's name
	// ("storm_recovery_seconds"), which stands for that value in every step.
	Name   string
	Better Direction
	Kind   FigureKind
}

// Synthetic figures a comparison adds to every run's own.
const (
	// FigureBroken is 1 for a run that broke or was aborted, 0 otherwise.
	FigureBroken = "run.broken"
	// SLOFigurePrefix starts the name of an SLO's figure: 1 when the SLO failed, 0 when it
	// passed.
	SLOFigurePrefix = "slo:"
)

// Catalogue holds every figure dsnscale produces, with its better direction and kind. A figure
// that is not in it (a measurement value from a newer or another build) has its direction
// guessed from its name and unit by DirectionFor, and comparisons say so.
var Catalogue = registry.New[FigureSpec]("figure")

func init() {
	perf := func(better Direction, names ...string) {
		for _, n := range names {
			Catalogue.MustRegister(n, FigureSpec{Name: n, Better: better, Kind: KindPerformance})
		}
	}
	must := func(names ...string) {
		for _, n := range names {
			Catalogue.MustRegister(n, FigureSpec{Name: n, Better: LowerIsBetter, Kind: KindCorrectness})
		}
	}
	info := func(names ...string) {
		for _, n := range names {
			Catalogue.MustRegister(n, FigureSpec{Name: n, Better: Neutral, Kind: KindInfo})
		}
	}

	// Built-in figures of every run (see Run.Figures).
	perf(LowerIsBetter, "run.duration", "convergence.to50.max", "convergence.to90.max", "convergence.to99.max",
		"convergence.to100.max", "api.p50.median", "api.p99.median", "api.p99.max", "api.errors.total")
	perf(HigherIsBetter, "acked.min", "acked.final", "api.requests.mean")
	for _, c := range []string{ComponentControlPlane, ComponentFleet, ComponentHarness} {
		perf(LowerIsBetter, c+".cpu_seconds", c+".peak_rss")
	}
	// The per-DSN costs a sweep derives from them (sweeps.Analyze).
	perf(LowerIsBetter, ComponentControlPlane+".cpu_seconds_per_dsn_minute", ComponentControlPlane+".rss_bytes_per_dsn")
	info("convergence.changes")
	must("convergence.unconverged", FigureBroken, SLOFigurePrefix)

	// Measurement values (scenarios/measure), in every step they are taken.
	perf(LowerIsBetter,
		"api_errors", "api_error_percent", "api_server_errors", "api_server_error_percent",
		"api_latency_p50_seconds", "api_latency_p90_seconds", "api_latency_p99_seconds", "api_latency_max_seconds",
		"convergence_p50_seconds", "convergence_p90_seconds", "convergence_p99_seconds", "convergence_full_seconds",
		"cp_unavailable_seconds",
		"cp_cpu_seconds", "cp_peak_rss_bytes", "fleet_cpu_seconds", "fleet_peak_rss_bytes", "harness_cpu_seconds", "harness_peak_rss_bytes",
		"storm_recovery_seconds", "storm_recovery_p50_seconds", "storm_recovery_p99_seconds",
		"failover_write_seconds", "failover_reown_seconds")
	perf(HigherIsBetter, "static_stability_availability", "dataplane_availability")
	must("cp_crashes", "lost_dsns", "dsns_lost_config", "convergence_incomplete_changes", "storm_unrecovered_dsns", "failover_unreowned_dsns",
		"watch_gaps", "watch_duplicates", "watch_regressions", "watch_violation_dsns",
		// Data the control plane dropped is data lost; refusals (429, admission sheds) are by
		// design under load and judged as performance.
		"cp_dropped_items", "telemetry_events_lost")
	perf(LowerIsBetter, "cp_refused_items")
	// What a backend fault cost: drops and failed writes are data lost; retries and the API's
	// errors while a backend is gone are how well the control plane rides it out.
	must("backend_dropped_writes", "acked_writes_lost")
	perf(LowerIsBetter, "backend_retried_writes", "backend_api_errors")
	info("cp_rolled_up_items", "watch_overtaken")
	// Benchmark figures (make bench): the time to admit 10,000 DSNs each with its own identity
	// (bootstrap token, key, CSR) and mutual-TLS connection, until every one serves.
	perf(LowerIsBetter, "cp_admission_10k_per_dsn_s")
	// The storm scenario at 10,000 DSNs (cpbench): events lost and watch duplicates are data
	// lost or repeated; rolled-up events are kept in aggregate by design.
	must("cp_events_lost_storm_10k", "cp_watch_duplicates_storm_10k")
	perf(LowerIsBetter, "cp_seed_convergence_p99_ms_10k", "cp_rss_bytes_per_dsn_scenario")
	info("cp_events_rolled_up_storm_10k", "acked_writes")
	// The failover scenario at 10,000 DSNs (cpbench): a replica killed -> first acknowledged
	// write through a survivor, and -> every DSN it served back with a survivor.
	perf(LowerIsBetter, "cp_failover_api_s", "cp_failover_reown_s",
		"cp_replicas_1_propagation_p99_ms", "cp_replicas_3_propagation_p99_ms", "cp_replicas_3_vs_1_propagation_ratio")
	// Counts of what the run did; the telemetry counts follow how much the fleet sent.
	info("api_requests", "api_generator_limited", "convergence_changes", "cp_kills", "dsns_served_without_config",
		"storm_restarted_dsns", "failover_reowned_dsns", "telemetry_batches_sent", "telemetry_samples_sent", "telemetry_batches_found",
		"telemetry_events_sent", "telemetry_events_found", "telemetry_events_rolled_up")
}

// LookupFigure returns the catalogue's entry for a run's figure: a built-in figure by its full
// name, an SLO's figure by its prefix, a measurement value ("<measurement>.<value>") by the
// value's name.
func LookupFigure(name string) (FigureSpec, bool) {
	if s, ok := Catalogue.Lookup(name); ok {
		return s, true
	}
	if strings.HasPrefix(name, SLOFigurePrefix) {
		return Catalogue.Lookup(SLOFigurePrefix)
	}
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return Catalogue.Lookup(name[i+1:])
	}
	return FigureSpec{}, false
}

// classify gives f its direction and kind: the catalogue's when it knows the figure; else the
// direction the record states, or failing that one guessed from the name and unit (Guessed),
// and the kind performance (info when the direction is neutral).
func classify(f Figure, valueName string, explicit Direction) Figure {
	if s, ok := LookupFigure(f.Name); ok {
		f.Better, f.Kind = s.Better, s.Kind
		return f
	}
	f.Better = DirectionFor(valueName, f.Unit, explicit)
	f.Guessed = explicit == ""
	f.Kind = KindPerformance
	if f.Better != LowerIsBetter && f.Better != HigherIsBetter {
		f.Kind = KindInfo
	}
	return f
}

// SLOName returns the name an SLO uses for a figure: "<step>/<value>" for a value measured in
// a step, "<value>" for one measured over the whole run; a built-in figure's name as it is.
func SLOName(figure string) string {
	if _, ok := Catalogue.Lookup(figure); ok || strings.HasPrefix(figure, SLOFigurePrefix) {
		return figure
	}
	meas, value, ok := cutLast(figure, '.')
	if !ok {
		return figure
	}
	if step, _, ok := strings.Cut(meas, "/"); ok {
		return step + "/" + value
	}
	return value
}

func cutLast(s string, sep byte) (before, after string, ok bool) {
	i := strings.LastIndexByte(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}
