package reports

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMissingValueJSON(t *testing.T) {
	b, err := json.Marshal(Value{Name: "lost_dsns", Missing: "the fleet has no DSNs: nothing to measure"})
	require.NoError(t, err)
	assert.JSONEq(t, `{"name":"lost_dsns","missing":"the fleet has no DSNs: nothing to measure"}`, string(b), "no number, so no reader takes it for 0")

	b, err = json.Marshal(Value{Name: "lost_dsns", Value: 0})
	require.NoError(t, err)
	assert.JSONEq(t, `{"name":"lost_dsns","value":0}`, string(b), "a measured 0 keeps its number")

	var v Value
	require.NoError(t, json.Unmarshal([]byte(`{"name":"x","unit":"s","missing":"why <not>"}`), &v))
	assert.Equal(t, Value{Name: "x", Unit: "s", Missing: "why <not>"}, v)
	assert.False(t, v.Present())
	require.Error(t, json.Unmarshal([]byte(`{"name":"x","value":1,"extra":2}`), &v), "unknown fields are refused")

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // as MarshalRun does
	require.NoError(t, enc.Encode(Value{Name: "x", Missing: "a < b & c"}))
	assert.Contains(t, buf.String(), `"a < b & c"`, "run.json is not escaped for HTML")
}

func TestValidateMissingValuesAndVerdicts(t *testing.T) {
	base := func() *Run {
		r := loadFixture(t, "run.json")
		return r
	}
	for _, tc := range []struct {
		name string
		edit func(r *Run)
		want string
	}{
		{"a value with neither a number nor a reason", func(r *Run) {
			r.Measurements[0].Values[0] = mustDecodeValue(t, `{"name":"v"}`)
		}, "measurements[0].values[0].value: is absent"},
		{"a missing value with a number", func(r *Run) {
			r.Measurements[0].Values[0] = Value{Name: "v", Value: 3, Missing: "why"}
		}, "is set on a value that says it is missing"},
		{"a verdict passing on nothing", func(r *Run) {
			r.SLOs[0].Observed, r.SLOs[0].Pass, r.Result = nil, true, ResultPass
		}, "slos[0].pass: is true but nothing was observed and missingOK is false"},
		{"a setup phase of another name", func(r *Run) { r.Steps[0].Phase = "warmup" }, `steps[0].phase: must be empty or "setup"`},
		{"an anomaly without a summary", func(r *Run) { r.Anomalies = []Anomaly{{Kind: "lost", Source: "lost-dsns", Count: 1}} }, "anomalies[0].summary: must not be empty"},
		{"a histogram that does not add up", func(r *Run) { r.DSNs[0].Histogram[0].Count++ }, "dsns[0].histogram: counts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := base()
			tc.edit(r)
			err := r.Validate()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}

	r := base()
	r.SLOs[0].Observed, r.SLOs[0].MissingOK, r.SLOs[0].Pass, r.SLOs[0].Reason = nil, true, true, "no restart"
	require.NoError(t, r.Validate(), "an SLO that allows a missing value passes on one")
}

func mustDecodeValue(t *testing.T, s string) Value {
	t.Helper()
	var v Value
	require.NoError(t, json.Unmarshal([]byte(s), &v))
	return v
}
