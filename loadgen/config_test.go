package loadgen

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func TestParseRate(t *testing.T) {
	tests := []struct {
		in      string
		want    Rate
		wantErr string
	}{
		{in: "2000/s", want: 2000},
		{in: "90/m", want: 1.5},
		{in: "3600/h", want: 1},
		{in: "0.5/s", want: 0.5},
		{in: " 10/s ", want: 10},
		{in: "2000", wantErr: `rate "2000" has no unit: want N/s, N/m or N/h`},
		{in: "10/d", wantErr: `unit "d" is not s, m or h`},
		{in: "ten/s", wantErr: `"ten" is not a decimal number`},
		{in: "-1/s", wantErr: `rate "-1/s" is negative`},
		{in: "NaN/s", wantErr: `"NaN" is not a decimal number`},
		{in: "0x10/s", wantErr: `"0x10" is not a decimal number`},
		{in: "/s", wantErr: `"" is not a decimal number`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRate(tt.in)
			if tt.wantErr != "" {
				require.ErrorIs(t, err, ErrInvalidConfig)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.InDelta(t, float64(tt.want), float64(got), 1e-12)
		})
	}
}

func TestRateText(t *testing.T) {
	var r Rate
	require.NoError(t, r.UnmarshalText([]byte("120/m")))
	b, err := r.MarshalText()
	require.NoError(t, err)
	assert.Equal(t, "2/s", string(b))
}

func TestValidate(t *testing.T) {
	stages := []Stage{{Duration: 10 * time.Second, Rate: 100}}
	tests := []struct {
		name string
		cfg  ExecutorConfig
		want []string // every FieldError text expected, in order
	}{
		{name: "constant rate ok", cfg: ExecutorConfig{Rate: 100, Duration: time.Second}},
		{name: "constant rate explicit ok", cfg: ExecutorConfig{Type: ConstantArrivalRate, Rate: 100, Duration: time.Second, PreAllocatedVUs: 5, MaxVUs: 10}},
		{name: "constant rate missing", cfg: ExecutorConfig{}, want: []string{
			"rate: required: a positive rate such as 100/s",
			"duration: required: a positive duration such as 30s",
		}},
		{name: "constant rate with stages and vus", cfg: ExecutorConfig{Rate: 1, Duration: time.Second, Stages: stages, VUs: 3}, want: []string{
			"stages: not used by constant-arrival-rate (ramping-arrival-rate ramps)",
			"vus: not used by constant-arrival-rate: size the VU pool with preAllocatedVUs and maxVUs",
		}},
		{name: "maxVUs below preAllocated", cfg: ExecutorConfig{Rate: 1, Duration: time.Second, PreAllocatedVUs: 10, MaxVUs: 5}, want: []string{
			"maxVUs: 5 is below preAllocatedVUs 10",
		}},
		{name: "negative values", cfg: ExecutorConfig{Rate: -1, Duration: -time.Second, VUs: -1, GracefulStop: -1}, want: []string{
			"rate: must not be negative, got -1/s",
			"duration: must not be negative, got -1s",
			"gracefulStop: must be in 0-1h, got -1ns",
			"vus: must be in 0-100000, got -1",
		}},
		{name: "rate over limit", cfg: ExecutorConfig{Rate: 2_000_000, Duration: time.Second}, want: []string{
			"rate: 2000000/s is over the limit of 1000000/s",
		}},
		{name: "ramping rate ok", cfg: ExecutorConfig{Type: RampingArrivalRate, Stages: stages}},
		{name: "ramping rate no stages", cfg: ExecutorConfig{Type: RampingArrivalRate, Duration: time.Second}, want: []string{
			"stages: required: at least one stage of duration and target rate",
			"duration: not used by ramping-arrival-rate: the stages set the duration",
		}},
		{name: "ramping rate bad stage", cfg: ExecutorConfig{Type: RampingArrivalRate, Stages: []Stage{{Duration: time.Second, Rate: 10}, {Duration: 0, VUs: 2}}}, want: []string{
			"stages[1].duration: must be positive, got 0s",
		}},
		{name: "ramping rate vus in stage", cfg: ExecutorConfig{Type: RampingArrivalRate, Stages: []Stage{{Duration: time.Second, Rate: 10}, {Duration: time.Second, VUs: 2}}}, want: []string{
			"stages[1].vus: not used by ramping-arrival-rate: a stage sets a target rate",
		}},
		{name: "ramping rate all zero", cfg: ExecutorConfig{Type: RampingArrivalRate, Stages: []Stage{{Duration: time.Second}}}, want: []string{
			"stages: every rate is 0: nothing would run",
		}},
		{name: "constant vus ok", cfg: ExecutorConfig{Type: ConstantVUs, VUs: 3, Duration: time.Second}},
		{name: "constant vus wrong fields", cfg: ExecutorConfig{Type: ConstantVUs, Rate: 5, MaxVUs: 3, PreAllocatedVUs: 1}, want: []string{
			"vus: required: a positive number of virtual users",
			"duration: required: a positive duration such as 30s",
			"rate: not used by constant-vus: a closed model has no arrival rate",
			"maxVUs: not used by constant-vus: set vus",
			"preAllocatedVUs: not used by constant-vus: set vus",
		}},
		{name: "ramping vus ok", cfg: ExecutorConfig{Type: RampingVUs, Stages: []Stage{{Duration: time.Second, VUs: 4}}}},
		{name: "ramping vus rate stage", cfg: ExecutorConfig{Type: RampingVUs, Stages: []Stage{{Duration: time.Second, Rate: 4}}}, want: []string{
			"stages[0].rate: not used by ramping-vus: a stage sets target vus",
			"stages: every target is 0 VUs: nothing would run",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidConfig)
			var got []string
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var fe *FieldError
				require.True(t, errors.As(e, &fe), "%v is not a FieldError", e)
				got = append(got, fe.Error())
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestValidateUnknownType(t *testing.T) {
	err := ExecutorConfig{Type: "constant-arival-rate"}.Validate()
	require.ErrorIs(t, err, ErrUnknownExecutor)
	assert.Contains(t, err.Error(), `"constant-arival-rate"; did you mean "constant-arrival-rate"? (known: constant-arrival-rate, constant-vus, ramping-arrival-rate, ramping-vus)`)
}

func TestRegistryRejectsDuplicates(t *testing.T) {
	t.Cleanup(func() { executors.Unregister("test-dup") })
	typ := ExecutorType{Name: "test-dup", Model: ClosedModel, Plan: vuPlan, New: newVUs}
	require.NoError(t, Register(typ))
	require.ErrorIs(t, Register(typ), ErrDuplicateExecutor)
	require.ErrorIs(t, Register(ExecutorType{Name: ConstantVUs, Model: ClosedModel, Plan: vuPlan, New: newVUs}), ErrDuplicateExecutor)
	require.Error(t, Register(ExecutorType{Name: "incomplete"}))
}

func TestDefaults(t *testing.T) {
	c := ExecutorConfig{Rate: 2000, Duration: time.Second}.WithDefaults()
	assert.Equal(t, ConstantArrivalRate, c.Type)
	assert.Equal(t, DefaultMix, c.Mix)
	assert.Equal(t, DefaultGraceful, c.GracefulStop)
	assert.Equal(t, 100, c.PreAllocatedVUs) // 50ms of 2000/s
	assert.Equal(t, 2000, c.MaxVUs)         // 1s of 2000/s

	c = ExecutorConfig{Rate: 2000, Duration: time.Second, MaxVUs: 20}.WithDefaults()
	assert.Equal(t, 20, c.PreAllocatedVUs, "pre-allocation never exceeds maxVUs")
	assert.NoError(t, ExecutorConfig{Rate: 2000, Duration: time.Second, MaxVUs: 20}.Validate())

	c = ExecutorConfig{Rate: 1, Duration: time.Second}.WithDefaults()
	assert.Equal(t, 1, c.PreAllocatedVUs)
	assert.Equal(t, 10, c.MaxVUs)
}

func TestPlanConstantRate(t *testing.T) {
	p, err := ExecutorConfig{Rate: 100, Duration: 30 * time.Second}.Plan()
	require.NoError(t, err)
	assert.Equal(t, OpenModel, p.Model)
	assert.Equal(t, int64(3000), p.ExpectedIterations)
	assert.Equal(t, 30*time.Second, p.Duration)
	assert.Equal(t, []PlanPoint{{At: 0, Rate: 100}, {At: 30 * time.Second, Rate: 100}}, p.Points)
	assert.Contains(t, p.String(), "3000 iterations, peak 100/s")

	// Rates that are not whole per second still plan exact counts.
	p, err = ExecutorConfig{Rate: 1000.0 / 60, Duration: time.Minute}.Plan()
	require.NoError(t, err)
	assert.Equal(t, int64(1000), p.ExpectedIterations)
	p, err = ExecutorConfig{Rate: 3, Duration: 1500 * time.Millisecond}.Plan()
	require.NoError(t, err)
	assert.Equal(t, int64(5), p.ExpectedIterations) // due at 0, 1/3, 2/3, 1, 4/3
}

func TestPlanRampingRate(t *testing.T) {
	p, err := ExecutorConfig{Type: RampingArrivalRate, Rate: 0, Stages: []Stage{
		{Duration: 10 * time.Second, Rate: 100}, // 500 iterations
		{Duration: 10 * time.Second, Rate: 100}, // 1000
		{Duration: 10 * time.Second, Rate: 0},   // 500
	}}.Plan()
	require.NoError(t, err)
	assert.Equal(t, int64(2000), p.ExpectedIterations)
	assert.Equal(t, 30*time.Second, p.Duration)
	assert.Equal(t, Rate(100), p.PeakRate)
	assert.Equal(t, []PlanPoint{{0, 0, 0}, {10 * time.Second, 100, 0}, {20 * time.Second, 100, 0}, {30 * time.Second, 0, 0}}, p.Points)
}

func TestPlanRampingVUs(t *testing.T) {
	p, err := ExecutorConfig{Type: RampingVUs, VUs: 0, Stages: []Stage{
		{Duration: 4 * time.Second, VUs: 4},
		{Duration: 2 * time.Second, VUs: 4},
		{Duration: 2 * time.Second, VUs: 2},
	}}.Plan()
	require.NoError(t, err)
	assert.Equal(t, ClosedModel, p.Model)
	assert.Equal(t, 4, p.MaxVUs)
	assert.Equal(t, 8*time.Second, p.Duration)
	s := time.Second
	assert.Equal(t, []PlanPoint{{0, 0, 0}, {s, 0, 1}, {2 * s, 0, 2}, {3 * s, 0, 3}, {4 * s, 0, 4}, {7 * s, 0, 3}, {8 * s, 0, 2}}, p.Points)
	// 1+2+3 for the ramp, 4 VUs for 3s, 3 for 1s.
	assert.InDelta(t, 6+12+3, p.VUSeconds, 1e-9)
	assert.Contains(t, p.String(), "at most 4 VUs")
}

func TestPlanInvalid(t *testing.T) {
	_, err := ExecutorConfig{Type: ConstantVUs}.Plan()
	require.ErrorIs(t, err, ErrInvalidConfig)
}

func TestConfigDecodesFromYAML(t *testing.T) {
	src := `
type: ramping-arrival-rate
rate: 10/s
stages:
  - {duration: 30s, rate: 600/m}
  - {duration: 1m, rate: 2000/s}
preAllocatedVUs: 10
maxVUs: 500
gracefulStop: 5s
mix: read-heavy
`
	var c ExecutorConfig
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&c))
	require.NoError(t, c.Validate())
	assert.Equal(t, ExecutorConfig{
		Type: RampingArrivalRate, Rate: 10,
		Stages:          []Stage{{Duration: 30 * time.Second, Rate: 10}, {Duration: time.Minute, Rate: 2000}},
		PreAllocatedVUs: 10, MaxVUs: 500, GracefulStop: 5 * time.Second, Mix: "read-heavy",
	}, c)
	b, err := json.Marshal(c)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"rate":"10/s"`)

	var bad ExecutorConfig
	err = yaml.Unmarshal([]byte("type: constant-arrival-rate\nrate: 10\nstages: [{duration: 1s, rate: fast}]\n"), &bad)
	var te *yaml.TypeError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, []string{
		`line 2: rate "10" has no unit: want N/s, N/m or N/h (for example 2000/s)`,
		`line 3: rate "fast" has no unit: want N/s, N/m or N/h (for example 2000/s)`,
	}, te.Errors)
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"2000/s", "1.5/m", "3/h", "0/s", "-1/s", "x/s", "1e3/s", "/", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidConfig)
			return
		}
		require.GreaterOrEqual(t, float64(r), 0.0)
		back, err := ParseRate(r.String())
		require.NoError(t, err)
		require.Equal(t, r, back)
	})
}
