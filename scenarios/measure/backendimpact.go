package measure

import (
	"context"
	"strings"
)

func init() { mustRegister(backendImpact{}) }

var (
	figBackendDropped = Figure{"backend_dropped_writes", UnitCount, "items the control plane counted as dropped or lost in failed writes in the window (its *_dropped_total and *_failed_total counters: full queues to its backends, failed backend writes)"}
	figBackendRetried = Figure{"backend_retried_writes", UnitCount, "writes the control plane counted as retried in the window (its *_retried_total and *_retries_total counters)"}
	figBackendAPIErrs = Figure{"backend_api_errors", UnitCount, "northbound requests of the load that failed in the window"}
)

// backendImpact says what losing a backend cost: what the control plane dropped, lost and
// retried on its way to its backends, and what the API's clients saw fail, in the window of a
// backend fault.
type backendImpact struct{}

func (backendImpact) Name() string { return "backend-impact" }

func (backendImpact) Description() string {
	return "what a backend fault cost in the window: writes the control plane dropped, lost or retried, and API requests that failed"
}

func (backendImpact) Figures() []Figure {
	return []Figure{figBackendDropped, figBackendRetried, figBackendAPIErrs}
}

func (backendImpact) Measure(_ context.Context, in *Input) (Result, error) {
	var res Result
	if ok, why := in.Counters.Read(); !ok {
		res.Values = append(res.Values, missing(figBackendDropped, "%s", why), missing(figBackendRetried, "%s", why))
	} else {
		var dropped, retried float64
		var sawDropped, sawRetried bool
		for _, key := range in.Counters.Keys() {
			name, _, _ := strings.Cut(key, "{")
			switch {
			case strings.HasSuffix(name, "_dropped_total") || strings.HasSuffix(name, "_failed_total"):
				sawDropped = true
				dropped += in.Counters.Increase(key, in.Start, in.End)
			case isRetryCounter(name):
				sawRetried = true
				retried += in.Counters.Increase(key, in.Start, in.End)
			}
		}
		if sawDropped {
			res.Values = append(res.Values, value(figBackendDropped, dropped))
		} else {
			res.Values = append(res.Values, missing(figBackendDropped, "the control plane publishes no *_dropped_total or *_failed_total counter"))
		}
		if sawRetried {
			res.Values = append(res.Values, value(figBackendRetried, retried))
		} else {
			res.Values = append(res.Values, missing(figBackendRetried, "the control plane publishes no *_retried_total or *_retries_total counter"))
		}
	}
	n, failed, _ := in.Requests.Between(in.Start, in.End)
	if n == 0 {
		res.Values = append(res.Values, missing(figBackendAPIErrs, "no load ran in the window"))
	} else {
		res.Values = append(res.Values, value(figBackendAPIErrs, float64(failed)))
	}
	return res, nil
}

// RetryCounterSuffixes end the names of the counters of retried writes the harness reads.
var RetryCounterSuffixes = []string{"_retried_total", "_retries_total"}

func isRetryCounter(name string) bool {
	for _, s := range RetryCounterSuffixes {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}
