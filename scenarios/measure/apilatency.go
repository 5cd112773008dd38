package measure

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dsnscale/dsnscale/loadgen"
)

func init() { mustRegister(apiLatency{}) }

var (
	figAPIRequests = Figure{"api_requests", UnitCount, "northbound requests completed in the window"}
	figAPIErrors   = Figure{"api_errors", UnitCount, "northbound requests that failed"}
	figAPIErrPct   = Figure{"api_error_percent", UnitPercent, "share of northbound requests that failed"}
	figAPISrvErr   = Figure{"api_server_errors", UnitCount, "northbound requests that failed on the server's side (5xx, timeout, broken connection)"}
	figAPISrvPct   = Figure{"api_server_error_percent", UnitPercent, "share of northbound requests that failed on the server's side"}
	figAPIP50      = Figure{"api_latency_p50_seconds", UnitSeconds, "median northbound latency (from the intended start)"}
	figAPIP90      = Figure{"api_latency_p90_seconds", UnitSeconds, "90th percentile northbound latency"}
	figAPIP99      = Figure{"api_latency_p99_seconds", UnitSeconds, "99th percentile northbound latency"}
	figAPIMax      = Figure{"api_latency_max_seconds", UnitSeconds, "slowest northbound request"}
	figAPILimited  = Figure{"api_generator_limited", UnitCount, "1 when the load generator could not keep its schedule in this step"}
)

// apiLatency summarises the northbound requests the load generator made in the window. Latency
// runs from each request's intended start, so a stalled control plane cannot hide behind a
// generator that waited for it.
type apiLatency struct{}

func (apiLatency) Name() string { return "api-latency" }

func (apiLatency) Description() string {
	return "northbound API latency (p50/p90/p99/max) and errors, from the load generator"
}

func (apiLatency) Figures() []Figure {
	return []Figure{figAPIRequests, figAPIErrors, figAPIErrPct, figAPISrvErr, figAPISrvPct, figAPIP50, figAPIP90, figAPIP99, figAPIMax, figAPILimited}
}

func (apiLatency) FindsAnomalies() {}

func quantileDur(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(q*float64(len(sorted))+0.999999999) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}

func (apiLatency) Measure(_ context.Context, in *Input) (Result, error) {
	c := in.Requests.Count(in.Start, in.End)
	n, failed, lat := c.N, c.Failed, c.Latencies
	res := Result{Values: []Value{value(figAPIRequests, float64(n))}}
	if n == 0 {
		for _, f := range []Figure{figAPIErrors, figAPISrvErr, figAPIErrPct, figAPISrvPct, figAPIP50, figAPIP90, figAPIP99, figAPIMax} {
			res.Values = append(res.Values, missing(f, "no northbound request completed in the window"))
		}
	} else {
		res.Values = append(res.Values,
			value(figAPIErrors, float64(failed)),
			value(figAPISrvErr, float64(c.ServerFailed)),
			value(figAPIErrPct, 100*float64(failed)/float64(n)),
			value(figAPISrvPct, 100*float64(c.ServerFailed)/float64(n)),
			value(figAPIP50, quantileDur(lat, 0.5).Seconds()),
			value(figAPIP90, quantileDur(lat, 0.9).Seconds()),
			value(figAPIP99, quantileDur(lat, 0.99).Seconds()),
			value(figAPIMax, lat[len(lat)-1].Seconds()))
	}
	// A step's own load, or every step's for the whole run.
	sums := in.Requests.Summaries()
	if in.Step != "" {
		s, ok := sums[in.Step]
		sums = map[string]loadgen.Summary{}
		if ok {
			sums[in.Step] = s
		}
	}
	if len(sums) == 0 {
		res.Values = append(res.Values, missing(figAPILimited, "no load ran in the window"))
	} else {
		limited := 0.0
		for _, step := range sortedKeys(sums) {
			s := sums[step]
			if !s.GeneratorLimited {
				continue
			}
			limited = 1
			for _, r := range s.LimitReasons {
				res.Notes = append(res.Notes, "generator limited: "+r)
			}
			res.Anomalies = append(res.Anomalies, Anomaly{
				Kind:    AnomalyGeneratorLimited,
				Summary: fmt.Sprintf("step %s: load generator limited: %s", step, strings.Join(s.LimitReasons, "; ")),
				Count:   float64(s.LateStarts + s.Missed), Of: float64(max(s.Planned, s.Started)),
			})
		}
		res.Values = append(res.Values, value(figAPILimited, limited))
		if in.Step != "" {
			res.Details = sums[in.Step]
		}
	}
	if failed > 0 {
		a := Anomaly{
			Kind: AnomalyFailed,
			Summary: fmt.Sprintf("%s of %s northbound requests failed (%s on the server's side: 5xx, timeouts, broken connections)",
				count(float64(failed)), count(float64(n)), count(float64(c.ServerFailed))),
			Count: float64(failed), Of: float64(n),
		}
		for _, step := range sortedKeys(sums) {
			s := sums[step]
			var classes []string
			for _, cl := range sortedKeys(s.ErrorsByClass) {
				if cl != loadgen.ClassNoObject && s.ErrorsByClass[cl] > 0 {
					classes = append(classes, fmt.Sprintf("%s %s", count(float64(s.ErrorsByClass[cl])), cl))
				}
			}
			if len(classes) > 0 {
				a.Examples = append(a.Examples, "step "+step+": "+strings.Join(classes, ", "))
			}
		}
		// Then what the first failures were, so that the reader can tell a refusal from a
		// broken connection without the logs.
		for _, step := range sortedKeys(sums) {
			for _, e := range sums[step].ErrorSamples {
				if len(a.Examples) < maxAnomalyExamples {
					a.Examples = append(a.Examples, fmt.Sprintf("step %s, %s: %s", step, e.End.UTC().Format("15:04:05.000"), e))
				}
			}
		}
		res.Anomalies = append(res.Anomalies, a)
	}
	return res, nil
}
