package runner

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/scenarios"
	"github.com/dsnscale/dsnscale/simdsn/record"
)

type fixedClock struct{ now time.Time }

func (c fixedClock) Now() time.Time                         { return c.now }
func (c fixedClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// admittingFleet is a fleet whose only behaviour under test is what it says is admitting.
type admittingFleet struct {
	Fleet
	list []admittingDSN
}

func (f admittingFleet) Admitting() []admittingDSN { return f.list }

func TestAdmittingSinceIsTheEntryIntoTheState(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := record.DSNReport{State: "admitting", StateSince: t0.Add(9 * time.Second), Transitions: []record.Transition{
		{At: t0, From: "off", To: "booting"},
		{At: t0.Add(1 * time.Second), From: "booting", To: "admitting", Stage: "connect"},
		{At: t0.Add(2 * time.Second), From: "admitting", To: "admitting", Stage: "connect-wait"},
		{At: t0.Add(9 * time.Second), From: "admitting", To: "admitting", Stage: "connect"},
	}}
	assert.Equal(t, t0.Add(time.Second), admittingSince(r), "each retry is a stage change, not a new entry")
	r.Transitions = append(r.Transitions, record.Transition{At: t0.Add(20 * time.Second), From: "admitting", To: "serving"},
		record.Transition{At: t0.Add(30 * time.Second), From: "serving", To: "admitting"})
	assert.Equal(t, t0.Add(30*time.Second), admittingSince(r))
}

func TestCheckAdmission(t *testing.T) {
	now := time.Unix(5000, 0)
	old, recent := now.Add(-2*time.Minute), now.Add(-10*time.Second)
	refused := "connect: 401 Unauthorized: token: the bootstrap token is not valid"
	paced := record.AdmissionRetry + ": busy"
	for _, c := range []struct {
		name     string
		list     []admittingDSN
		deadline time.Duration
		want     string
	}{
		{"none admitting", nil, 0, ""},
		{"admitting within the deadline", []admittingDSN{{Since: recent, Reason: refused}}, 0, ""},
		{"refused past the deadline", []admittingDSN{{Since: old, Reason: refused}, {Since: recent, Reason: refused}, {Since: recent}},
			0, "DSNs not admitted: 3 DSNs admitting, 1 of them for longer than 1m0s; why: 2 × " + refused + "; 1 × " + noReason},
		{"paced by admission control", []admittingDSN{{Since: old, Reason: paced}, {Since: old, Reason: paced}}, 0, ""},
		{"a scenario's shorter deadline", []admittingDSN{{Since: recent, Reason: refused}}, 5 * time.Second,
			"1 DSNs admitting, 1 of them for longer than 5s"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := &engine{s: &scenarios.Scenario{Fleet: scenarios.FleetSpec{AdmissionDeadline: c.deadline}},
				opts: Options{}.withDefaults(), clock: fixedClock{now}, fleet: admittingFleet{list: c.list}}
			err := e.checkAdmission()
			if c.want == "" {
				require.NoError(t, err)
				return
			}
			require.True(t, errors.Is(err, ErrAdmission), "%v", err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}
