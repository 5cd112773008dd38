package reports

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// syntheticFleet lays out 1,000 DSNs over 4 sites of 10 racks of 25, in 2 groups, each with a
// value drawn by draw.
func syntheticFleet(draw func(r *rand.Rand, id string) float64) (map[string]float64, map[string]map[string]string) {
	r := rand.New(rand.NewPCG(1, 2))
	values := map[string]float64{}
	labels := map[string]map[string]string{}
	for i := range 1000 {
		id := fmt.Sprintf("dsn-%04d", i)
		rack := i / 25
		labels[id] = map[string]string{"site": fmt.Sprintf("s%d", rack/10), "rack": fmt.Sprintf("r%02d", rack), "group": []string{"web", "db"}[i%2]}
		values[id] = draw(r, id)
	}
	return values, labels
}

func stoodOut(f DSNFigure) []string {
	var out []string
	for _, s := range f.Top {
		if StandsOut(s.Z) {
			out = append(out, s.DSN)
		}
	}
	sort.Strings(out)
	return out
}

func groupsStoodOut(f DSNFigure) []string {
	var out []string
	for _, g := range f.Groups {
		if StandsOut(g.Z) {
			out = append(out, g.Label+"="+g.Value)
		}
	}
	return out
}

func TestAnalyseDSNsFindsPlantedSlowDSNs(t *testing.T) {
	planted := map[string]float64{"dsn-0003": 9, "dsn-0417": 12, "dsn-0555": 8.5, "dsn-0871": 30, "dsn-0999": 10}
	values, labels := syntheticFleet(func(r *rand.Rand, id string) float64 {
		if v, ok := planted[id]; ok {
			return v
		}
		return 3 + 0.3*r.NormFloat64()
	})
	f := AnalyseDSNs("recovery_seconds", "recovery time", UnitSeconds, values, nil, labels)
	require.Empty(t, f.Missing)
	assert.Equal(t, 1000, f.DSNs)
	assert.Equal(t, []string{"dsn-0003", "dsn-0417", "dsn-0555", "dsn-0871", "dsn-0999"}, stoodOut(f))
	assert.Equal(t, 5, f.Outliers)
	assert.Equal(t, "dsn-0871", f.Top[0].DSN, "highest first")
	assert.Equal(t, labels["dsn-0871"], f.Top[0].Labels)
	assert.Empty(t, groupsStoodOut(f), "five slow DSNs make no rack slow")
	total := 0
	for _, b := range f.Histogram {
		total += b.Count
	}
	assert.Equal(t, 1000, total)
	assert.InDelta(t, 3, f.Median, 0.05)
}

func TestAnalyseDSNsFindsTheRackThatStandsOut(t *testing.T) {
	values, labels := syntheticFleet(func(r *rand.Rand, id string) float64 {
		v := 3 + 0.3*r.NormFloat64()
		var i int
		fmt.Sscanf(id, "dsn-%d", &i)
		if i/25 == 17 { // rack r17: every DSN 3 s slower
			v += 3
		}
		return v
	})
	f := AnalyseDSNs("convergence_lag_seconds", "convergence lag", UnitSeconds, values, nil, labels)
	assert.Equal(t, []string{"rack=r17"}, groupsStoodOut(f), "the rack, not its site or group")
	assert.Equal(t, 25, f.Outliers)
	for _, g := range f.Groups {
		if g.Value == "r17" {
			assert.Equal(t, 25, g.Outliers)
			assert.Equal(t, 25, g.DSNs)
		}
	}
}

func TestAnalyseDSNsUniformFleetHasNoOutliers(t *testing.T) {
	for name, draw := range map[string]func(*rand.Rand, string) float64{
		"uniform":   func(r *rand.Rand, _ string) float64 { return 2 + 2*r.Float64() },
		"identical": func(*rand.Rand, string) float64 { return 0 },
	} {
		t.Run(name, func(t *testing.T) {
			values, labels := syntheticFleet(draw)
			f := AnalyseDSNs("x", "x", UnitSeconds, values, nil, labels)
			assert.Zero(t, f.Outliers)
			assert.Empty(t, stoodOut(f))
			assert.Empty(t, groupsStoodOut(f))
			assert.Len(t, f.Top, minTopDSNs, "the few highest are listed even when none stood out")
		})
	}
}

func TestAnalyseDSNsCounts(t *testing.T) {
	// Most DSNs had no corrective action (MAD 0); the three that had several stand out.
	values, labels := syntheticFleet(func(*rand.Rand, string) float64 { return 0 })
	values["dsn-0100"], values["dsn-0200"], values["dsn-0300"] = 3, 2, 5
	f := AnalyseDSNs("corrective_actions", "corrective actions", "", values, nil, labels)
	assert.Equal(t, []string{"dsn-0100", "dsn-0200", "dsn-0300"}, stoodOut(f))
	require.Len(t, f.Histogram, 6, "one bin per count from 0 to 5")
	assert.Equal(t, Bin{From: 0, To: 1, Count: 997}, f.Histogram[0])
	assert.Equal(t, Bin{From: 5, To: 6, Count: 1}, f.Histogram[5])

	empty := AnalyseDSNs("x", "x", "", map[string]float64{}, nil, nil)
	assert.Equal(t, "no DSN has a value", empty.Missing)
}

func TestRobustScale(t *testing.T) {
	m, s := RobustScale([]float64{1, 2, 3, 4, 100})
	assert.Equal(t, 3.0, m)
	assert.InDelta(t, 1/0.6745, s, 1e-9, "MAD 1")
	m, s = RobustScale([]float64{0, 0, 0, 4})
	assert.Equal(t, 0.0, m)
	assert.InDelta(t, 1.2533, s, 1e-9, "MAD 0: the mean absolute deviation, 1")
	_, s = RobustScale([]float64{7, 7, 7})
	assert.Zero(t, s)
}
