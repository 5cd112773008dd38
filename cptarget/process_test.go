package cptarget

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/cpproc"
	"github.com/dsnscale/dsnscale/internal/testbin"
	"github.com/dsnscale/dsnscale/scenarios/measure"
)

func TestMain(m *testing.M) { testbin.Main(m) }

func kinds(es []measure.CPEvent) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Kind)
	}
	return out
}

// A process target is killed and started again on its addresses, and an exit it did not cause is
// recorded as a crash with the end of the control plane's log.
func TestProcessTargetKillStartAndCrash(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	events := &measure.CPEvents{}
	tg, err := Open(ctx, Config{Mode: Process, Binary: testbin.Path(t), Dir: t.TempDir()}, Env{Events: events})
	require.NoError(t, err)
	defer tg.Stop(context.Background())
	require.NotNil(t, tg.FleetSecurity(), "the fleet gets a gateway token")
	rev, err := tg.API().Revision(ctx)
	require.NoError(t, err)
	api, nats := tg.APIURL(), tg.NATSURL()

	f := tg.Faults()
	require.NoError(t, f.Kill(ctx))
	assert.False(t, f.Running())
	assert.Zero(t, tg.PID())
	require.NoError(t, f.Start(ctx))
	assert.Equal(t, api, tg.APIURL())
	assert.Equal(t, nats, tg.NATSURL())
	again, err := tg.API().Revision(ctx)
	require.NoError(t, err, "the harness logs in again after the restart")
	assert.GreaterOrEqual(t, again, rev)

	// Frozen, it does not answer; thawed, it does.
	pt := tg.(*processTarget)
	require.NoError(t, pt.Pause(ctx, true))
	frozen, cancelFrozen := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err = tg.API().Revision(frozen)
	cancelFrozen()
	require.Error(t, err, "a frozen control plane answers nothing")
	require.NoError(t, pt.Pause(ctx, false))
	_, err = tg.API().Revision(ctx)
	require.NoError(t, err)

	// A crash: the process ends and nobody asked it to.
	require.NoError(t, syscall.Kill(tg.PID(), syscall.SIGKILL))
	require.Eventually(t, func() bool { return !f.Running() }, time.Minute, 10*time.Millisecond)
	es := events.Events()
	assert.Equal(t, []string{measure.CPStarted, measure.CPKilled, measure.CPStarted, measure.CPExited}, kinds(es))
	assert.Contains(t, es[len(es)-1].Detail, "last log lines:")
}

// A control plane that dies while starting is reported at once, with the end of its log.
func TestProcessTargetThatDiesAtStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := Open(ctx, Config{Mode: Process, Binary: testbin.Path(t), Dir: t.TempDir(), TSDB: "ftp://127.0.0.1:9"}, Env{})
	require.ErrorIs(t, err, cpproc.ErrNotStarted)
	require.NoError(t, ctx.Err(), "reported before the readiness wait ran out: %v", err)
	assert.True(t, strings.Contains(err.Error(), `scheme "ftp"`), "the log's last lines say why: %v", err)
}

// An external target is reached with the token of its file, read again at each use.
func TestExternalTargetTokenFile(t *testing.T) {
	file := t.TempDir() + "/token"
	require.NoError(t, os.WriteFile(file, []byte("first\n"), 0o600))
	tg := &externalTarget{cfg: Config{Mode: External, TokenFile: file}}
	tok, err := tg.Token(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "first", tok)
	require.NoError(t, os.WriteFile(file, []byte("second"), 0o600))
	tok, err = tg.Token(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "second", tok)

	_, err = Open(context.Background(), Config{Mode: External, TokenFile: t.TempDir() + "/missing"}, Env{})
	assert.ErrorContains(t, err, "controlPlane.tokenFile")
	_, err = Open(context.Background(), Config{Mode: "replicas"}, Env{})
	assert.ErrorContains(t, err, `unknown mode "replicas"`)
}
