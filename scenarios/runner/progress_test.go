package runner

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/dsnscale/dsnscale/scenarios"
	"github.com/dsnscale/dsnscale/scenarios/measure"
)

func TestProgressLines(t *testing.T) {
	var b bytes.Buffer
	s := &scenarios.Scenario{Fleet: scenarios.FleetSpec{Size: 10}}
	p := newProgress(&b, false, s)
	st := &scenarios.Step{Name: "storm", Duration: 30 * time.Second}
	p.Step(1, 3, st, time.Now())
	p.Update("storm", measure.Counts{States: map[string]int{"serving": 7, "restarting": 3}, AtOrPast: 7}, 10, 42, 65*time.Second)
	p.Update("storm", measure.Counts{}, 10, 42, 66*time.Second) // within the interval: not printed
	p.Log("storm: injecting %s", "dsn-restart")
	p.Close()
	out := b.String()
	assert.Contains(t, out, "step 2/3 storm for 30s\n")
	assert.Contains(t, out, "[+1m5s] step 2/3 storm (0s of 30s): acked 70.0% (7/10) at revision 42; serving 7, restarting 3\n")
	assert.Equal(t, 1, strings.Count(out, "acked"))
	assert.Contains(t, out, "storm: injecting dsn-restart\n")
}

func TestProgressBars(t *testing.T) {
	var b bytes.Buffer
	s := &scenarios.Scenario{Fleet: scenarios.FleetSpec{Size: 10}}
	p := newProgress(&b, true, s)
	p.Step(0, 1, &scenarios.Step{Name: "seed", Until: &scenarios.Until{Condition: "converged", Share: 1, Bare: true}, Timeout: time.Minute}, time.Now())
	p.Update("seed", measure.Counts{States: map[string]int{"serving": 10}, AtOrPast: 10}, 10, 5, time.Second)
	p.Log("seed: action %s", "seed-intent")
	p.Close()
	out := b.String()
	assert.Contains(t, out, "step 1/1 seed")
	assert.Contains(t, out, "seed: action seed-intent")
	assert.Contains(t, out, "100.0% at rev 5")
}
