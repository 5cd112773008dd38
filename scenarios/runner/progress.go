package runner

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/dsnscale/dsnscale/scenarios"
	"github.com/dsnscale/dsnscale/scenarios/measure"
)

// progress shows a run as it goes: the step, the DSNs per state, the share acked, the elapsed
// time.
type progress interface {
	Step(i, n int, st *scenarios.Step, start time.Time)
	Update(step string, c measure.Counts, size int, rev uint64, elapsed time.Duration)
	Log(format string, args ...any)
	Close()
}

func newProgress(w io.Writer, terminal bool, s *scenarios.Scenario) progress {
	switch {
	case w == nil:
		return nopProgress{}
	case terminal:
		return newBars(w, s)
	}
	return &lines{w: w, every: 5 * time.Second}
}

type nopProgress struct{}

func (nopProgress) Step(int, int, *scenarios.Step, time.Time)                 {}
func (nopProgress) Update(string, measure.Counts, int, uint64, time.Duration) {}
func (nopProgress) Log(string, ...any)                                        {}
func (nopProgress) Close()                                                    {}

// census renders the DSNs per state, most numerous first.
func census(c measure.Counts) string {
	states := make([]string, 0, len(c.States))
	for s := range c.States {
		states = append(states, s)
	}
	sort.Slice(states, func(i, j int) bool {
		if c.States[states[i]] != c.States[states[j]] {
			return c.States[states[i]] > c.States[states[j]]
		}
		return states[i] < states[j]
	})
	parts := make([]string, len(states))
	for i, s := range states {
		parts[i] = fmt.Sprintf("%s %d", s, c.States[s])
	}
	return strings.Join(parts, ", ")
}

func ackedPct(c measure.Counts, size int) float64 {
	if size == 0 {
		return 0
	}
	return 100 * float64(c.AtOrPast) / float64(size)
}

// lines writes a plain progress line at most every so often, and log lines as they come.
type lines struct {
	w     io.Writer
	every time.Duration

	mu       sync.Mutex
	last     time.Time
	stepLine string
	stepAt   time.Time
	length   time.Duration
}

func (l *lines) Step(i, n int, st *scenarios.Step, start time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stepLine = fmt.Sprintf("step %d/%d %s", i+1, n, st.Name)
	l.stepAt, l.length = start, st.Length()
	wait := "for " + st.Duration.String()
	if st.Until != nil {
		wait = fmt.Sprintf("until %s (timeout %s)", st.Until, st.Timeout)
	}
	fmt.Fprintf(l.w, "%s %s\n", l.stepLine, wait)
	l.last = time.Time{}
}

func (l *lines) Update(_ string, c measure.Counts, size int, rev uint64, elapsed time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		return
	}
	l.last = now
	in, step := "", l.stepLine
	if step == "" {
		step = "starting"
	}
	if !l.stepAt.IsZero() {
		in = fmt.Sprintf(" (%s of %s)", now.Sub(l.stepAt).Round(time.Second), l.length)
	}
	fmt.Fprintf(l.w, "[+%s] %s%s: acked %.1f%% (%d/%d) at revision %d; %s\n",
		elapsed.Round(time.Second), step, in, ackedPct(c, size), c.AtOrPast, size, rev, census(c))
}

func (l *lines) Log(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format+"\n", args...)
}

func (l *lines) Close() {}

// bars draws progress bars: one for the current step, one for the share of the fleet acked. The
// bars' decorators run on mpb's goroutines, so what they show is read without locks held while
// calling into mpb.
type bars struct {
	p       *mpb.Progress
	fleet   *mpb.Bar
	summary atomic.Value // string

	mu     sync.Mutex // guards step, stepAt and length
	step   *mpb.Bar
	stepAt time.Time
	length time.Duration
}

const barScale = 1000

func newBars(w io.Writer, s *scenarios.Scenario) *bars {
	// In a terminal mpb uses the terminal's width; WithWidth only applies elsewhere.
	b := &bars{p: mpb.New(mpb.WithOutput(w), mpb.WithWidth(160), mpb.WithRefreshRate(200*time.Millisecond), mpb.WithAutoRefresh())}
	b.summary.Store("starting")
	// Bars start with no total: a bar made with one completes, and stops, the first time it
	// reaches it, but the acked share goes down again in a storm. Close completes them.
	b.fleet = b.p.AddBar(0, mpb.BarWidth(30),
		mpb.BarPriority(1<<30),
		mpb.PrependDecorators(decor.Name("acked", decor.WC{W: 24, C: decor.DindentRight})),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
			return b.summary.Load().(string)
		})))
	b.fleet.SetTotal(int64(max(s.Fleet.Size, 1)), false)
	return b
}

func (b *bars) Step(i, n int, st *scenarios.Step, start time.Time) {
	label := fmt.Sprintf("step %d/%d %s", i+1, n, st.Name)
	what := "for " + st.Duration.String()
	if st.Until != nil {
		what = fmt.Sprintf("until %s, timeout %s", st.Until, st.Timeout)
	}
	bar := b.p.AddBar(0, mpb.BarWidth(30), mpb.BarPriority(i),
		mpb.PrependDecorators(decor.Name(label, decor.WC{W: 24, C: decor.DindentRight})),
		mpb.AppendDecorators(decor.NewElapsed(decor.ET_STYLE_GO, start), decor.Name(" "+what)))
	bar.SetTotal(barScale, false)
	b.mu.Lock()
	prev := b.step
	b.step, b.stepAt, b.length = bar, start, st.Length()
	b.mu.Unlock()
	if prev != nil {
		prev.SetCurrent(barScale)
		prev.SetTotal(-1, true)
	}
}

func (b *bars) Update(_ string, c measure.Counts, size int, rev uint64, elapsed time.Duration) {
	b.summary.Store(fmt.Sprintf("%.1f%% at rev %d | %s | %s", ackedPct(c, size), rev, census(c), elapsed.Round(time.Second)))
	b.fleet.SetCurrent(int64(c.AtOrPast))
	b.mu.Lock()
	step, at, length := b.step, b.stepAt, b.length
	b.mu.Unlock()
	if step != nil && length > 0 {
		done := int64(barScale * time.Since(at) / length)
		step.SetCurrent(min(done, barScale-1))
	}
}

func (b *bars) Log(format string, args ...any) {
	_, _ = fmt.Fprintf(b.p, format+"\n", args...)
}

func (b *bars) Close() {
	b.mu.Lock()
	step := b.step
	b.mu.Unlock()
	if step != nil {
		step.SetCurrent(barScale)
		step.SetTotal(-1, true)
	}
	b.fleet.SetTotal(-1, true)
	b.p.Wait()
}
