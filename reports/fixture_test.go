package reports

import (
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The fixtures in testdata are committed; this generator documents how they were made and
// remakes them with -regen-fixtures.
var regenFixtures = flag.Bool("regen-fixtures", false, "rewrite testdata/run.json and testdata/base.json from the generator")

func TestRegenFixtures(t *testing.T) {
	if !*regenFixtures {
		t.Skip("run with -regen-fixtures to rewrite the fixtures")
	}
	for name, head := range map[string]bool{"run.json": true, "base.json": false} {
		run := generateRun(head)
		require.NoError(t, run.Validate())
		data, err := MarshalRun(run)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join("testdata", name), data, 0o644))
	}
}

// noise is a deterministic pseudo-random number in [0, 1).
func noise(i int, salt float64) float64 {
	v := math.Sin(float64(i)*12.9898+salt*78.233) * 43758.5453
	return v - math.Floor(v)
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// generateRun builds a storm-restart run of 1,000 DSNs: a baseline, a restart storm, policy
// churn under injected latency, and a settle step. The head variant is a regression of the
// base: a fatter, slower control plane that fails the API latency SLO.
func generateRun(head bool) *Run {
	start := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	at := func(sec float64) time.Time { return start.Add(time.Duration(sec * float64(time.Second))) }
	salt, worse := 1.0, 1.0
	id, commit := "20250314-090000-storm-restart-base", "4f2c9a1d7e3b5c8a9f0e1d2c3b4a5968778695a4"
	if head {
		salt, worse = 2.0, 1.3
		start = start.Add(26 * time.Hour)
		id, commit = "20250315-110000-storm-restart-head", "b7e1d04c2a9f8e7d6c5b4a39281706f5e4d3c2b1"
	}
	r := &Run{
		SchemaVersion: SchemaVersion,
		ID:            id,
		Scenario: Scenario{
			Name: "storm-restart",
			Path: "scenarios/library/storm-restart.yaml",
			Content: `apiVersion: dsnscale/v1
kind: Scenario
metadata:
  name: storm-restart
  description: every DSN restarts at once while the northbound API is under load
params:
  dsns: "1000"
  restartSpread: 5s
fleet:
  size: ${dsns}
  driver: inproc
  trafficMap: maps/two-sites.yaml
controlPlane: {mode: embedded}
steps:
  - name: baseline
    duration: 60s
    load: {executor: api-mix, rate: 200/s}
  - name: storm
    duration: 120s
    faults: [{kind: dsn.restart, target: {fraction: 1.0}, spread: ${restartSpread}}]
  - name: policy-churn
    duration: 120s
    faults: [{kind: network.latency, target: {path: "control plane <-> dsns", fraction: 0.1}, delay: 200ms}]
  - name: settle
    duration: 60s
slos:
  - {name: storm reconnect p99 < 60s, measurement: restart-storm.reconnect_p99, op: "<", threshold: 60000}
  - {name: API p99 <= 250ms, measurement: api-latency.p99, op: "<=", threshold: 250}
`,
			Includes: []SourceFile{{Path: "scenarios/library/maps/two-sites.yaml", Content: "apiVersion: dsnscale/v1\nkind: TrafficMap\nsites: [eu1, us1]\n"}},
		},
		Params: map[string]string{"dsns": "1000", "restartSpread": "5s", "seed": "42"},
		Environment: Environment{GitCommit: commit, GoVersion: "go1.26.8", OS: "linux", Arch: "amd64", NumCPU: 2, Hostname: "ci-runner-7",
			Extra: map[string]string{"fleet.driver": "inproc", "controlPlane": "embedded", "tsdb": "prometheus-tsdb"}},
		Start: start,
		End:   at(360),
	}
	r.Steps = []Step{
		{Name: "baseline", Start: at(0), End: at(60)},
		{Name: "storm", Start: at(60), End: at(180)},
		{Name: "policy-churn", Start: at(180), End: at(300)},
		{Name: "settle", Start: at(300), End: at(360)},
	}
	r.Faults = []Fault{
		{Kind: "dsn.restart", Target: "1000 of 1000 dsns (sites eu1, us1)", Step: "storm", Start: at(60), End: at(65.2)},
		{Kind: "network.latency", Target: "control plane <-> 100 dsns (10%), +200ms", Step: "policy-churn", Start: at(200), End: at(260)},
	}
	if head {
		r.Faults[1].Error = "recover: 3 of 100 qdisc rules were already gone"
	}

	// Intent changes: two at baseline, one in the storm, one every 10 s of churn, one to settle.
	changeTimes := []float64{20, 40, 90}
	for s := 185.0; s < 300; s += 10 {
		changeTimes = append(changeTimes, s)
	}
	changeTimes = append(changeTimes, 310)
	for i, ct := range changeTimes {
		step := "baseline"
		switch {
		case ct >= 300:
			step = "settle"
		case ct >= 180:
			step = "policy-churn"
		case ct >= 60:
			step = "storm"
		}
		slow := 1.0
		if step == "storm" {
			slow = 9
		}
		if ct >= 200 && ct < 260 {
			slow = 2.5
		}
		base := (180 + 60*noise(i, salt)) * slow * worse
		ch := IntentChange{Revision: uint64(100 + i), Step: step, Description: "policy update " + string(rune('A'+i%26)), At: at(ct), Targets: 1000,
			To50Ms: Float(round(base, 1)), To90Ms: Float(round(base*2.1, 1)), To99Ms: Float(round(base*3.4, 1)), To100Ms: Float(round(base*4.8, 1))}
		if head && ct == 225 {
			ch.To100Ms = nil // three DSNs behind the latency fault never acked it
		}
		r.Convergence = append(r.Convergence, ch)
	}

	// Samples every 5 s.
	r.Acked = Series{Name: "acked", Unit: UnitPercent}
	r.API = API{P50: Series{Name: "p50", Unit: UnitMillis}, P99: Series{Name: "p99", Unit: UnitMillis},
		Requests: Series{Name: "requests", Unit: UnitPerSecond}, Errors: Series{Name: "errors", Unit: UnitPerSecond}}
	cp := Component{Name: ComponentControlPlane, CPU: Series{Name: "cpu", Unit: UnitSeconds}, RSS: Series{Name: "rss", Unit: UnitBytes}}
	fleet := Component{Name: ComponentFleet, CPU: Series{Name: "cpu", Unit: UnitSeconds}, RSS: Series{Name: "rss", Unit: UnitBytes}}
	harness := Component{Name: ComponentHarness, CPU: Series{Name: "cpu", Unit: UnitSeconds}, RSS: Series{Name: "rss", Unit: UnitBytes}}
	connected := Series{Name: "connected dsns", Unit: "dsns"}
	rejections := Series{Name: "admission rejections", Unit: UnitPerSecond}
	var cpCPU, fleetCPU, harnessCPU float64
	const mib = 1 << 20
	for i := 0; i <= 72; i++ {
		s := float64(i * 5)
		tm := at(s)
		n := noise(i, salt)
		inStorm := s >= 60 && s < 130
		acked := 100.0
		switch {
		case s >= 60 && s < 65:
			acked = 12
		case inStorm:
			acked = math.Min(100, 12+88*(s-65)/55)
		case s >= 200 && s < 260:
			acked = 90 + 8*n
		}
		r.Acked.Add(start, tm, round(acked, 1))
		p50, p99, errs := 7+2*n, 38+12*n, 0.0
		if inStorm {
			p50, p99, errs = 22+6*n, (170+60*n)*worse, 8+6*n
		}
		r.API.P50.Add(start, tm, round(p50, 2))
		r.API.P99.Add(start, tm, round(p99, 2))
		r.API.Requests.Add(start, tm, round(200-10*n-20*b2f(inStorm), 1))
		r.API.Errors.Add(start, tm, round(errs, 2))
		cpRate, cpRSS := 0.3+0.1*n, 180.0+10*n
		if inStorm {
			cpRate, cpRSS = 1.5+0.3*n, 380+40*n
		} else if s >= 180 && s < 300 {
			cpRate, cpRSS = 0.6+0.15*n, 250+15*n
		}
		if i > 0 {
			cpCPU += cpRate * 5 * worse
			fleetCPU += (0.4 + 0.5*b2f(inStorm) + 0.1*n) * 5
			harnessCPU += (0.1 + 0.02*n) * 5
		}
		cp.CPU.Add(start, tm, round(cpCPU, 2))
		cp.RSS.Add(start, tm, float64(int64(cpRSS*worse*mib)))
		fleet.CPU.Add(start, tm, round(fleetCPU, 2))
		fleet.RSS.Add(start, tm, float64(int64((900+20*n)*mib)))
		harness.CPU.Add(start, tm, round(harnessCPU, 2))
		harness.RSS.Add(start, tm, float64(int64((60+4*n)*mib)))
		conn := 1000.0
		if s >= 60 && s < 110 {
			conn = math.Min(1000, 1000*(s-60)/50)
		}
		connected.Add(start, tm, conn)
		rej := 0.0
		if s >= 60 && s < 100 {
			rej = round(40*(1-(s-60)/40)+5*n, 1)
		}
		rejections.Add(start, tm, rej)
	}
	for _, c := range []*Component{&cp, &fleet, &harness} {
		c.CPUSeconds = c.CPU.Points[len(c.CPU.Points)-1].V
		for _, p := range c.RSS.Points {
			c.PeakRSSBytes = max(c.PeakRSSBytes, int64(p.V))
		}
	}
	r.Components = []Component{cp, fleet, harness}

	reconnect := round(41200*worse, 0)
	p99 := round(seriesMaxValue(r.API.P99), 2)
	r.Measurements = []Measurement{
		{Name: "restart-storm", Kind: "reconnect", Step: "storm",
			Values: []Value{{Name: "reconnect_p99", Value: reconnect, Unit: UnitMillis}, {Name: "admission_rejections", Value: round(612*worse, 0)}, {Name: "resyncs", Value: 1000, Better: Neutral}},
			Series: []Series{connected, rejections}},
		{Name: "api-latency", Kind: "api-latency",
			Values: []Value{{Name: "p50", Value: round(seriesMedian(r.API.P50), 2), Unit: UnitMillis}, {Name: "p99", Value: p99, Unit: UnitMillis}, {Name: "throughput", Value: 191.4, Unit: UnitPerSecond}}},
		{Name: "convergence", Kind: "convergence", Step: "policy-churn",
			Values: []Value{{Name: "to99_p99", Value: round(3120*worse, 0), Unit: UnitMillis}, {Name: "unacked", Value: b2f(head) * 3}}},
	}
	if head {
		addTrouble(r, at)
	}
	r.SLOs = []Verdict{
		verdict("storm reconnect p99 < 60s", "restart-storm.reconnect_p99", OpLT, 60000, UnitMillis, reconnect),
		verdict("API p99 <= 250ms", "api-latency.p99", OpLE, 250, UnitMillis, p99),
		verdict("convergence p99 < 5s", "convergence.to99_p99", OpLT, 5000, UnitMillis, round(3120*worse, 0)),
		verdict("no unacked changes", "convergence.unacked", OpEQ, 0, "", b2f(head)*3),
		verdict("control-plane peak RSS < 1 GiB", "cp.peak_rss", OpLT, 1<<30, UnitBytes, float64(cp.PeakRSSBytes)),
	}
	r.Result = ResultPass
	for _, v := range r.SLOs {
		if !v.Pass {
			r.Result = ResultFail
		}
	}
	return r
}

func verdict(name, m string, op Op, threshold float64, unit string, observed float64) Verdict {
	return Verdict{Name: name, Measurement: m, Op: op, Threshold: threshold, Unit: unit, Observed: Float(observed), Pass: op.Holds(observed, threshold)}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func seriesMaxValue(s Series) float64 { return maxOf(values(s)) }
func seriesMedian(s Series) float64   { return median(values(s)) }

// addTrouble gives the head run what went wrong beside its SLOs: anomalies, a load's setup
// phase, measurement notes, a value that could not be measured and DSNs that stood out.
func addTrouble(r *Run, at func(float64) time.Time) {
	// The churn's load was set up in the first 4 s of its step.
	r.Steps = []Step{r.Steps[0], r.Steps[1], {Name: "policy-churn:setup", Phase: PhaseSetup, Start: at(180), End: at(184)},
		{Name: "policy-churn", Start: at(184), End: at(300)}, r.Steps[3]}
	r.Anomalies = []Anomaly{
		{Kind: "generator-limited", Source: "api-latency", Summary: "step storm: load generator limited: 1,512 of 23,630 iterations (6.4%) started more than 10ms late (worst 48ms)",
			Count: 1512, Of: 23630},
		{Kind: "dropped", Source: "cp-drops", Summary: `the control plane counted 577,405 dropped: dsnscale_queue_dropped_total{queue="events",reason="full"}`, Count: 577405},
		{Kind: "lost", Source: "telemetry", Summary: "telemetry events: 643,685 found again of 1,237,339 sent (593,654 not found by the end of the run)",
			Count: 593654, Of: 1237339},
		{Kind: "duplicated", Source: "watch-correctness", Summary: "437 watch duplicates on 434 DSNs (changes a DSN received again)", Count: 437,
			DSNs: []string{"dsn-0007", "dsn-0011", "dsn-0042"}, Examples: []string{"dsn-0007 at +1m2s: revision 102 after 102"}},
	}
	for i := range r.Measurements {
		switch r.Measurements[i].Name {
		case "api-latency":
			r.Measurements[i].Notes = []string{"generator limited: 1512 of 23630 iterations (6.4%) started more than 10ms late (worst 48ms)"}
		case "convergence":
			r.Measurements[i].Values = append(r.Measurements[i].Values, Value{Name: "to100_p99", Unit: UnitMillis, Missing: "3 changes never reached every DSN"})
		}
	}
	// 1,000 DSNs over two sites of five racks: rack eu1-r3 recovered slowly, and so did four
	// DSNs elsewhere; three DSNs needed corrective actions.
	labels := map[string]map[string]string{}
	recovery, corrective := map[string]float64{}, map[string]float64{}
	censored := map[string]bool{}
	for i := range 1000 {
		id := fmt.Sprintf("dsn-%04d", i)
		site := []string{"eu1", "us1"}[i%2]
		rack := fmt.Sprintf("%s-r%d", site, (i/2)%5)
		labels[id] = map[string]string{"site": site, "rack": rack, "group": []string{"web", "db", "edge"}[i%3]}
		v := 3.1 + 0.8*noise(i, 3)
		if rack == "eu1-r3" {
			v += 4
		}
		recovery[id] = round(v, 3)
		corrective[id] = 0
	}
	for _, id := range []string{"dsn-0101", "dsn-0512", "dsn-0777"} {
		recovery[id] += 20
	}
	recovery["dsn-0999"], censored["dsn-0999"] = 65.2, true
	corrective["dsn-0512"], corrective["dsn-0777"], corrective["dsn-0013"] = 4, 2, 1
	rec := AnalyseDSNs("recovery_seconds", "recovery time after a restart fault", UnitSeconds, recovery, censored, labels)
	rec.Note = "from the restart fault until the DSN served the current revision again; the slowest of its restarts"
	cor := AnalyseDSNs("corrective_actions", "corrective actions", "", corrective, nil, labels)
	r.DSNs = []DSNFigure{rec, cor, {Name: "dropped_acks", Label: "dropped acks", Missing: "the fleet does not count the acks its DSNs drop"}}
}
