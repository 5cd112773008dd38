package measure

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

func init() { mustRegister(telemetry{}) }

var (
	figBatchesSent  = Figure{"telemetry_batches_sent", UnitCount, "telemetry messages the DSNs sent"}
	figSamplesSent  = Figure{"telemetry_samples_sent", UnitCount, "metric samples the DSNs sent"}
	figSamplesFound = Figure{"telemetry_batches_found", UnitCount, "telemetry batches the control plane's metrics query found again (by their " + ProbeMetric + " sample)"}
	figEventsSent   = Figure{"telemetry_events_sent", UnitCount, "events the DSNs sent"}
	figEventsFound  = Figure{"telemetry_events_found", UnitCount, "event documents the control plane's event search found again (a series of repeated events is one)"}
	figEventsRolled = Figure{"telemetry_events_rolled_up", UnitCount, "events the control plane stored only in the count of a series document (its *" + RolledUpEventsSuffix + " counters over the run)"}
	figEventsLost   = Figure{"telemetry_events_lost", UnitCount, "events sent that were neither found again nor rolled up by the end of the run"}
)

// RolledUpEventsSuffix ends the names of the counters of events a control plane stored only in
// the count of a series (Kubernetes-style event series): such an event is accounted for, not
// lost.
const RolledUpEventsSuffix = "events_rolled_up_total"

// Paths of the control plane's telemetry read API.
const (
	MetricsQueryPath = "/api/v1/metrics/query"
	EventsPath       = "/api/v1/events"
)

// telemetry compares what the DSNs sent with what the control plane's public read API finds
// again. A control plane without those endpoints gets "not available", not a failed run.
type telemetry struct{}

func (telemetry) Name() string { return "telemetry" }

func (telemetry) Description() string {
	return "telemetry samples and events the DSNs wrote, and how many a query finds again"
}

func (telemetry) Figures() []Figure {
	return []Figure{figBatchesSent, figSamplesSent, figSamplesFound, figEventsSent, figEventsFound, figEventsRolled, figEventsLost}
}

func (telemetry) FindsAnomalies() {}

// ProbeMetric is the metric whose samples the measurement counts: every telemetry batch of a
// simulated DSN carries exactly one, so the count found compares with the batches sent.
const ProbeMetric = "dsn_cpu_percent"

// maxProbeSeries bounds the series the metrics query may return (one per DSN).
const maxProbeSeries = 10000

// matrixAnswer is the metrics query's answer: a Prometheus range-query matrix.
type matrixAnswer struct {
	Status string `json:"status"`
	Data   struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Values [][2]any `json:"values"`
		} `json:"result"`
	} `json:"data"`
	Truncated bool `json:"truncated"`
}

func (telemetry) samplesFound(ctx context.Context, in *Input) Value {
	q := url.Values{}
	q.Set("match", ProbeMetric)
	q.Set("from", in.Start.UTC().Format(time.RFC3339Nano))
	q.Set("to", in.End.UTC().Format(time.RFC3339Nano))
	q.Set("limit", strconv.Itoa(maxProbeSeries))
	status, body, err := in.API.Get(ctx, MetricsQueryPath+"?"+q.Encode())
	switch {
	case err != nil:
		return missing(figSamplesFound, "metrics query failed: %v", err)
	case notAvailable(status):
		return missing(figSamplesFound, "not available: GET %s answered %d", MetricsQueryPath, status)
	case status != 200:
		return missing(figSamplesFound, "metrics query answered %d: %.200s", status, body)
	}
	var a matrixAnswer
	if err := json.Unmarshal(body, &a); err != nil || a.Status != "success" {
		return missing(figSamplesFound, "metrics query answer not understood: %.200s", body)
	}
	if a.Truncated {
		return missing(figSamplesFound, "metrics query truncated at %d series", maxProbeSeries)
	}
	total := 0
	for _, r := range a.Data.Result {
		total += len(r.Values)
	}
	return value(figSamplesFound, float64(total))
}

func (telemetry) eventsFound(ctx context.Context, in *Input) Value {
	q := url.Values{}
	q.Set("from", in.Start.UTC().Format(time.RFC3339Nano))
	q.Set("to", in.End.UTC().Format(time.RFC3339Nano))
	q.Set("limit", "1")
	status, body, err := in.API.Get(ctx, EventsPath+"?"+q.Encode())
	switch {
	case err != nil:
		return missing(figEventsFound, "event search failed: %v", err)
	case notAvailable(status):
		return missing(figEventsFound, "not available: GET %s answered %d", EventsPath, status)
	case status != 200:
		return missing(figEventsFound, "event search answered %d: %.200s", status, body)
	}
	var a struct {
		Total *int64 `json:"total"`
	}
	if err := json.Unmarshal(body, &a); err != nil || a.Total == nil {
		return missing(figEventsFound, "event search answer has no total: %.200s", body)
	}
	return value(figEventsFound, float64(*a.Total))
}

// settleTries and settlePause bound how long a count found is given to catch up with the count
// sent: what the DSNs sent just before the end may still be on its way into storage. A count
// may stand still for a while before it grows again (a control plane writes in batches, and
// rolls events up into series written a window later): the count is settled once it has not
// grown for settleStalls readings in a row.
const (
	settleTries  = 20
	settleStalls = 4
	settlePause  = 500 * time.Millisecond
)

// settled asks find until its count, plus what rolledUp says was stored only in aggregate,
// reaches what was sent, stops growing (settleStalls readings in a row), or settleTries runs
// out. It returns the last count and
// roll-up.
func (telemetry) settled(ctx context.Context, in *Input, vals []Value, sentFig Figure, find func(context.Context, *Input) Value,
	rolledUp func(context.Context) Value) (Value, Value) {
	v, r := find(ctx, in), rolledUp(ctx)
	sent := -1.0
	for _, s := range vals {
		if s.Name == sentFig.Name && s.Missing == "" {
			sent = s.Value
		}
	}
	stalls := 0
	for i := 0; i < settleTries && stalls < settleStalls && in.Wait != nil && v.Missing == "" && v.Value+r.Value < sent; i++ {
		if in.Wait(ctx, settlePause) != nil {
			break
		}
		next, nextR := find(ctx, in), rolledUp(ctx)
		if next.Missing != "" {
			break
		}
		if next.Value+nextR.Value <= v.Value+r.Value {
			stalls++
			continue
		}
		stalls = 0
		v, r = next, nextR
	}
	return v, r
}

// eventsRolledUp reads the control plane's counters of rolled-up events again and returns how
// much they grew over the run; Value 0 and a reason when it has none.
func (telemetry) eventsRolledUp(ctx context.Context, in *Input) Value {
	if ok, why := in.Counters.Read(); !ok {
		return missing(figEventsRolled, "%s", why)
	}
	status, body, err := in.API.Get(ctx, MetricsPath)
	var now map[string]float64
	if err == nil && status == 200 {
		now, _ = ParseLossCounters(strings.NewReader(string(body)))
	}
	keys := map[string]bool{}
	for _, k := range in.Counters.Keys() {
		keys[k] = true
	}
	for k := range now {
		keys[k] = true
	}
	total, seen := 0.0, false
	for k := range keys {
		name, _, _ := strings.Cut(k, "{")
		if !strings.HasSuffix(name, RolledUpEventsSuffix) {
			continue
		}
		seen = true
		total += in.Counters.Since(k, in.Start, now)
	}
	if !seen {
		return missing(figEventsRolled, "the control plane publishes no *%s counter", RolledUpEventsSuffix)
	}
	return value(figEventsRolled, total)
}

func (t telemetry) Measure(ctx context.Context, in *Input) (Result, error) {
	var res Result
	tc := in.Telemetry
	const uncounted = "the fleet does not count what it sends"
	switch {
	case in.Step != "":
		const whole = "the fleet counts what it sent over the whole run, not per step"
		res.Values = append(res.Values, missing(figBatchesSent, whole), missing(figSamplesSent, whole), missing(figEventsSent, whole))
	case !tc.Known:
		res.Values = append(res.Values, missing(figBatchesSent, uncounted), missing(figSamplesSent, uncounted), missing(figEventsSent, uncounted))
	case tc.Samples < 0:
		res.Values = append(res.Values, value(figBatchesSent, float64(tc.Batches)),
			missing(figSamplesSent, "the fleet counts telemetry messages, not the samples in them"), value(figEventsSent, float64(tc.Events)))
	default:
		res.Values = append(res.Values, value(figBatchesSent, float64(tc.Batches)), value(figSamplesSent, float64(tc.Samples)), value(figEventsSent, float64(tc.Events)))
	}
	if in.API == nil {
		res.Values = append(res.Values, missing(figSamplesFound, "no control-plane API"), missing(figEventsFound, "no control-plane API"),
			missing(figEventsRolled, "no control-plane API"))
	} else {
		batches, _ := t.settled(ctx, in, res.Values, figBatchesSent, t.samplesFound,
			func(context.Context) Value { return Value{} })
		events, rolled := t.settled(ctx, in, res.Values, figEventsSent, t.eventsFound,
			func(ctx context.Context) Value { return t.eventsRolledUp(ctx, in) })
		res.Values = append(res.Values, batches, events, rolled)
	}
	for _, v := range res.Values {
		if v.Missing != "" && in.Step == "" {
			res.Notes = append(res.Notes, v.Name+": "+v.Missing)
		}
	}
	get := func(f Figure) (float64, bool) {
		for _, v := range res.Values {
			if v.Name == f.Name && v.Missing == "" {
				return v.Value, true
			}
		}
		return 0, false
	}
	// Batches: found or lost. Events: found, rolled up into a series, or lost.
	if sent, ok := get(figBatchesSent); ok {
		if found, ok := get(figSamplesFound); ok && found < sent {
			res.Anomalies = append(res.Anomalies, Anomaly{
				Kind: AnomalyLost,
				Summary: fmt.Sprintf("telemetry batches: %s found again of %s sent (%s not found by the end of the run)",
					count(found), count(sent), count(sent-found)),
				Count: sent - found, Of: sent,
			})
		}
	}
	sent, ok1 := get(figEventsSent)
	found, ok2 := get(figEventsFound)
	switch {
	case !ok1 || !ok2:
		res.Values = append(res.Values, missing(figEventsLost, "needs the events sent and found"))
	default:
		rolled, _ := get(figEventsRolled) // 0 when the control plane rolls nothing up
		lost := max(sent-found-rolled, 0)
		res.Values = append(res.Values, value(figEventsLost, lost))
		if lost > 0 {
			summary := fmt.Sprintf("telemetry events: %s found again of %s sent (%s not found by the end of the run)",
				count(found), count(sent), count(lost))
			if rolled > 0 {
				summary = fmt.Sprintf("telemetry events: %s found again and %s rolled up into series of %s sent (%s neither by the end of the run)",
					count(found), count(rolled), count(sent), count(lost))
			}
			res.Anomalies = append(res.Anomalies, Anomaly{Kind: AnomalyLost, Summary: summary, Count: lost, Of: sent})
		}
	}
	return res, nil
}
