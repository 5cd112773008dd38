package trafficmap

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/simdsn/stage"
)

func TestDefaultMap(t *testing.T) {
	m := Default()
	assert.Equal(t, 400, m.DSNs())
	assert.Equal(t, 10*time.Second, m.Heartbeat)
	for _, g := range m.Groups {
		assert.Equal(t, 50, g.Telemetry.Series)
		assert.Equal(t, 10*time.Second, g.Telemetry.Interval)
		assert.Equal(t, "default", g.Stages)
	}
}

const small = `apiVersion: dsnscale/v1
kind: TrafficMap
name: small
total: 10
sites:
  - name: s1
    racks:
      - {name: r1, dsns: 6}
      - {name: r2, dsns: 4}
groups:
  - name: a
    count: 7
    labels: {role: web}
    traffic:
      connectionsPerSecond: 10
      flows:
        - {probability: 0.5, to: {labels: {app: web}}, protocol: tcp, port: 443}
        - {probability: 0.5, to: {labels: {app: db}}, protocol: tcp, port: 5432}
  - name: b
    count: 3
    misbehaviours: [slow-apply]
`

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, old, new, want string }{
		{"unknown field", "total: 10", "totl: 10", `small.yaml:4: totl: unknown field; did you mean "total"? (known: apiVersion, kind, name, description, total, heartbeat, sites, groups)`},
		{"counts", "count: 7", "count: 8", `sites[0].racks: counts do not add up: the racks of site "s1" hold 10 DSNs but its groups have 11`},
		{"total", "total: 10", "total: 12", `total: counts do not add up: total is 12 but the groups have 10`},
		{"negative rate", "connectionsPerSecond: 10", "connectionsPerSecond: -1", `small.yaml:15: groups[0].traffic.connectionsPerSecond: must be a non-negative number, got -1`},
		{"probability", "probability: 0.5, to: {labels: {app: web}}", "probability: 1.5, to: {labels: {app: web}}", `groups[0].traffic.flows[0].probability: probability 1.5 is outside [0,1]`},
		{"probability sum", "probability: 0.5, to: {labels: {app: db}}", "probability: 0.4, to: {labels: {app: db}}", `flow probabilities add up to 0.9, not 1`},
		{"unknown misbehaviour", "[slow-apply]", "[slow-aply]", `small.yaml:21: groups[1].misbehaviours[0]: unknown misbehaviour "slow-aply"; did you mean "slow-apply"?`},
		{"unknown stage set", "name: b\n", "name: b\n    stages: nope\n", `groups[1].stages: unknown stage set "nope" (known: default`},
		{"misspelt stage set", "name: b\n", "name: b\n    stages: defualt\n", `groups[1].stages: unknown stage set "defualt"; did you mean "default"?`},
		{"negative count", "count: 3", "count: -3", `groups[1].count: must not be negative`},
		{"bad site", "name: b\n", "name: b\n    site: s9\n", `groups[1].site: unknown site "s9"`},
		{"bad port", "port: 443", "port: 70000", `port 70000 is outside 0-65535`},
		{"bad label", "{role: web}", "{'ro,le': web}", `label key "ro,le"`},
		{"series", "misbehaviours: [slow-apply]", "misbehaviours: [slow-apply]\n    telemetry: {series: 3}", `groups[1].telemetry.series: must be at least 10`},
		{"kind", "kind: TrafficMap", "kind: Map", `small.yaml:2: kind: must be "TrafficMap", got "Map"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Contains(t, small, tt.old)
			src := strings.Replace(small, tt.old, tt.new, 1)
			_, err := Parse("small.yaml", []byte(src), stage.Default())
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.True(t, errors.Is(err, ErrInvalid))
		})
	}
	_, err := Parse("small.yaml", []byte(small), stage.Default())
	require.NoError(t, err)
}

func TestPlace(t *testing.T) {
	m, err := Parse("small.yaml", []byte(small), stage.Default())
	require.NoError(t, err)
	ps, err := m.Place(0, "d")
	require.NoError(t, err)
	require.Len(t, ps, 10)
	perRack := map[string]int{}
	perGroup := map[string]int{}
	for _, p := range ps {
		perRack[p.Rack]++
		perGroup[p.Group]++
		assert.Equal(t, p.Rack, p.Labels[LabelRack])
		assert.Equal(t, "s1", p.Labels[LabelSite])
	}
	assert.Equal(t, map[string]int{"r1": 6, "r2": 4}, perRack)
	assert.Equal(t, map[string]int{"a": 7, "b": 3}, perGroup)
	assert.Equal(t, "d0", ps[0].ID)
	assert.Equal(t, "web", ps[0].Labels["role"])

	// Scaled up: the shape is kept and everything adds up.
	ps, err = m.Place(1000, "sim-")
	require.NoError(t, err)
	require.Len(t, ps, 1000)
	perRack, perGroup = map[string]int{}, map[string]int{}
	ids := map[string]bool{}
	for _, p := range ps {
		perRack[p.Rack]++
		perGroup[p.Group]++
		ids[p.ID] = true
	}
	assert.Len(t, ids, 1000)
	assert.Equal(t, map[string]int{"r1": 600, "r2": 400}, perRack)
	assert.Equal(t, map[string]int{"a": 700, "b": 300}, perGroup)
	assert.Equal(t, "sim-000", ps[0].ID)

	d := Default()
	ps, err = d.Place(10000, "x")
	require.NoError(t, err)
	perRack = map[string]int{}
	for _, p := range ps {
		perRack[p.Rack]++
	}
	assert.Len(t, perRack, 8)
	for r, n := range perRack {
		assert.Equal(t, 1250, n, r)
	}
}

func TestScale(t *testing.T) {
	assert.Equal(t, []int{4, 3, 3}, scale([]int{1, 1, 1}, 10))
	assert.Equal(t, []int{0, 0}, scale([]int{5, 5}, 0))
	assert.Equal(t, []int{2, 1}, scale([]int{0, 0}, 3))
	assert.Equal(t, []int{67, 33}, scale([]int{2, 1}, 100))
}
