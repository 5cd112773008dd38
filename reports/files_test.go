package reports

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// smallRun is a minimal valid run to edit in table tests.
func smallRun() *Run {
	start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	return &Run{
		SchemaVersion: SchemaVersion,
		ID:            "r1",
		Scenario:      Scenario{Name: "smoke"},
		Environment:   Environment{GoVersion: "go1.26.8", OS: "linux", Arch: "amd64", NumCPU: 2, Hostname: "h"},
		Start:         start,
		End:           start.Add(time.Minute),
		Result:        ResultPass,
		SLOs:          []Verdict{{Name: "p99", Measurement: "api.p99", Op: OpLT, Threshold: 100, Unit: UnitMillis, Observed: Float(40), Pass: true}},
	}
}

func TestRunRoundTrips(t *testing.T) {
	for name, run := range map[string]*Run{"fixture": generateRun(true), "base": generateRun(false), "small": smallRun()} {
		t.Run(name, func(t *testing.T) {
			data, err := MarshalRun(run)
			require.NoError(t, err)
			require.True(t, json.Valid(data))
			back, err := Decode(data, "run.json")
			require.NoError(t, err)
			again, err := MarshalRun(back)
			require.NoError(t, err)
			require.Equal(t, string(data), string(again))
			// Times survive as instants.
			require.True(t, back.Start.Equal(run.Start))
			require.Equal(t, run.Figures(), back.Figures())
		})
	}
}

func TestMarshalKeepsLeavesOnOneLine(t *testing.T) {
	data, err := MarshalRun(generateRun(true))
	require.NoError(t, err)
	assert.Contains(t, string(data), "\n            {\"t\":0,\"v\":")
	var compact bytes.Buffer
	require.NoError(t, json.Compact(&compact, data))
	plain, err := json.Marshal(generateRun(true))
	require.NoError(t, err)
	// Same document as encoding/json's, apart from HTML escaping.
	want := strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(plain))
	assert.Equal(t, want, compact.String())
}

func TestDecodeRejectsBrokenFiles(t *testing.T) {
	good, err := MarshalRun(smallRun())
	require.NoError(t, err)
	edit := func(old, new string) string {
		require.Contains(t, string(good), old)
		return strings.Replace(string(good), old, new, 1)
	}
	for _, tc := range []struct {
		name    string
		data    string
		want    []string
		version bool
	}{
		{name: "empty", data: "", want: []string{"run.json", "truncated"}},
		{name: "not json", data: "hello", want: []string{"run.json:1:1", "invalid character"}},
		{name: "syntax error on line 3", data: "{\n  \"schemaVersion\": 1,\n  \"id\": ]\n}", want: []string{"run.json:3:9"}},
		{name: "truncated", data: string(good[:len(good)/2]), want: []string{"truncated"}},
		{name: "missing version", data: `{"id":"x"}`, want: []string{"schemaVersion: missing"}, version: true},
		{name: "future version", data: edit(`"schemaVersion": 1`, `"schemaVersion": 2`), want: []string{"schemaVersion: 2 is not supported (this build reads 1)"}, version: true},
		{name: "version of wrong type", data: edit(`"schemaVersion": 1`, `"schemaVersion": "1"`), want: []string{"run.json:2:", "schemaVersion"}},
		{name: "unknown field", data: edit(`"id": "r1",`, `"id": "r1", "colour": "red",`), want: []string{"run.json:3:15: colour: unknown field \"colour\""}},
		{name: "unknown nested field", data: edit(`"op":"<",`, `"op":"<","weight":2,`), want: []string{"run.json:10:52: ", `slos[0].weight: unknown field "weight"`}},
		{name: "wrong type deep", data: edit(`"threshold":100`, `"threshold":"100"`), want: []string{"slos.threshold", "cannot use JSON string as float64"}},
		{name: "bad time", data: edit(`"start": "2025-01-02T03:04:05Z"`, `"start": "yesterday"`), want: []string{"run.json:6:12: start: \"yesterday\" is not an RFC 3339 time"}},
		{name: "trailing data", data: string(good) + "{}", want: []string{"after top-level value"}},
		{name: "pass with failed SLO", data: edit(`"pass":true`, `"pass":false`), want: []string{"result: is pass but 1 SLO(s) failed", "slos[0].pass: is false but observed 40 < threshold 100 is true"}},
		{name: "bad result", data: edit(`"result": "pass"`, `"result": "ok"`), want: []string{`result: must be "pass", "fail" or "aborted", got "ok"`}},
		{name: "end before start", data: edit(`"end": "2025-01-02T03:05:05Z"`, `"end": "2025-01-02T03:00:00Z"`), want: []string{"end: 2025-01-02T03:00:00Z is before start"}},
		{name: "bad op", data: edit(`"op":"<"`, `"op":"≤"`), want: []string{"slos[0].op: must be one of"}},
		{name: "id with slash", data: edit(`"id": "r1"`, `"id": "../r1"`), want: []string{"id: \"../r1\" must be usable as a directory name"}},
		{name: "no cpus", data: edit(`"numCPU":2`, `"numCPU":0`), want: []string{"environment.numCPU: must be at least 1, got 0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run, err := Decode([]byte(tc.data), "run.json")
			require.Error(t, err)
			assert.Nil(t, run)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.True(t, errors.Is(err, ErrInvalid), "error must wrap ErrInvalid: %v", err)
			assert.Equal(t, tc.version, errors.Is(err, ErrSchemaVersion), "ErrSchemaVersion: %v", err)
		})
	}
}

func TestValidateNamesFieldPaths(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(r *Run)
		want string
	}{
		{"aborted without reason", func(r *Run) { r.Result = ResultAborted }, "error: must not be empty"},
		{"fail without reason", func(r *Run) { r.Result = ResultFail }, "result: is fail but no SLO failed"},
		{"pass with error", func(r *Run) { r.Error = "boom" }, "error: is set on a run whose result is pass"},
		{"observed NaN", func(r *Run) { r.SLOs[0].Observed = Float(math.NaN()) }, "slos[0].observed: must be a finite number, got NaN"},
		{"pass without observation", func(r *Run) { r.SLOs[0].Observed = nil }, "slos[0].pass: is true but nothing was observed"},
		{"duplicate SLO", func(r *Run) { r.SLOs = append(r.SLOs, r.SLOs[0]) }, `slos[1].name: "p99" repeats slos[0]`},
		{"value infinite", func(r *Run) {
			r.Measurements = []Measurement{{Name: "m", Values: []Value{{Name: "v", Value: math.Inf(1)}}}}
		}, "measurements[0].values[0].value: must be a finite number, got +Inf"},
		{"bad direction", func(r *Run) {
			r.Measurements = []Measurement{{Name: "m", Values: []Value{{Name: "v", Better: "up"}}}}
		}, `measurements[0].values[0].better: must be "lower", "higher" or "neutral", got "up"`},
		{"duplicate measurement", func(r *Run) { r.Measurements = []Measurement{{Name: "m"}, {Name: "m"}} }, `measurements[1].name: "m" repeats measurements[0]`},
		{"series out of order", func(r *Run) { r.API.P99 = Series{Name: "p99", Points: []Point{{T: 10, V: 1}, {T: 5, V: 1}}} }, "api.p99.points[1].t: 5 is before the previous point's 10"},
		{"series wrong unit", func(r *Run) { r.Acked = Series{Name: "acked", Unit: "ratio"} }, `acked.unit: must be "%", got "ratio"`},
		{"unnamed measurement series", func(r *Run) { r.Measurements = []Measurement{{Name: "m", Series: []Series{{}}}} }, "measurements[0].series[0].name: must not be empty"},
		{"convergence out of order", func(r *Run) {
			r.Convergence = []IntentChange{{At: r.Start, To50Ms: Float(20), To90Ms: Float(10)}}
		}, "convergence[0].to90Ms: 10 is less than to50Ms 20"},
		{"convergence gap", func(r *Run) {
			r.Convergence = []IntentChange{{At: r.Start, To50Ms: Float(20), To99Ms: Float(30)}}
		}, "convergence[0].to99Ms: is set but to90Ms is not"},
		{"component negative", func(r *Run) { r.Components = []Component{{Name: "cp", CPUSeconds: -1}} }, "components[0].cpuSeconds: must not be negative"},
		{"step unnamed", func(r *Run) { r.Steps = []Step{{Start: r.Start, End: r.End}} }, "steps[0].name: must not be empty"},
		{"fault ends before it starts", func(r *Run) {
			r.Faults = []Fault{{Kind: "k", Start: r.End, End: r.Start}}
		}, "faults[0].end: 2025-01-02T03:04:05Z is before start"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := smallRun()
			tc.edit(r)
			err := r.Validate()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			var fe *FieldError
			assert.True(t, errors.As(err, &fe))
			assert.ErrorIs(t, err, ErrInvalid)
		})
	}
	require.NoError(t, smallRun().Validate())
}

func TestValidateCapsProblemCount(t *testing.T) {
	r := smallRun()
	for i := 0; i < 50; i++ {
		r.Steps = append(r.Steps, Step{})
	}
	err := r.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "more problems")
	assert.LessOrEqual(t, strings.Count(err.Error(), "\n"), maxProblems+1)
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(t.TempDir())
	require.Error(t, err)
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

func TestWriteInvalidRunKeepsRunJSON(t *testing.T) {
	dir := t.TempDir()
	r := smallRun()
	r.Result = ResultAborted // without a reason: invalid
	err := Write(dir, r)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrInvalid)
	assert.Contains(t, err.Error(), "run.json written but not rendered")
	assert.FileExists(t, filepath.Join(dir, RunFile))
	assert.NoFileExists(t, filepath.Join(dir, ReportFile))
}

func TestWriteNonFiniteNumberNamesField(t *testing.T) {
	dir := t.TempDir()
	r := smallRun()
	r.Measurements = []Measurement{{Name: "m", Values: []Value{{Name: "v", Value: math.NaN()}}}}
	err := Write(dir, r)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "measurements[0].values[0].value")
}

// A renderer's file that cannot be written must not cost the other files, nor run.json.
func TestWriteRendererFailureKeepsTheRest(t *testing.T) {
	dir := t.TempDir()
	// A non-empty directory where report.html goes makes its rename fail.
	require.NoError(t, os.MkdirAll(filepath.Join(dir, ReportFile, "x"), 0o755))
	err := Write(dir, smallRun())
	require.Error(t, err)
	assert.Contains(t, err.Error(), ReportFile)
	for _, f := range []string{RunFile, SummaryFile, JUnitFile} {
		assert.FileExists(t, filepath.Join(dir, f))
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		assert.False(t, strings.Contains(e.Name(), ".tmp-"), "temporary file left behind: %s", e.Name())
	}
	_, err = Load(dir)
	require.NoError(t, err)
}

func TestRenderRedoesDerivedFiles(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, Write(dir, smallRun()))
	first, err := os.ReadFile(filepath.Join(dir, ReportFile))
	require.NoError(t, err)
	for _, f := range []string{ReportFile, SummaryFile, JUnitFile} {
		require.NoError(t, os.Remove(filepath.Join(dir, f)))
	}
	require.NoError(t, Render(dir))
	again, err := os.ReadFile(filepath.Join(dir, ReportFile))
	require.NoError(t, err)
	assert.Equal(t, string(first), string(again))
	assert.FileExists(t, filepath.Join(dir, SummaryFile))
	assert.FileExists(t, filepath.Join(dir, JUnitFile))

	require.NoError(t, os.WriteFile(filepath.Join(dir, RunFile), []byte("{"), 0o644))
	assert.ErrorIs(t, Render(dir), ErrInvalid)
}

// FuzzDecode: any input either fails with an error wrapping ErrInvalid, or decodes into a
// valid run that re-encodes and renders without error.
func FuzzDecode(f *testing.F) {
	good, err := MarshalRun(smallRun())
	require.NoError(f, err)
	f.Add(good)
	f.Add([]byte(`{"schemaVersion":1}`))
	f.Add([]byte(`{"schemaVersion":2}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		run, err := Decode(data, "run.json")
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		out, err := MarshalRun(run)
		if err != nil {
			t.Fatalf("valid run does not marshal: %v", err)
		}
		if _, err := Decode(out, "again"); err != nil {
			t.Fatalf("re-encoded run does not decode: %v", err)
		}
		for _, render := range []func(io.Writer, *Run) error{RenderHTML, RenderSummary, RenderJUnit} {
			if err := render(io.Discard, run); err != nil {
				t.Fatalf("valid run does not render: %v", err)
			}
		}
	})
}
