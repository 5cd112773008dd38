package measure

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"time"
)

// DSNValues is one figure measured for each DSN of the fleet, for the reports' look at the DSNs
// that stood out.
type DSNValues struct {
	Name  string
	Label string
	Unit  string
	// Values has one value per DSN measured.
	Values map[string]float64
	// Censored DSNs had not got there by the end of the run: their value is a lower bound.
	Censored map[string]bool
	// Missing says why there are no values.
	Missing string
	// Note says how the values were taken.
	Note string
}

// Names of the per-DSN figures.
const (
	DSNRecovery    = "recovery_seconds"
	DSNLag         = "convergence_lag_seconds"
	DSNCorrective  = "corrective_actions"
	DSNRestarts    = "restarts"
	DSNDroppedAcks = "dropped_acks"
)

// maxLagChanges bounds the intent changes each DSN's convergence lag is taken over; more are
// sampled evenly.
const maxLagChanges = 200

// bootState is the state a DSN reports when its process starts.
const bootState = "booting"

// PerDSN measures, for each DSN over in's window: how long it took to recover from each restart
// fault, its typical convergence lag, the corrective actions the control plane took against
// it, how often it restarted and how many acks it dropped.
func PerDSN(ctx context.Context, in *Input) []DSNValues {
	return []DSNValues{recoveryPerDSN(in), lagPerDSN(in), correctivePerDSN(ctx, in), restartsPerDSN(in), droppedAcksPerDSN(in)}
}

func recoveryPerDSN(in *Input) DSNValues {
	v := DSNValues{Name: DSNRecovery, Label: "recovery time after a restart fault", Unit: UnitSeconds,
		Values: map[string]float64{}, Censored: map[string]bool{},
		Note: "from the restart fault until the DSN served the current revision again; the slowest of its restarts"}
	horizon := in.Horizon
	if horizon.IsZero() {
		horizon = in.End
	}
	starts := map[int]time.Time{}
	for _, inj := range in.Injections {
		starts[inj.Seq] = inj.Start
	}
	for _, r := range Recoveries(in) {
		secs, censored := 0.0, false
		if r.After != nil {
			secs = r.After.Seconds()
		} else {
			secs, censored = horizon.Sub(starts[r.Fault]).Seconds(), true
		}
		if old, ok := v.Values[r.DSN]; !ok || secs > old {
			v.Values[r.DSN] = secs
			v.Censored[r.DSN] = censored
		}
	}
	if len(v.Values) == 0 {
		v.Missing = "no DSN was restarted by a " + restartFaultID + " fault"
	}
	return v
}

func lagPerDSN(in *Input) DSNValues {
	v := DSNValues{Name: DSNLag, Label: "convergence lag", Unit: UnitSeconds,
		Values: map[string]float64{}, Censored: map[string]bool{}}
	if len(in.DSNs) == 0 {
		v.Missing = noFleet
		return v
	}
	all := in.Revisions.Between(in.Start, in.End)
	marks := sampleMarks(all, maxLagChanges)
	if len(marks) == 0 {
		v.Missing = "no intent change was committed"
		return v
	}
	v.Note = fmt.Sprintf("median over %s of the time from commit to the DSN applying it; a change never applied counts until the end of the run",
		countOf(len(marks), "intent change", "intent changes"))
	if len(marks) < len(all) {
		v.Note += fmt.Sprintf(" (sampled evenly from %s)", count(float64(len(all))))
	}
	horizon := in.Horizon
	if horizon.IsZero() {
		horizon = in.End
	}
	lags := make([]float64, len(marks))
	never := make([]bool, len(marks))
	for _, id := range in.DSNs {
		_, applies, _ := in.Timeline.History(id)
		for i, m := range marks {
			t, ok := FirstAtOrPast(applies, m.Revision, m.At)
			never[i] = !ok || t.After(horizon)
			if never[i] {
				t = horizon
			}
			lags[i] = t.Sub(m.At).Seconds()
		}
		idx := make([]int, len(marks))
		for i := range idx {
			idx[i] = i
		}
		sort.Slice(idx, func(a, b int) bool { return lags[idx[a]] < lags[idx[b]] })
		mid := idx[len(idx)/2]
		v.Values[id] = lags[mid]
		v.Censored[id] = never[mid]
	}
	return v
}

// dsnList is the part of the control plane's DSN list the harness reads.
type dsnList struct {
	Metadata struct {
		Continue string `json:"continue"`
	} `json:"metadata"`
	Items []struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Status *struct {
			Corrective *struct {
				Resends     int `json:"resends"`
				Resyncs     int `json:"resyncs"`
				Quarantines int `json:"quarantines"`
			} `json:"corrective"`
		} `json:"status"`
	} `json:"items"`
}

// DSNsPath is the control plane's list of DSNs.
const DSNsPath = "/api/v1/dsns"

// dsnPage is how many DSNs one request of the list asks for; maxDSNPages bounds the requests.
const (
	dsnPage     = 1000
	maxDSNPages = 1000
)

func correctivePerDSN(ctx context.Context, in *Input) DSNValues {
	v := DSNValues{Name: DSNCorrective, Label: "corrective actions", Unit: UnitCount, Values: map[string]float64{},
		Note: "resends, forced resyncs and quarantines the control plane took against the DSN, as its DSN list reports them at the end of the run (counted since the control plane last started)"}
	if in.API == nil {
		v.Missing = "no control-plane API"
		return v
	}
	fleet := map[string]bool{}
	for _, id := range in.DSNs {
		fleet[id] = true
	}
	cont := ""
	for page := 0; page < maxDSNPages; page++ {
		q := url.Values{"limit": {strconv.Itoa(dsnPage)}}
		if cont != "" {
			q.Set("continue", cont)
		}
		status, body, err := in.API.Get(ctx, DSNsPath+"?"+q.Encode())
		switch {
		case err != nil:
			v.Missing = fmt.Sprintf("listing DSNs failed: %v", err)
		case notAvailable(status):
			v.Missing = fmt.Sprintf("not available: GET %s answered %d", DSNsPath, status)
		case status != 200:
			v.Missing = fmt.Sprintf("listing DSNs answered %d: %.200s", status, body)
		}
		if v.Missing != "" {
			v.Values = map[string]float64{}
			return v
		}
		var l dsnList
		if err := json.Unmarshal(body, &l); err != nil {
			v.Missing = fmt.Sprintf("the DSN list was not understood: %v", err)
			v.Values = map[string]float64{}
			return v
		}
		for _, it := range l.Items {
			if !fleet[it.Metadata.Name] || it.Status == nil || it.Status.Corrective == nil {
				continue
			}
			c := it.Status.Corrective
			v.Values[it.Metadata.Name] = float64(c.Resends + c.Resyncs + c.Quarantines)
		}
		if l.Metadata.Continue == "" || len(l.Items) == 0 {
			break
		}
		cont = l.Metadata.Continue
	}
	if len(v.Values) == 0 {
		v.Missing = "the control plane's DSN list reports no corrective actions for the fleet's DSNs"
	}
	return v
}

// rebootFaults are the fault kinds that make a DSN boot again.
var rebootFaults = map[string]bool{restartFaultID: true, "dsn-crash": true}

func restartsPerDSN(in *Input) DSNValues {
	v := DSNValues{Name: DSNRestarts, Label: "restarts no fault caused", Unit: UnitCount, Values: map[string]float64{},
		Note: "times the DSN booted again after its first boot, less the restart and crash faults that hit it"}
	if len(in.DSNs) == 0 {
		v.Missing = noFleet
		return v
	}
	caused := map[string]int{}
	for _, inj := range in.Injections {
		if rebootFaults[inj.Kind] && !inj.Start.After(in.End) {
			for _, id := range inj.DSNs {
				caused[id]++
			}
		}
	}
	for _, id := range in.DSNs {
		changes, _, _ := in.Timeline.History(id)
		boots, prev := 0, ""
		for _, c := range changes {
			if c.At.After(in.End) {
				break
			}
			if c.State == bootState && prev != bootState {
				boots++
			}
			prev = c.State
		}
		v.Values[id] = float64(max(boots-1-caused[id], 0))
	}
	return v
}

func droppedAcksPerDSN(in *Input) DSNValues {
	v := DSNValues{Name: DSNDroppedAcks, Label: "dropped acks", Unit: UnitCount, Values: map[string]float64{},
		Note: "acks of an applied revision the DSN did not send (a misbehaviour)"}
	switch {
	case len(in.DSNs) == 0:
		v.Missing = noFleet
	case !in.Timeline.CountsAcks():
		v.Missing = "the fleet does not count the acks its DSNs drop"
	default:
		for _, id := range in.DSNs {
			v.Values[id] = float64(in.Timeline.DroppedAcks(id))
		}
	}
	return v
}
