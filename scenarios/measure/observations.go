package measure

import (
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/dsnscale/dsnscale/loadgen"
)

// request is one northbound request as the load generator measured it.
type request struct {
	end     int64 // Unix nanoseconds
	latency time.Duration
	ok      bool
	server  bool // failed on the server's side: 5xx, timeout, broken connection
}

// serverFailure reports whether an error class is the server's failure rather than a request
// the server rightly refused (4xx).
func serverFailure(c loadgen.ErrorClass) bool {
	switch c {
	case loadgen.Class5xx, loadgen.ClassTimeout, loadgen.ClassConnection, loadgen.ClassOther:
		return true
	}
	return false
}

// Requests records the northbound requests of a run and the load generator's summary of each
// step. It is a loadgen.Sink.
type Requests struct {
	mu        sync.Mutex
	list      []request
	summaries map[string]loadgen.Summary
}

// Record takes one finished iteration; interrupted ones are left out, as the load generator does.
func (r *Requests) Record(res *loadgen.Result) {
	if res.Interrupt || res.Class == loadgen.ClassNoObject {
		return
	}
	rq := request{end: res.End.UnixNano(), latency: res.Latency(), ok: res.Class == loadgen.ClassOK, server: serverFailure(res.Class)}
	r.mu.Lock()
	r.list = append(r.list, rq)
	r.mu.Unlock()
}

// AddSummary keeps the load generator's summary of a step.
func (r *Requests) AddSummary(step string, s loadgen.Summary) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.summaries == nil {
		r.summaries = map[string]loadgen.Summary{}
	}
	r.summaries[step] = s
}

// Summary returns the summary of a step's load.
func (r *Requests) Summary(step string) (loadgen.Summary, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.summaries[step]
	return s, ok
}

// Between returns the number of requests that ended in [start, end), how many failed, and the
// sorted latencies of all of them.
func (r *Requests) Between(start, end time.Time) (n, failed int, latencies []time.Duration) {
	c := r.Count(start, end)
	return c.N, c.Failed, c.Latencies
}

// RequestCounts summarise the requests of a window.
type RequestCounts struct {
	N, Failed int
	// ServerFailed counts failures on the server's side (5xx, timeouts, broken connections).
	ServerFailed int
	// Latencies of every request, sorted.
	Latencies []time.Duration
}

// Count summarises the requests that ended in [start, end).
func (r *Requests) Count(start, end time.Time) RequestCounts {
	var c RequestCounts
	s, e := start.UnixNano(), end.UnixNano()
	r.mu.Lock()
	for _, rq := range r.list {
		if rq.end >= s && rq.end < e {
			c.N++
			if !rq.ok {
				c.Failed++
			}
			if rq.server {
				c.ServerFailed++
			}
			c.Latencies = append(c.Latencies, rq.latency)
		}
	}
	r.mu.Unlock()
	slices.Sort(c.Latencies)
	return c
}

// Sample is one reading of a component's resource use.
type Sample struct {
	At time.Time
	// CPUSeconds is the user+system CPU time used since the component started.
	CPUSeconds float64
	RSSBytes   int64
}

// Resources records resource samples per component (control plane, fleet, harness).
type Resources struct {
	mu      sync.Mutex
	samples map[string][]Sample
	notes   map[string]string
}

// Add records a sample of component.
func (r *Resources) Add(component string, s Sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.samples == nil {
		r.samples = map[string][]Sample{}
	}
	r.samples[component] = append(r.samples[component], s)
}

// SetNote says something about how a component is measured ("runs in the harness process").
func (r *Resources) SetNote(component, note string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.notes == nil {
		r.notes = map[string]string{}
	}
	r.notes[component] = note
}

// Note returns what was said about a component.
func (r *Resources) Note(component string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.notes[component]
}

// Components lists the components sampled, sorted.
func (r *Resources) Components() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.samples))
	for c := range r.samples {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// Samples returns a copy of a component's samples.
func (r *Resources) Samples(component string) []Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Sample(nil), r.samples[component]...)
}

// Control-plane event kinds.
const (
	CPStarted = "started"
	CPKilled  = "killed" // by a fault
	CPExited  = "exited" // by itself: a crash
	CPStopped = "stopped"
)

// CPEvent is something that happened to the control plane.
type CPEvent struct {
	At     time.Time
	Kind   string
	Detail string
}

// Probe is one health check of the control plane's API.
type Probe struct {
	At time.Time
	OK bool
}

// CPEvents records the control plane's life: starts, kills, crashes and API probes.
type CPEvents struct {
	mu     sync.Mutex
	events []CPEvent
	probes []Probe
}

// Add records an event.
func (c *CPEvents) Add(e CPEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, e)
}

// Probe records a probe.
func (c *CPEvents) Probe(p Probe) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.probes = append(c.probes, p)
}

// Events returns a copy of the events.
func (c *CPEvents) Events() []CPEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]CPEvent(nil), c.events...)
}

// Probes returns a copy of the probes.
func (c *CPEvents) Probes() []Probe {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Probe(nil), c.probes...)
}
