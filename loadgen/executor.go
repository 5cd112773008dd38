package loadgen

import (
	"context"
	"log/slog"
	"time"
)

// Executor runs iterations of a Workload on its schedule until the schedule ends or ctx does.
type Executor interface {
	// Run drives the load and returns its summary. Every finished iteration also goes to sink
	// (nil for none), from many goroutines at once. When ctx ends early, Run returns the summary
	// so far and ctx's error.
	Run(ctx context.Context, sink Sink) (Summary, error)
}

// Workload is what one iteration does. Executors call Iterate from many goroutines at once.
type Workload interface {
	// Iterate performs one iteration. ctx ends when the run is interrupted.
	Iterate(ctx context.Context, it Iteration) Outcome
}

// WorkloadFunc adapts a function to Workload.
type WorkloadFunc func(ctx context.Context, it Iteration) Outcome

// Iterate calls f.
func (f WorkloadFunc) Iterate(ctx context.Context, it Iteration) Outcome { return f(ctx, it) }

// Iteration identifies one iteration to the workload.
type Iteration struct {
	// N numbers iterations from 0 in the order they were scheduled (open model) or started.
	N int64
	// VU is the virtual user running it, from 0.
	VU int
	// Intended is when it was due to start.
	Intended time.Time
}

// Outcome is what the workload reports of one iteration.
type Outcome struct {
	// Op names the operation ("get/Network"); results are summarised per Op.
	Op string
	// Status is the HTTP status of the response, 0 when there was none.
	Status int
	// Err is why the operation failed without a status (timeout, connection), or a failure the
	// status does not show (an unreadable body); nil otherwise.
	Err error
	// Detail is what a failed answer said (its error message), for reports; "" otherwise.
	Detail string
	// Class overrides the error class derived from Status and Err when set.
	Class ErrorClass
	// BytesIn and BytesOut count body bytes received and sent.
	BytesIn, BytesOut int64
}

// Result is one finished iteration as the executor measured it.
type Result struct {
	Op        string
	N         int64
	VU        int
	Intended  time.Time // when it was due
	Start     time.Time // when it started
	End       time.Time // when it finished
	Status    int
	Class     ErrorClass // ClassOK for success
	Err       error
	Detail    string // what a failed answer said
	BytesIn   int64
	BytesOut  int64
	Interrupt bool // cut short by the end of the run; not counted as an error
}

// Latency is the time from the intended start to the end: what a client arriving on schedule
// would have waited.
func (r *Result) Latency() time.Duration { return r.End.Sub(r.Intended) }

// ServiceTime is the time from the actual start to the end.
func (r *Result) ServiceTime() time.Duration { return r.End.Sub(r.Start) }

// Sink receives every result. Record is called from many goroutines at once and should return
// quickly: a slow sink slows the virtual users.
type Sink interface {
	Record(r *Result)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(r *Result)

// Record calls f.
func (f SinkFunc) Record(r *Result) { f(r) }

// ChanSink sends a copy of every result on ch. The send blocks: the reader must keep up.
func ChanSink(ch chan<- Result) Sink { return SinkFunc(func(r *Result) { ch <- *r }) }

// Options are the run-time dependencies and thresholds of an executor.
type Options struct {
	// Clock tells time and sleeps (default: the system clock).
	Clock Clock
	// Logger receives progress and warnings (default: discard).
	Logger *slog.Logger
	// LateThreshold is how late an iteration may start before it counts as a late start
	// (default 10ms).
	LateThreshold time.Duration
	// LateFraction is the share of late starts above which the run is generator-limited
	// (default 0.01).
	LateFraction float64
	// CPUThreshold is the process CPU use, as a share of the cores available to it, above which
	// the run is generator-limited (default 0.9).
	CPUThreshold float64
	// CPU reads the process's CPU time so far (default: getrusage).
	CPU func() (time.Duration, error)
	// Cores is how many cores the process may use (default GOMAXPROCS).
	Cores int
}

func (o Options) withDefaults() Options {
	if o.Clock == nil {
		o.Clock = SystemClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.LateThreshold == 0 {
		o.LateThreshold = 10 * time.Millisecond
	}
	if o.LateFraction == 0 {
		o.LateFraction = 0.01
	}
	if o.CPUThreshold == 0 {
		o.CPUThreshold = 0.9
	}
	if o.CPU == nil {
		o.CPU = ProcessCPU
	}
	if o.Cores == 0 {
		o.Cores = defaultCores()
	}
	return o
}
