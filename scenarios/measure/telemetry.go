package measure

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

func init() { mustRegister(telemetry{}) }

var (
	figBatchesSent  = Figure{"telemetry_batches_sent", UnitCount, "telemetry messages the DSNs sent"}
	figSamplesSent  = Figure{"telemetry_samples_sent", UnitCount, "metric samples the DSNs sent"}
	figSamplesFound = Figure{"telemetry_batches_found", UnitCount, "telemetry batches the control plane's metrics query found again (by their " + ProbeMetric + " sample)"}
	figEventsSent   = Figure{"telemetry_events_sent", UnitCount, "events the DSNs sent"}
	figEventsFound  = Figure{"telemetry_events_found", UnitCount, "events the control plane's event search found again"}
)

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
	return []Figure{figBatchesSent, figSamplesSent, figSamplesFound, figEventsSent, figEventsFound}
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
// sent: what the DSNs sent just before the end may still be on its way into storage.
const (
	settleTries = 10
	settlePause = 500 * time.Millisecond
)

// settled asks find until its count reaches what was sent, stops growing, or settleTries runs
// out.
func (telemetry) settled(ctx context.Context, in *Input, vals []Value, sentFig Figure, find func(context.Context, *Input) Value) Value {
	v := find(ctx, in)
	sent := -1.0
	for _, s := range vals {
		if s.Name == sentFig.Name && s.Missing == "" {
			sent = s.Value
		}
	}
	for i := 0; i < settleTries && in.Wait != nil && v.Missing == "" && v.Value < sent; i++ {
		if in.Wait(ctx, settlePause) != nil {
			break
		}
		next := find(ctx, in)
		if next.Missing != "" || next.Value <= v.Value {
			break
		}
		v = next
	}
	return v
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
		res.Values = append(res.Values, missing(figSamplesFound, "no control-plane API"), missing(figEventsFound, "no control-plane API"))
	} else {
		res.Values = append(res.Values, t.settled(ctx, in, res.Values, figBatchesSent, t.samplesFound), t.settled(ctx, in, res.Values, figEventsSent, t.eventsFound))
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
	for _, p := range []struct {
		what        string
		sent, found Figure
	}{
		{"telemetry batches", figBatchesSent, figSamplesFound},
		{"telemetry events", figEventsSent, figEventsFound},
	} {
		sent, ok1 := get(p.sent)
		found, ok2 := get(p.found)
		if !ok1 || !ok2 || found >= sent {
			continue
		}
		res.Anomalies = append(res.Anomalies, Anomaly{
			Kind: AnomalyLost,
			Summary: fmt.Sprintf("%s: %s found again of %s sent (%s not found by the end of the run)",
				p.what, count(found), count(sent), count(sent-found)),
			Count: sent - found, Of: sent,
		})
	}
	return res, nil
}
