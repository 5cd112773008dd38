package api

import (
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the API's Prometheus collectors.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inFlight prometheus.Gauge
	watches  prometheus.Gauge
}

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dsnscale_api_requests_total",
			Help: "Northbound API requests by route pattern and status class.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dsnscale_api_request_duration_seconds",
			Help:    "Northbound API request latency by route pattern and status class (watches: stream lifetime).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "code"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dsnscale_api_in_flight_requests",
			Help: "Northbound API requests being served that count against the in-flight limit.",
		}),
		watches: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dsnscale_api_watch_streams",
			Help: "Open watch streams.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.inFlight, m.watches} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("api: registering metrics: %w", err)
		}
	}
	return m, nil
}

// instrument wraps h with the per-route middleware: latency and request metrics labelled by the
// route pattern (never the raw path, which would make one series per object), panic recovery,
// and for limited routes the in-flight limit.
func (s *server) instrument(route string, class routeClass, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.now()
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("api handler panicked", "route", route, "panic", p, "stack", string(debug.Stack()))
				if rec.status == 0 {
					s.writeError(rec, r, errorf(http.StatusInternalServerError, reasonInternal, "", "internal error"))
				}
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			code := strconv.Itoa(status/100) + "xx"
			s.metrics.requests.WithLabelValues(route, code).Inc()
			s.metrics.latency.WithLabelValues(route, code).Observe(s.now().Sub(start).Seconds())
		}()
		if class == limited {
			select {
			case s.inFlight <- struct{}{}:
				s.metrics.inFlight.Inc()
				defer func() {
					<-s.inFlight
					s.metrics.inFlight.Dec()
				}()
			default:
				s.writeError(rec, r, errorf(http.StatusTooManyRequests, reasonTooManyRequests, "",
					"more than %d requests in flight; retry after %s s", cap(s.inFlight), retryAfterSeconds))
				return
			}
		}
		h(rec, r)
	})
}

// statusRecorder remembers the status an answer was given.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flushes, deadlines) for watches.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Flush sends buffered data to the client.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
