package simcli

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/dsnscale/dsnscale/simdsn"
	"github.com/dsnscale/dsnscale/simdsn/record"
)

func run(ctx context.Context, cfg simdsn.Config, o options, stdout, stderr io.Writer) int {
	f, err := simdsn.New(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "dsnscale sim: %v\n", err)
		return ExitBroken
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := f.Close(cctx); err != nil {
			fmt.Fprintf(stderr, "dsnscale sim: closing: %v\n", err)
		}
	}()
	if err := f.Start(ctx, o.bootSpread); err != nil {
		fmt.Fprintf(stderr, "dsnscale sim: starting: %v\n", err)
		return ExitBroken
	}
	fmt.Fprintf(stdout, "sim: %d DSNs in %d units, driver %s, bus %s (%s connections)\n", f.Size(), len(f.Units()), f.Driver(), o.cp, o.conn)
	runCtx := ctx
	if o.duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	mode := o.progress
	if mode == "auto" {
		mode = "plain"
		if isTerminal(stdout) {
			mode = "bar"
		}
	}
	switch mode {
	case "bar":
		progressBar(runCtx, f, stdout)
	case "plain":
		progressLines(runCtx, f, stdout, 5*time.Second)
	default:
		<-runCtx.Done()
	}
	fmt.Fprintf(stdout, "sim: %s\n", describe(f.Reports().Summary(), f.Size()))
	return ExitOK
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// describe renders a summary: serving count, the other states, the applied revisions.
func describe(s record.Summary, total int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "serving=%d/%d", s.Count("serving"), total)
	states := make([]string, 0, len(s.ByState))
	for st := range s.ByState {
		if st != "serving" {
			states = append(states, st)
		}
	}
	sort.Strings(states)
	for _, st := range states {
		fmt.Fprintf(&b, " %s=%d", st, s.ByState[st])
	}
	var lo, hi uint64
	first := true
	for r := range s.ByRevision {
		if first || r < lo {
			lo = r
		}
		if first || r > hi {
			hi = r
		}
		first = false
	}
	fmt.Fprintf(&b, " applied=[%d..%d]", lo, hi)
	if admitting := s.Count("admitting"); admitting > 0 && s.Count("serving") == 0 {
		b.WriteString(" (waiting for the control plane; retrying with back-off)")
	}
	return b.String()
}

func progressLines(ctx context.Context, f *simdsn.Fleet, w io.Writer, every time.Duration) {
	start := time.Now()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fmt.Fprintf(w, "sim: t=%s %s\n", time.Since(start).Round(time.Second), describe(f.Reports().Summary(), f.Size()))
		}
	}
}

func progressBar(ctx context.Context, f *simdsn.Fleet, w io.Writer) {
	p := mpb.NewWithContext(ctx, mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithRefreshRate(250*time.Millisecond))
	total := int64(f.Size())
	var line atomic.Pointer[string]
	empty := ""
	line.Store(&empty)
	bar := p.AddBar(total,
		mpb.PrependDecorators(decor.Name("serving "), decor.CountersNoUnit("%d/%d")),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return *line.Load() })),
		mpb.BarRemoveOnComplete(),
	)
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			bar.Abort(false)
			p.Wait()
			return
		case <-t.C:
			s := f.Reports().Summary()
			d := describe(s, f.Size())
			line.Store(&d)
			// The bar never completes while running: DSNs may leave serving again.
			bar.SetCurrent(min(int64(s.Count("serving")), total-1))
		}
	}
}
