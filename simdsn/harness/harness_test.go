package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/internal/natsserver"
	"github.com/dsnscale/dsnscale/simdsn/bus"
	"github.com/dsnscale/dsnscale/simdsn/driver"
	"github.com/dsnscale/dsnscale/simdsn/engine"
	"github.com/dsnscale/dsnscale/simdsn/record"
	"github.com/dsnscale/dsnscale/simdsn/stage"
	"github.com/dsnscale/dsnscale/simdsn/trafficmap"
)

func TestAckLines(t *testing.T) {
	id, err, ok := parseAck(ackLine(7, nil))
	assert.True(t, ok)
	assert.Equal(t, uint64(7), id)
	assert.NoError(t, err)
	id, err, ok = parseAck(ackLine(8, errors.New(`bad "thing" here`)))
	assert.True(t, ok)
	assert.Equal(t, uint64(8), id)
	assert.EqualError(t, err, `bad "thing" here`)
	_, _, ok = parseAck([]byte(`{"at":1}`))
	assert.False(t, ok)
}

// goRunner runs each unit's child in this process: the real child code, over the real link,
// without building a binary.
type goRunner struct {
	dir     string
	mu      sync.Mutex
	cancels map[string]context.CancelFunc
	args    map[string]Child
	done    map[string]chan struct{}
	starts  map[string]int
}

func newGoRunner(t *testing.T) *goRunner {
	return &goRunner{dir: t.TempDir(), cancels: map[string]context.CancelFunc{}, args: map[string]Child{},
		done: map[string]chan struct{}{}, starts: map[string]int{}}
}

// envOf looks variables up in an environment list.
func envOf(env []string) func(string) string {
	return func(k string) string {
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, k+"="); ok {
				return v
			}
		}
		return ""
	}
}

func (r *goRunner) CacheDir(string) string { return filepath.Join(r.dir, "cache") }

func (r *goRunner) Start(_ context.Context, unit string, c Child) error {
	a, err := ParseChildArgs(c.Args[2:], envOf(c.Env), io.Discard)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r.mu.Lock()
	r.cancels[unit], r.args[unit], r.done[unit] = cancel, c, done
	r.starts[unit]++
	r.mu.Unlock()
	go func() {
		defer close(done)
		_ = RunChild(ctx, a, nil)
	}()
	return nil
}

func (r *goRunner) Kill(_ context.Context, unit string) error {
	r.mu.Lock()
	cancel, done := r.cancels[unit], r.done[unit]
	r.mu.Unlock()
	cancel()
	<-done
	return nil
}

func (r *goRunner) Pause(context.Context, string, bool) error { return driver.ErrUnsupported }

func (r *goRunner) Restart(ctx context.Context, unit string) error {
	if err := r.Kill(ctx, unit); err != nil {
		return err
	}
	return r.Start(ctx, unit, r.args[unit])
}

func (r *goRunner) Usage(context.Context) (driver.Usage, error) {
	return driver.Usage{}, driver.ErrUnsupported
}

func (r *goRunner) Close(ctx context.Context) error {
	for u := range r.cancels {
		_ = r.Kill(ctx, u)
	}
	return nil
}

func TestDeploymentLinksUnits(t *testing.T) {
	srv, err := natsserver.Start(natsserver.Config{StoreDir: t.TempDir()})
	require.NoError(t, err)
	defer srv.Stop()
	reg := stage.Default()
	m := trafficmap.Default()
	ps, err := m.Place(16, "h")
	require.NoError(t, err)
	units, idx := unitsOf(ps)
	col := record.NewCollector(nil)
	r := newGoRunner(t)
	ctx := context.Background()
	d, err := Launch(ctx, &driver.Plan{Map: m, Stages: reg, Units: units, Bus: bus.Config{URL: srv.URL()}, Seed: 1}, col.Writer(), r, Options{})
	require.NoError(t, err)
	defer d.Close(ctx)
	for _, u := range units {
		assert.True(t, d.Up(u.Name), u.Name)
	}

	// A stranger without a certificate of the run gets nothing.
	c, err := net.Dial("tcp", d.Addr())
	require.NoError(t, err)
	_, _ = fmt.Fprintf(c, `{"unit":%q,"token":"guess"}`+"\n", units[0].Name)
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, _ := c.Read(make([]byte, 10))
	assert.Zero(t, n)
	c.Close()

	// Commands reach the children; their records come back.
	require.NoError(t, d.Command(ctx, engine.Command{Op: engine.OpStart}))
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, col.WaitFor(wctx, func(s record.Summary) bool { return s.Count("admitting") == 16 }))
	err = d.Command(ctx, engine.Command{Op: engine.OpInject, Injection: "x", Misbehaviour: "nope"})
	assert.ErrorContains(t, err, "unknown stage set or misbehaviour", "the child's answer comes back")
	require.NoError(t, d.Command(ctx, engine.Command{Op: engine.OpInject, Injection: "h", Misbehaviour: "hang", DSNs: []string{ps[0].ID}}))
	require.NoError(t, col.WaitFor(wctx, func(s record.Summary) bool { return s.Count("hung") == 1 }))

	// A unit whose child dies is reported down, DSN by DSN; started again, it gets the fleet's
	// state back: booted, with its fault.
	u := ps[0].Rack
	require.NoError(t, d.UnitFault(ctx, u, driver.UnitKill, true))
	require.NoError(t, col.WaitFor(wctx, func(s record.Summary) bool { return s.Count("off") == len(units[idx[u]].DSNs) }))
	assert.Equal(t, "down", col.Units()[u].Status)
	require.NoError(t, d.UnitFault(ctx, u, driver.UnitKill, false))
	require.NoError(t, col.WaitFor(wctx, func(s record.Summary) bool { return s.Count("admitting") == 15 && s.Count("hung") == 1 }))
	assert.Equal(t, "up", col.Units()[u].Status)
	require.NoError(t, d.Command(ctx, engine.Command{Op: engine.OpRecover, Injection: "h"}))
	require.NoError(t, col.WaitFor(wctx, func(s record.Summary) bool { return s.Count("admitting") == 16 }))
	assert.ErrorIs(t, d.UnitFault(ctx, "nope", driver.UnitKill, true), driver.ErrUnknownUnit)
}
