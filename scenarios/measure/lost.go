package measure

import (
	"context"
	"sort"
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

// Lost is a DSN that did not recover, with its last state.
type Lost struct {
	DSN      string `json:"dsn"`
	State    string `json:"state"`
	Revision uint64 `json:"revision"`
}

func (lostDSNs) Measure(_ context.Context, in *Input) (Result, error) {
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
		for i, l := range lost {
			ids[i] = l.DSN + " (" + l.State + ")"
		}
		res.Notes = append(res.Notes, "lost: "+firstN(ids, 10))
	}
	return res, nil
}
