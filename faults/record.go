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
	// Momentary says the fault's effect ended when Inject returned (a restart), so that it was
	// in effect from Start to End rather than until RecoveredAt.
	Momentary bool `json:"momentary,omitempty"`
	// Failure says why the fault did not keep to its plan (not injected at its offset, cut
	// short by the end of its step); empty when it did.
	Failure string `json:"failure,omitempty"`
	// Optional says the scenario allows the fault to fail without breaking the run.
	Optional bool `json:"optional,omitempty"`
}

// EffectEnd is when the fault stopped being in effect: End for a momentary fault that was
// injected, else RecoveredAt (zero when it never was recovered).
func (in Injection) EffectEnd() time.Time {
	if in.Momentary && !in.End.IsZero() {
		return in.End
	}
	return in.RecoveredAt
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

// Momentary is implemented by faults whose effect is over when Inject returns (a restart
// storm, a control-plane restart): Recover has nothing left to undo once Inject succeeded.
type Momentary interface {
	Momentary() bool
}

// Tracked is a fault whose injection and recovery a Recorder records. Inject runs at most once;
// Recover does something only after Inject started, and only once.
type Tracked struct {
	rec   *Recorder
	label string
	spec  Spec
	f     Fault

	optional bool

	mu        sync.Mutex
	in        *Injection
	recovered bool
}

// SetOptional marks the fault as one whose failure does not break the run; it is recorded so.
// Call it before Inject.
func (t *Tracked) SetOptional(v bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.optional = v
}

// Optional reports whether the fault was marked optional.
func (t *Tracked) Optional() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.optional
}

// Fail records why the fault did not keep to its plan. A fault never injected gets a record of
// its own, starting and ending now, so that the run's record lists it.
func (t *Tracked) Fail(reason string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rec.mu.Lock()
	defer t.rec.mu.Unlock()
	if t.in == nil {
		now := t.rec.clock.Now()
		t.in = &Injection{Label: t.label, Kind: t.spec.Kind, Target: t.spec.Target.String(), Optional: t.optional,
			Start: now, End: now, RecoveredAt: now}
		t.recovered = true
		t.rec.list = append(t.rec.list, t.in)
		t.in.Seq = len(t.rec.list)
	}
	if t.in.Failure != "" {
		t.in.Failure += "; "
	}
	t.in.Failure += reason
}

// Inject injects the fault and records it. A second call does nothing.
func (t *Tracked) Inject(ctx context.Context) error {
	t.mu.Lock()
	if t.in != nil {
		t.mu.Unlock()
		return nil
	}
	in := &Injection{Label: t.label, Kind: t.spec.Kind, Target: t.spec.Target.String(), Optional: t.optional}
	if m, ok := t.f.(Momentary); ok {
		in.Momentary = m.Momentary()
	}
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
