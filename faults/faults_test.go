package faults

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stepClock advances by exactly the duration asked of After, so a spread over a window can be
// checked without waiting for it.
type stepClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.sleeps = append(c.sleeps, d)
	now := c.now
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- now
	return ch
}

// recFleet records what faults do to it; the fleet is the collaborator under control here.
type recFleet struct {
	clock *stepClock
	ids   []DSN
	fail  map[string]bool

	mu    sync.Mutex
	calls []string
}

func newRecFleet(c *stepClock, n int) *recFleet {
	f := &recFleet{clock: c, fail: map[string]bool{}}
	for i := range n {
		zone := "a"
		if i%2 == 1 {
			zone = "b"
		}
		f.ids = append(f.ids, DSN{ID: fmt.Sprintf("dsn-%03d", i), Labels: map[string]string{"zone": zone}})
	}
	return f
}

func (f *recFleet) DSNs() []DSN { return f.ids }

func (f *recFleet) record(op, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, op+" "+id)
	if f.fail[id] {
		return errors.New("boom")
	}
	return nil
}

func (f *recFleet) Restart(_ context.Context, id string) error { return f.record("restart", id) }
func (f *recFleet) Crash(_ context.Context, id string) error   { return f.record("crash", id) }
func (f *recFleet) Start(_ context.Context, id string) error   { return f.record("start", id) }
func (f *recFleet) Hang(_ context.Context, id string) error    { return f.record("hang", id) }
func (f *recFleet) Resume(_ context.Context, id string) error  { return f.record("resume", id) }

func (f *recFleet) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if len(c) > len(op) && c[:len(op)+1] == op+" " {
			n++
		}
	}
	return n
}

type recCP struct {
	running bool
	calls   []string
	failKil bool
}

func (c *recCP) Kill(context.Context) error {
	c.calls = append(c.calls, "kill")
	if c.failKil {
		return errors.New("no such process")
	}
	c.running = false
	return nil
}

func (c *recCP) Start(context.Context) error {
	c.calls = append(c.calls, "start")
	c.running = true
	return nil
}

func (c *recCP) Running() bool { return c.running }

func TestRegistryRejectsDuplicates(t *testing.T) {
	var r Registry
	require.NoError(t, r.Register(dsnRestart{}))
	err := r.Register(dsnRestart{})
	require.ErrorIs(t, err, ErrDuplicate)
	assert.Equal(t, []string{"dsn-restart"}, r.Names())
	assert.Subset(t, Default.Names(), []string{"cp-kill", "cp-restart", "dsn-crash", "dsn-hang", "dsn-restart", "net-latency", "net-partition"})
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		spec  Spec
		field string
		msg   string
	}{
		{"unknown kind", Spec{Kind: "dsn-reboot"}, "kind", `unknown fault kind "dsn-reboot"; did you mean "dsn-restart"? (known: ` + strings.Join(Default.Names(), ", ") + ")"},
		{"unknown param", Spec{Kind: "dsn-restart", Params: map[string]string{"spread": "1s"}}, "params.spread", "unknown parameter (known: window, parallel)"},
		{"bad duration", Spec{Kind: "dsn-restart", Params: map[string]string{"window": "ten"}}, "params.window", `"ten" is not a duration (such as 30s or 1m30s)`},
		{"negative duration", Spec{Kind: "cp-restart", Params: map[string]string{"down": "-1s"}}, "params.down", `"-1s" is negative`},
		{"bad int", Spec{Kind: "dsn-crash", Params: map[string]string{"parallel": "many"}}, "params.parallel", `"many" is not a non-negative integer`},
		{"fraction over 1", Spec{Kind: "dsn-hang", Target: Target{Fraction: 1.5}}, "target.fraction", "1.5 is not in (0, 1] (write 25% or 0.25)"},
		{"fraction and count", Spec{Kind: "dsn-hang", Target: Target{Fraction: 0.5, Count: 3}}, "target", "fraction and count are exclusive"},
		{"cp with target", Spec{Kind: "cp-kill", Target: Target{Count: 1}}, "target", "cp-kill acts on the control plane and takes no target"},
		{"cp-kill takes no params", Spec{Kind: "cp-kill", Params: map[string]string{"down": "1s"}}, "params.down", "unknown parameter (known: none)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Default.Validate(tt.spec)
			require.ErrorIs(t, err, ErrInvalidSpec)
			var se *SpecError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tt.field, se.Field)
			assert.Equal(t, tt.msg, se.Err.Error())
		})
	}
	require.NoError(t, Default.Validate(Spec{Kind: "dsn-restart", Target: Target{Fraction: 0.5}, Params: map[string]string{"window": "30s"}}))
}

func TestSelect(t *testing.T) {
	f := newRecFleet(&stepClock{}, 10)
	all, err := Select(f.DSNs(), Target{}, 1)
	require.NoError(t, err)
	assert.Len(t, all, 10)

	zoneB, err := Select(f.DSNs(), Target{Labels: map[string]string{"zone": "b"}}, 1)
	require.NoError(t, err)
	assert.Equal(t, []string{"dsn-001", "dsn-003", "dsn-005", "dsn-007", "dsn-009"}, zoneB)

	frac, err := Select(f.DSNs(), Target{Fraction: 0.25}, 7)
	require.NoError(t, err)
	assert.Len(t, frac, 3, "ceil(0.25*10)")
	again, err := Select(f.DSNs(), Target{Fraction: 0.25}, 7)
	require.NoError(t, err)
	assert.Equal(t, frac, again, "same seed, same choice")

	count, err := Select(f.DSNs(), Target{Labels: map[string]string{"zone": "a"}, Count: 2}, 7)
	require.NoError(t, err)
	assert.Len(t, count, 2)

	_, err = Select(f.DSNs(), Target{Count: 11}, 1)
	require.ErrorIs(t, err, ErrNoTargets)
	_, err = Select(f.DSNs(), Target{Labels: map[string]string{"zone": "c"}}, 1)
	require.ErrorIs(t, err, ErrNoTargets)
	_, err = Select(f.DSNs(), Target{DSNs: []string{"dsn-001", "dsn-404"}}, 1)
	require.ErrorIs(t, err, ErrNoTargets)
	named, err := Select(f.DSNs(), Target{DSNs: []string{"dsn-004", "dsn-001"}}, 1)
	require.NoError(t, err)
	assert.Equal(t, []string{"dsn-001", "dsn-004"}, named)
}

func TestRestartStormSpreadOverWindow(t *testing.T) {
	clock := &stepClock{now: time.Unix(1000, 0)}
	fleet := newRecFleet(clock, 4)
	rec := NewRecorder(clock)
	f, err := Default.New(Spec{Kind: "dsn-restart", Params: map[string]string{"window": "40s", "parallel": "1"}},
		Env{Fleet: fleet, Clock: clock})
	require.NoError(t, err)
	tr := rec.Track("storm/0", Spec{Kind: "dsn-restart"}, f)
	require.NoError(t, tr.Inject(context.Background()))
	require.NoError(t, tr.Recover(context.Background()))

	start := time.Unix(1000, 0)
	assert.Equal(t, []time.Duration{10 * time.Second, 10 * time.Second, 10 * time.Second}, clock.sleeps)
	ins := rec.Injections()
	require.Len(t, ins, 1)
	assert.Equal(t, "dsn-restart", ins[0].Kind)
	assert.Equal(t, start, ins[0].Start)
	assert.Equal(t, start.Add(30*time.Second), ins[0].End)
	assert.Equal(t, []string{"dsn-000", "dsn-001", "dsn-002", "dsn-003"}, ins[0].DSNs)
	assert.False(t, ins[0].RecoveredAt.IsZero())
	assert.Equal(t, 0, fleet.count("start"), "a restart needs no recovery")
}

func TestCrashRecoversOnlyWhatItCrashed(t *testing.T) {
	clock := &stepClock{now: time.Unix(0, 0)}
	fleet := newRecFleet(clock, 6)
	fleet.fail["dsn-002"] = true
	rec := NewRecorder(clock)
	f, err := Default.New(Spec{Kind: "dsn-crash", Target: Target{Labels: map[string]string{"zone": "a"}}}, Env{Fleet: fleet, Clock: clock})
	require.NoError(t, err)
	tr := rec.Track("s/0", Spec{Kind: "dsn-crash"}, f)
	err = tr.Inject(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "1 of 3 crashs failed")
	assert.Contains(t, err.Error(), "crash dsn-002: boom")
	require.NoError(t, tr.Recover(context.Background()))
	require.NoError(t, tr.Recover(context.Background()), "recover is idempotent")
	assert.Equal(t, 3, fleet.count("crash"))
	assert.Equal(t, 2, fleet.count("start"), "the DSN whose crash failed is not started")
	ins := rec.Injections()
	assert.Contains(t, ins[0].Err, "boom")
}

func TestInjectInterrupted(t *testing.T) {
	fleet := newRecFleet(&stepClock{}, 10)
	f, err := Default.New(Spec{Kind: "dsn-hang", Params: map[string]string{"window": "1h"}}, Env{Fleet: fleet})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Inject(ctx) }()
	require.Eventually(t, func() bool { return fleet.count("hang") == 1 }, 5*time.Second, 5*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("Inject did not stop when its context ended")
	}
	require.NoError(t, f.Recover(context.Background()))
	assert.Equal(t, 1, fleet.count("resume"))
}

func TestControlPlaneFaults(t *testing.T) {
	clock := &stepClock{now: time.Unix(0, 0)}
	cp := &recCP{running: true}
	env := Env{ControlPlane: cp, Clock: clock}

	kill, err := Default.New(Spec{Kind: "cp-kill"}, env)
	require.NoError(t, err)
	require.NoError(t, kill.Inject(context.Background()))
	assert.False(t, cp.running)
	require.NoError(t, kill.Recover(context.Background()))
	require.NoError(t, kill.Recover(context.Background()))
	assert.Equal(t, []string{"kill", "start"}, cp.calls)

	cp.calls = nil
	restart, err := Default.New(Spec{Kind: "cp-restart", Params: map[string]string{"down": "5s"}}, env)
	require.NoError(t, err)
	before := clock.Now()
	require.NoError(t, restart.Inject(context.Background()))
	assert.Equal(t, 5*time.Second, clock.Now().Sub(before))
	require.NoError(t, restart.Recover(context.Background()))
	assert.Equal(t, []string{"kill", "start"}, cp.calls, "recover after a completed restart starts nothing")

	cp.calls = nil
	cp.failKil = true
	failing, err := Default.New(Spec{Kind: "cp-kill"}, env)
	require.NoError(t, err)
	require.Error(t, failing.Inject(context.Background()))
	require.NoError(t, failing.Recover(context.Background()))
	assert.Equal(t, []string{"kill"}, cp.calls, "a kill that failed is not followed by a start")

	_, err = Default.New(Spec{Kind: "cp-kill"}, Env{})
	require.ErrorIs(t, err, ErrUnsupported)
	_, err = Default.New(Spec{Kind: "dsn-crash"}, Env{ControlPlane: cp})
	require.ErrorIs(t, err, ErrUnsupported)
}

// batchFleet is a recFleet that also takes whole selections at once.
type batchFleet struct {
	*recFleet
	batches []string
	undone  int
}

func (b *batchFleet) Batch(_ context.Context, verb string, ids []string, window time.Duration) (func(context.Context) error, error) {
	b.batches = append(b.batches, fmt.Sprintf("%s %d over %s", verb, len(ids), window))
	return func(context.Context) error { b.undone++; return nil }, nil
}

func TestBatchFleetGetsOneCommand(t *testing.T) {
	clock := &stepClock{now: time.Unix(0, 0)}
	fleet := &batchFleet{recFleet: newRecFleet(clock, 10)}
	rec := NewRecorder(clock)
	f, err := Default.New(Spec{Kind: "dsn-crash", Target: Target{Fraction: 0.5}, Params: map[string]string{"window": "10s"}}, Env{Fleet: fleet, Clock: clock})
	require.NoError(t, err)
	tr := rec.Track("s/0", Spec{Kind: "dsn-crash"}, f)
	require.NoError(t, tr.Inject(context.Background()))
	assert.Equal(t, []string{"crash 5 over 10s"}, fleet.batches)
	assert.Equal(t, 0, fleet.count("crash"), "no per-DSN calls")
	assert.Equal(t, []time.Duration{10 * time.Second}, clock.sleeps, "Inject returns when the window is over")
	require.NoError(t, tr.Recover(context.Background()))
	require.NoError(t, tr.Recover(context.Background()))
	assert.Equal(t, 1, fleet.undone)
	assert.Len(t, rec.Injections()[0].DSNs, 5)
}

func TestSelectWithProbability(t *testing.T) {
	dsns := newRecFleet(&stepClock{}, 200).DSNs()
	a, err := Select(dsns, Target{Probability: 0.3}, 9)
	require.NoError(t, err)
	b, err := Select(dsns, Target{Probability: 0.3}, 9)
	require.NoError(t, err)
	assert.Equal(t, a, b, "the same seed, the same draw")
	assert.InDelta(t, 60, len(a), 25, "about 30%% of 200")
	c, err := Select(dsns, Target{Probability: 0.3}, 10)
	require.NoError(t, err)
	assert.NotEqual(t, a, c, "another seed, another draw")
	half, err := Select(dsns, Target{Count: 100, Probability: 0.5}, 9)
	require.NoError(t, err)
	assert.Less(t, len(half), 100, "the probability thins the count")
	assert.Error(t, Target{Probability: 1.5}.Validate())
}

func TestWriteKindsListsEveryKindAndParam(t *testing.T) {
	var b strings.Builder
	require.NoError(t, Default.WriteKinds(&b))
	out := b.String()
	for _, k := range Default.Kinds() {
		assert.Contains(t, out, k.Name()+"\n  "+k.Description())
		for _, p := range k.Params() {
			assert.Contains(t, out, p.Name, "%s.%s", k.Name(), p.Name)
		}
	}
	assert.Contains(t, out, "cp-pause\n")
	assert.Contains(t, out, "needs: controlPlane.mode process")
}
