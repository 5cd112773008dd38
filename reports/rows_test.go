package reports

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMissingValueShowsWhy(t *testing.T) {
	r := &Run{SLOs: []Verdict{
		{Name: "a", Measurement: "m.a", Op: OpLE, Threshold: 1, Reason: "the control plane serves no event search"},
		{Name: "b", Measurement: "m.b", Op: OpLE, Threshold: 1},
	}}
	rows := sloRows(r)
	require.Equal(t, "missing: the control plane serves no event search", rows[0].Observed)
	require.Equal(t, "missing", rows[1].Observed)
	var b strings.Builder
	require.NoError(t, RenderSummary(&b, r))
	require.Contains(t, b.String(), "missing: the control plane serves no event search")
}
