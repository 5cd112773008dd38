package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Summary is what a run did and how the target answered.
type Summary struct {
	Executor string `json:"executor"`
	Model    Model  `json:"model"`
	// ScheduleDuration is how long new iterations were started; Elapsed runs from the start to
	// the end of the last iteration.
	ScheduleDuration time.Duration `json:"scheduleDurationNs"`
	Elapsed          time.Duration `json:"elapsedNs"`

	// Planned is how many iterations the open-model schedule called for (0 for closed models).
	Planned int64 `json:"planned"`
	// Started iterations = Completed + Interrupted (+ those still running when ctx ended).
	Started int64 `json:"started"`
	// Completed iterations finished, successfully or not.
	Completed int64 `json:"completed"`
	// Interrupted iterations were cut short when the graceful stop ran out; not errors.
	Interrupted int64 `json:"interrupted"`
	// Missed iterations were due but never started: every one of MaxVUs was busy.
	Missed int64 `json:"missed"`
	// Errors counts completed iterations that failed, by class in ErrorsByClass.
	Errors        int64                `json:"errors"`
	ErrorsByClass map[ErrorClass]int64 `json:"errorsByClass"`
	// ErrorSamples are the first failed iterations of each class (up to samplesPerClass each,
	// no-object left out), in the order they finished: what a report shows of what went wrong.
	ErrorSamples []ErrorSample `json:"errorSamples,omitempty"`
	// Statuses counts responses by HTTP status.
	Statuses map[int]int64 `json:"statuses"`
	// Throughput is successful iterations per second of Elapsed.
	Throughput float64 `json:"throughputPerS"`
	// Latency runs from each iteration's intended start to its end; ServiceTime from its
	// actual start. Both leave out iterations that were never sent (class no-object).
	Latency     Quantiles `json:"latency"`
	ServiceTime Quantiles `json:"serviceTime"`
	// Ops summarises each operation.
	Ops map[string]OpSummary `json:"ops"`

	// PeakVUs is the most virtual users that ran at once.
	PeakVUs int `json:"peakVUs"`
	// LateStarts counts iterations that started more than the late threshold after they were
	// due; MaxLateness is the worst.
	LateStarts  int64         `json:"lateStarts"`
	MaxLateness time.Duration `json:"maxLatenessNs"`
	// CPUSeconds is the process's CPU time over the run, CPUShare that time as a share of the
	// Cores available over Elapsed (1 = every core busy).
	CPUSeconds float64 `json:"cpuSeconds"`
	CPUShare   float64 `json:"cpuShare"`
	Cores      int     `json:"cores"`
	// GeneratorLimited says the generator could not keep the requested load; LimitReasons say
	// why. Latencies and rates of such a run describe the generator as much as the target.
	GeneratorLimited bool     `json:"generatorLimited"`
	LimitReasons     []string `json:"limitReasons,omitempty"`
}

// ErrorSample is one failed iteration.
type ErrorSample struct {
	Op     string     `json:"op"`
	Class  ErrorClass `json:"class"`
	Status int        `json:"status,omitempty"`
	Error  string     `json:"error,omitempty"`
	Detail string     `json:"detail,omitempty"`
	End    time.Time  `json:"end"`
}

func newErrorSample(r *Result) ErrorSample {
	e := ErrorSample{Op: r.Op, Class: r.Class, Status: r.Status, Detail: r.Detail, End: r.End}
	if r.Err != nil {
		e.Error = r.Err.Error()
	}
	return e
}

// String renders a sample for a report: "create/Network: 400 (…)" or "get/Policy: EOF".
func (e ErrorSample) String() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(":")
	if e.Status != 0 {
		fmt.Fprintf(&b, " %d", e.Status)
	}
	if e.Error != "" {
		b.WriteString(" " + e.Error)
	}
	if e.Detail != "" {
		b.WriteString(" (" + e.Detail + ")")
	}
	if e.Status == 0 && e.Error == "" {
		b.WriteString(" " + string(e.Class))
	}
	return b.String()
}

// OpSummary is one operation's share of a run.
type OpSummary struct {
	Count         int64                `json:"count"`
	Errors        int64                `json:"errors"`
	ErrorsByClass map[ErrorClass]int64 `json:"errorsByClass"`
	Throughput    float64              `json:"throughputPerS"`
	Latency       Quantiles            `json:"latency"`
	BytesIn       int64                `json:"bytesIn"`
	BytesOut      int64                `json:"bytesOut"`
}

// Quantiles summarise a latency distribution (from an HDR histogram: 3 significant digits).
type Quantiles struct {
	Count                          int64
	Mean, P50, P90, P99, P999, Max time.Duration
}

type quantilesJSON struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"meanMs"`
	P50   float64 `json:"p50Ms"`
	P90   float64 `json:"p90Ms"`
	P99   float64 `json:"p99Ms"`
	P999  float64 `json:"p999Ms"`
	Max   float64 `json:"maxMs"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fromMs(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

// MarshalJSON writes the quantiles in milliseconds.
func (q Quantiles) MarshalJSON() ([]byte, error) {
	return json.Marshal(quantilesJSON{q.Count, ms(q.Mean), ms(q.P50), ms(q.P90), ms(q.P99), ms(q.P999), ms(q.Max)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (q *Quantiles) UnmarshalJSON(b []byte) error {
	var j quantilesJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*q = Quantiles{j.Count, fromMs(j.Mean), fromMs(j.P50), fromMs(j.P90), fromMs(j.P99), fromMs(j.P999), fromMs(j.Max)}
	return nil
}

// ErrorRate is Errors over Completed (0 when nothing completed).
func (s *Summary) ErrorRate() float64 {
	if s.Completed == 0 {
		return 0
	}
	return float64(s.Errors) / float64(s.Completed)
}

// Write renders the summary for people.
func (s *Summary) Write(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "executor     %s (%s model)\n", s.Executor, s.Model)
	fmt.Fprintf(&b, "duration     %s scheduled, %s elapsed\n", s.ScheduleDuration, s.Elapsed.Round(time.Millisecond))
	if s.Model == OpenModel {
		fmt.Fprintf(&b, "iterations   %d planned, %d started, %d completed, %d missed, %d interrupted\n",
			s.Planned, s.Started, s.Completed, s.Missed, s.Interrupted)
	} else {
		fmt.Fprintf(&b, "iterations   %d started, %d completed, %d interrupted\n", s.Started, s.Completed, s.Interrupted)
	}
	fmt.Fprintf(&b, "throughput   %.1f/s successful\n", s.Throughput)
	fmt.Fprintf(&b, "errors       %d (%.2f%%)%s\n", s.Errors, 100*s.ErrorRate(), classList(s.ErrorsByClass))
	fmt.Fprintf(&b, "latency      %s\n", s.Latency)
	fmt.Fprintf(&b, "service time %s\n", s.ServiceTime)
	fmt.Fprintf(&b, "generator    peak %d VUs, %d late starts (worst %s), CPU %.1fs = %.0f%% of %d cores\n",
		s.PeakVUs, s.LateStarts, s.MaxLateness.Round(time.Microsecond), s.CPUSeconds, 100*s.CPUShare, s.Cores)
	if s.GeneratorLimited {
		fmt.Fprintf(&b, "GENERATOR LIMITED: the numbers above describe the generator as much as the target\n")
		for _, r := range s.LimitReasons {
			fmt.Fprintf(&b, "  - %s\n", r)
		}
	}
	names := make([]string, 0, len(s.Ops))
	for n := range s.Ops {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) > 0 {
		fmt.Fprintf(&b, "\n%-22s %9s %8s %10s %10s %10s %10s %10s\n", "operation", "count", "errors", "rate/s", "p50", "p90", "p99", "max")
	}
	for _, n := range names {
		o := s.Ops[n]
		fmt.Fprintf(&b, "%-22s %9d %8d %10.1f %10s %10s %10s %10s%s\n", n, o.Count, o.Errors, o.Throughput,
			round(o.Latency.P50), round(o.Latency.P90), round(o.Latency.P99), round(o.Latency.Max), classList(o.ErrorsByClass))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// String renders the quantiles on one line.
func (q Quantiles) String() string {
	if q.Count == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (n=%d)",
		round(q.P50), round(q.P90), round(q.P99), round(q.P999), round(q.Max), q.Count)
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

func classList(m map[ErrorClass]int64) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[ErrorClass(k)])
	}
	return "  [" + strings.Join(parts, " ") + "]"
}
