package measure

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

func init() { mustRegister(lostDSNs{}) }

var figLost = Figure{"lost_dsns", UnitCount, "DSNs not back in session and forwarding traffic at the end of the window"}

// lostDSNs counts the DSNs that, at the end of the window, are not in session with the control
// plane or not forwarding traffic: the ones that never recovered.
type lostDSNs struct{}

func (lostDSNs) Name() string { return "lost-dsns" }

func (lostDSNs) Description() string {
	return "DSNs that never recovered: not in session and forwarding at the end of the window"
}

func (lostDSNs) Figures() []Figure { return []Figure{figLost} }

func (lostDSNs) FindsAnomalies() {}

// Lost is a DSN that did not recover, with its last state.
type Lost struct {
	DSN      string `json:"dsn"`
	State    string `json:"state"`
	Revision uint64 `json:"revision"`
}

func (lostDSNs) Measure(_ context.Context, in *Input) (Result, error) {
	if len(in.DSNs) == 0 {
		return Result{Values: []Value{missing(figLost, noFleet)}}, nil
	}
	var lost []Lost
	for _, id := range in.DSNs {
		changes, applies, _ := in.Timeline.History(id)
		st := StatusAt(changes, applies, in.End)
		if !st.Session || !st.DataPlane {
			lost = append(lost, Lost{DSN: id, State: st.State, Revision: st.Revision})
		}
	}
	sort.Slice(lost, func(i, j int) bool { return lost[i].DSN < lost[j].DSN })
	res := Result{Values: []Value{value(figLost, float64(len(lost)))}, Details: lost}
	if len(lost) > 0 {
		ids := make([]string, len(lost))
		states := map[string]int{}
		for i, l := range lost {
			ids[i] = l.DSN
			states[l.State]++
		}
		var byState []string
		for _, st := range sortedKeys(states) {
			byState = append(byState, fmt.Sprintf("%s %s", count(float64(states[st])), st))
		}
		res.Anomalies = append(res.Anomalies, Anomaly{
			Kind:    AnomalyLost,
			Summary: fmt.Sprintf("%s of %s not in session and forwarding at the end (%s)", countOf(len(lost), "DSN", "DSNs"), count(float64(len(in.DSNs))), strings.Join(byState, ", ")),
			Count:   float64(len(lost)), Of: float64(len(in.DSNs)), DSNs: limit(ids, maxAnomalyDSNs),
		})
	}
	return res, nil
}
