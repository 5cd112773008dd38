package faults

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// misFleet records the misbehaviours asked of it; it is the collaborator under control here.
type misFleet struct {
	*recFleet
	sim    string
	ids    []string
	params map[string]string
	window time.Duration
	undone int
}

func (f *misFleet) Misbehave(_ context.Context, sim string, ids []string, params map[string]string, window time.Duration) (func(context.Context) error, error) {
	f.sim, f.ids, f.params, f.window = sim, ids, params, window
	return func(context.Context) error { f.undone++; return nil }, nil
}

func TestMisbehaviourKinds(t *testing.T) {
	for _, c := range []struct {
		kind   string
		params map[string]string
		sim    string
		want   map[string]string
	}{
		{"dsn-clock-skew", map[string]string{"skew": "-1h"}, "clock-skew", map[string]string{"skew": "-1h"}},
		{"dsn-slow-apply", nil, "slow-apply", map[string]string{"delay": "5s"}},
		{"dsn-drop-acks", map[string]string{"probability": "0.5"}, "drop-acks", map[string]string{"probability": "0.5"}},
		{"dsn-disk-degraded", map[string]string{"loss-per-hour": "50"}, "disk-degradation", map[string]string{"lossPerHour": "50"}},
		{"dsn-temperature", nil, "temperature-rise", map[string]string{"risePerMinute": "2"}},
		{"dsn-flap", map[string]string{"period": "5s"}, "flapping", map[string]string{"period": "5s", "down": "3s"}},
	} {
		t.Run(c.kind, func(t *testing.T) {
			clock := &stepClock{now: time.Unix(0, 0)}
			fl := &misFleet{recFleet: newRecFleet(clock, 10)}
			params := map[string]string{"window": "4s"}
			for k, v := range c.params {
				params[k] = v
			}
			f, err := Default.New(Spec{Kind: c.kind, Target: Target{Count: 3}, Params: params}, Env{Fleet: fl, Clock: clock, Seed: 2})
			require.NoError(t, err)
			require.NoError(t, f.Inject(context.Background()))
			assert.Equal(t, c.sim, fl.sim)
			assert.Equal(t, c.want, fl.params)
			assert.Equal(t, 4*time.Second, fl.window)
			assert.Len(t, fl.ids, 3)
			assert.Equal(t, fl.ids, f.(Targeted).Affected())
			require.NoError(t, f.Recover(context.Background()))
			require.NoError(t, f.Recover(context.Background()))
			assert.Equal(t, 1, fl.undone, "recovered once")
		})
	}
}

func TestMisbehaviourBadSpecs(t *testing.T) {
	for _, c := range []struct {
		spec  Spec
		field string
	}{
		{Spec{Kind: "dsn-clock-skew", Params: map[string]string{"skew": "soon"}}, "params.skew"},
		{Spec{Kind: "dsn-clock-skew", Params: map[string]string{"skew": "0s"}}, "params.skew"},
		{Spec{Kind: "dsn-drop-acks", Params: map[string]string{"probability": "2"}}, "params.probability"},
		{Spec{Kind: "dsn-disk-degraded", Params: map[string]string{"loss-per-hour": "0"}}, "params.loss-per-hour"},
		{Spec{Kind: "dsn-flap", Params: map[string]string{"period": "0s"}}, "params.period"},
		{Spec{Kind: "dsn-slow-apply", Params: map[string]string{"delay": "-1s"}}, "params.delay"},
	} {
		err := Default.Validate(c.spec)
		var se *SpecError
		require.ErrorAs(t, err, &se, "%+v", c.spec)
		assert.Equal(t, c.field, se.Field)
	}
	_, err := Default.New(Spec{Kind: "dsn-slow-apply"}, Env{Fleet: newRecFleet(&stepClock{}, 2)})
	assert.ErrorIs(t, err, ErrUnsupported, "a fleet that cannot misbehave")
}
