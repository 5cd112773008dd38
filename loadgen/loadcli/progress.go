package loadcli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/dsnscale/dsnscale/loadgen"
)

// progress is a sink that counts results and shows them: a bar on a terminal, a line every
// few seconds otherwise.
type progress struct {
	done, errs atomic.Int64
	start      time.Time
	stopOnce   sync.Once
	quit       chan struct{}
	finished   chan struct{}
}

// plainEvery is the interval of progress lines when stderr is not a terminal.
const plainEvery = 5 * time.Second

func (p *progress) Record(r *loadgen.Result) {
	p.done.Add(1)
	if r.Class != loadgen.ClassOK {
		p.errs.Add(1)
	}
}

func (p *progress) line() string {
	el := time.Since(p.start)
	d := p.done.Load()
	return fmt.Sprintf("%d done, %d errors, %.0f/s", d, p.errs.Load(), float64(d)/max(el.Seconds(), 1e-3))
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func startProgress(w io.Writer, plan loadgen.Plan) *progress {
	p := &progress{start: time.Now(), quit: make(chan struct{}), finished: make(chan struct{})}
	total := plan.Duration.Milliseconds()
	if isTerminal(w) && total > 0 {
		bars := mpb.New(mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithRefreshRate(200*time.Millisecond))
		bar := bars.AddBar(total,
			mpb.PrependDecorators(decor.Name("load "), decor.Elapsed(decor.ET_STYLE_MMSS)),
			mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return p.line() })))
		go func() {
			defer close(p.finished)
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-p.quit:
					bar.SetCurrent(total)
					bars.Wait()
					return
				case <-t.C:
					bar.SetCurrent(min(time.Since(p.start).Milliseconds(), total-1))
				}
			}
		}()
		return p
	}
	go func() {
		defer close(p.finished)
		t := time.NewTicker(plainEvery)
		defer t.Stop()
		for {
			select {
			case <-p.quit:
				return
			case <-t.C:
				fmt.Fprintf(w, "load: %s elapsed, %s\n", time.Since(p.start).Round(time.Second), p.line())
			}
		}
	}()
	return p
}

func (p *progress) stop() {
	p.stopOnce.Do(func() { close(p.quit) })
	<-p.finished
}
