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
	figSamplesFound = Figure{"telemetry_samples_found", UnitCount, "metric samples the control plane's metrics query found again"}
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

// promAnswer is the Prometheus query API's answer shape.
type promAnswer struct {
	Status string `json:"status"`
	Data   struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Value [2]any `json:"value"`
		} `json:"result"`
	} `json:"data"`
	Error string `json:"error"`
}

func (telemetry) samplesFound(ctx context.Context, in *Input) Value {
	secs := int64(in.End.Sub(in.Start).Seconds() + 0.5)
	q := url.Values{}
	q.Set("query", fmt.Sprintf(`sum(count_over_time({__name__=~".+"}[%ds]))`, max(secs, 1)))
	q.Set("time", strconv.FormatFloat(float64(in.End.UnixNano())/1e9, 'f', 3, 64))
	status, body, err := in.API.Get(ctx, MetricsQueryPath+"?"+q.Encode())
	switch {
	case err != nil:
		return missing(figSamplesFound, "metrics query failed: %v", err)
	case notAvailable(status):
		return missing(figSamplesFound, "not available: GET %s answered %d", MetricsQueryPath, status)
	case status != 200:
		return missing(figSamplesFound, "metrics query answered %d: %.200s", status, body)
	}
	var a promAnswer
	if err := json.Unmarshal(body, &a); err != nil || a.Status != "success" {
		return missing(figSamplesFound, "metrics query answer not understood: %.200s", body)
	}
	total := 0.0
	for _, r := range a.Data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return missing(figSamplesFound, "metrics query value %q is not a number", s)
		}
		total += v
	}
	return value(figSamplesFound, total)
}

func (telemetry) eventsFound(ctx context.Context, in *Input) Value {
	q := url.Values{}
	q.Set("q", "*")
	q.Set("since", in.Start.UTC().Format(time.RFC3339Nano))
	q.Set("until", in.End.UTC().Format(time.RFC3339Nano))
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

func (t telemetry) Measure(ctx context.Context, in *Input) (Result, error) {
	var res Result
	tc := in.Telemetry
	const uncounted = "the fleet does not count what it sends"
	switch {
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
		return res, nil
	}
	res.Values = append(res.Values, t.samplesFound(ctx, in), t.eventsFound(ctx, in))
	for _, v := range res.Values {
		if v.Missing != "" {
			res.Notes = append(res.Notes, v.Name+": "+v.Missing)
		}
	}
	return res, nil
}
