package faults

import (
	"context"
	"sync"
	"time"
)

// Injection records one fault injection: when it started and ended, what it acted on, and how
// it went. Times are zero until they happen.
type Injection struct {
	// Seq numbers injections in the order they started, from 1.
	Seq int `json:"seq"`
	// Label says where the fault came from (the scenario step and index).
	Label  string `json:"label"`
	Kind   string `json:"kind"`
	Target string `json:"target"`
	// DSNs are the DSNs the fault acted on (DSN faults only).
	DSNs        []string  `json:"dsns,omitempty"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	Err         string    `json:"error,omitempty"`
	RecoveredAt time.Time `json:"recoveredAt"`
	RecoverErr  string    `json:"recoverError,omitempty"`
}

// Recorder keeps the injections of a run. It is safe for concurrent use.
type Recorder struct {
	clock Clock
	mu    sync.Mutex
	list  []*Injection
}

// NewRecorder returns a recorder timing injections with c (nil for the system clock).
func NewRecorder(c Clock) *Recorder {
	if c == nil {
		c = SystemClock{}
	}
	return &Recorder{clock: c}
}

// Injections returns a copy of the records, in start order.
func (r *Recorder) Injections() []Injection {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Injection, len(r.list))
	for i, in := range r.list {
		out[i] = *in
		out[i].DSNs = append([]string(nil), in.DSNs...)
	}
	return out
}

// Track wraps f so that its injection and recovery are recorded under label.
func (r *Recorder) Track(label string, spec Spec, f Fault) *Tracked {
	return &Tracked{rec: r, label: label, spec: spec, f: f}
}

// Tracked is a fault whose injection and recovery a Recorder records. Inject runs at most once;
// Recover does something only after Inject started, and only once.
type Tracked struct {
	rec   *Recorder
	label string
	spec  Spec
	f     Fault

	mu        sync.Mutex
	in        *Injection
	recovered bool
}

// Inject injects the fault and records it. A second call does nothing.
func (t *Tracked) Inject(ctx context.Context) error {
	t.mu.Lock()
	if t.in != nil {
		t.mu.Unlock()
		return nil
	}
	in := &Injection{Label: t.label, Kind: t.spec.Kind, Target: t.spec.Target.String()}
	t.rec.mu.Lock()
	in.Start = t.rec.clock.Now()
	t.rec.list = append(t.rec.list, in)
	in.Seq = len(t.rec.list)
	t.rec.mu.Unlock()
	t.in = in
	t.mu.Unlock()

	err := t.f.Inject(ctx)

	end := t.rec.clock.Now()
	var dsns []string
	if tg, ok := t.f.(Targeted); ok {
		dsns = tg.Affected()
	}
	t.rec.mu.Lock()
	in.End = end
	in.DSNs = dsns
	if err != nil {
		in.Err = err.Error()
	}
	t.rec.mu.Unlock()
	return err
}

// Recover recovers the fault once, after Inject started, and records it.
func (t *Tracked) Recover(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.in == nil || t.recovered {
		return nil
	}
	err := t.f.Recover(ctx)
	t.recovered = true
	now := t.rec.clock.Now()
	t.rec.mu.Lock()
	t.in.RecoveredAt = now
	if err != nil {
		t.in.RecoverErr = err.Error()
	}
	t.rec.mu.Unlock()
	return err
}

// Injected reports whether Inject has been called.
func (t *Tracked) Injected() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.in != nil
}

// Spec returns the spec the fault was built from.
func (t *Tracked) Spec() Spec { return t.spec }

// Label returns the label the fault is recorded under.
func (t *Tracked) Label() string { return t.label }
