package reports

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/reports/stats"
)

// recorded is a distribution of real figures: every measurement value of 8 smoke runs
// (testdata/recorded-smoke.json).
type recorded struct {
	Source  string `json:"source"`
	Figures map[string]struct {
		Unit   string    `json:"unit"`
		Values []float64 `json:"values"`
	} `json:"figures"`
}

func loadRecorded(t testing.TB) recorded {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "recorded-smoke.json"))
	require.NoError(t, err)
	var r recorded
	require.NoError(t, json.Unmarshal(data, &r))
	require.NotEmpty(t, r.Figures)
	return r
}

func (r recorded) names() []string {
	out := make([]string, 0, len(r.Figures))
	for n := range r.Figures {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (r recorded) units() map[string]string {
	out := map[string]string{}
	for n, f := range r.Figures {
		out[n] = f.Unit
	}
	return out
}

// nth returns the recorded value i of every figure (the i-th recorded run).
func (r recorded) nth(i int) map[string]float64 {
	out := map[string]float64{}
	for n, f := range r.Figures {
		out[n] = f.Values[i%len(f.Values)]
	}
	return out
}

// draw returns one value of every figure drawn at random from the distribution its recorded
// values estimate, by a smoothed bootstrap that keeps their mean and variance: a recorded
// value plus normal noise at Silverman's bandwidth h = 1.06 sd n^-1/5, shrunk towards the
// mean by 1/sqrt(1 + h²/sd²), folded at 0. A plain bootstrap would draw copies of eight values,
// and five such draws often repeat one, making the runs look steadier than the figure is.
func (r recorded) draw(rng *rand.Rand) map[string]float64 {
	out := map[string]float64{}
	for _, n := range r.names() {
		vs := r.Figures[n].Values
		sum := stats.Summarize(vs, 0)
		v := vs[rng.IntN(len(vs))]
		if sd := sum.StdDev; sd > 0 {
			h := 1.06 * sd * math.Pow(float64(len(vs)), -0.2)
			v = math.Abs(sum.Mean + (v-sum.Mean+h*rng.NormFloat64())/math.Sqrt(1+h*h/(sd*sd)))
		}
		out[n] = v
	}
	return out
}

var synthStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// synthRun builds a valid smoke run whose measurement values are vals (figure name ->
// value), with the SLOs given; its result follows the SLOs.
func synthRun(i int, id, commit string, vals map[string]float64, units map[string]string, slos ...Verdict) *Run {
	start := synthStart.Add(time.Duration(i) * time.Minute)
	r := &Run{
		SchemaVersion: SchemaVersion,
		ID:            id,
		Scenario:      Scenario{Name: "smoke", Content: "kind: Scenario\n"},
		Params:        map[string]string{"dsns": "100", "rate": "20/s"},
		Environment:   Environment{GitCommit: commit, GoVersion: "go1.26.8", OS: "linux", Arch: "amd64", NumCPU: 2, Hostname: "ci"},
		Start:         start,
		End:           start.Add(20 * time.Second),
		Result:        ResultPass,
		SLOs:          slos,
	}
	for _, v := range slos {
		if !v.Pass {
			r.Result = ResultFail
		}
	}
	names := make([]string, 0, len(vals))
	for n := range vals {
		names = append(names, n)
	}
	sort.Strings(names)
	index := map[string]int{}
	for _, n := range names {
		i := strings.LastIndexByte(n, '.')
		meas, value := n[:i], n[i+1:]
		j, ok := index[meas]
		if !ok {
			j = len(r.Measurements)
			index[meas] = j
			m := Measurement{Name: meas, Kind: meas}
			if step, kind, ok := strings.Cut(meas, "/"); ok {
				m.Step, m.Kind = step, kind
			}
			r.Measurements = append(r.Measurements, m)
		}
		r.Measurements[j].Values = append(r.Measurements[j].Values, Value{Name: value, Value: vals[n], Unit: units[n]})
	}
	return r
}

func pass(name string) Verdict {
	return Verdict{Name: name, Measurement: "m.v", Op: OpEQ, Threshold: 0, Observed: Float(0), Pass: true}
}

func fail(name string) Verdict {
	return Verdict{Name: name, Measurement: "m.v", Op: OpEQ, Threshold: 0, Observed: Float(1)}
}

// setOf wraps runs as one side of a comparison.
func setOf(source string, runs ...*Run) *RunSet {
	return &RunSet{Source: source, Kind: SetGroup, Runs: runs}
}

// recordedSet is n runs whose values are the first n recorded runs', each passed through
// edit (which may change, add or delete figures) before the run is built.
func recordedSet(rec recorded, side, commit string, n int, edit func(i int, vals map[string]float64)) *RunSet {
	var runs []*Run
	for i := range n {
		vals := rec.nth(i)
		if edit != nil {
			edit(i, vals)
		}
		runs = append(runs, synthRun(i, fmt.Sprintf("%s-%d", side, i+1), commit, vals, rec.units()))
	}
	return setOf("runs/"+side, runs...)
}
