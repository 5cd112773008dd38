package loadbench

import (
	"bytes"
	"context"
	"math"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/internal/benchfig"
	"github.com/dsnscale/dsnscale/internal/ratesearch"
)

func TestBenchmarksRegistered(t *testing.T) {
	var names []string
	for _, b := range benchfig.Select("") {
		names = append(names, b.Name+"/"+b.Area)
	}
	assert.Contains(t, names, "loadgen-vs-vegeta/loadgen")
	assert.Contains(t, names, "cp-api/cp")
}

// spin burns a fixed amount of CPU (about half a second), however long a busy machine takes to give it.
func spin() float64 {
	x := 0.0
	for i := 0; i < 400_000_000; i++ {
		x += math.Sqrt(float64(i))
	}
	return x
}

func TestLabeledShareSplitsAProfile(t *testing.T) {
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		t.Skipf("CPU profiling unavailable: %v", err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go pprof.Do(context.Background(), pprof.Labels(labelKey, labelValue), func(context.Context) {
		defer wg.Done()
		spin()
	})
	go func() {
		defer wg.Done()
		spin()
	}()
	wg.Wait()
	pprof.StopCPUProfile()
	labeled, total, err := labeledShare(&buf, labelKey, labelValue)
	require.NoError(t, err)
	assert.Positive(t, labeled, "the labelled goroutine has samples")
	assert.Greater(t, total, labeled, "the other goroutine has samples too")
	// Equal work on both sides: the labelled share is near a half.
	share := float64(labeled) / float64(total)
	assert.InDelta(t, 0.5, share, 0.3, "labelled share %.2f", share)
	_, _, err = labeledShare(bytes.NewReader([]byte("not gzip")), labelKey, labelValue)
	require.Error(t, err)
}

// TestSearchBracketsAFakeTarget runs the package's searches, with its rule, against a fake
// target of known capacity whose latency from the intended start (a generator falling behind)
// crosses the bound well below the rate where errors start.
func TestSearchBracketsAFakeTarget(t *testing.T) {
	const errorsFrom, queuesFrom = 5000.0, 3000.0
	fake := func(_ context.Context, r float64) (stepResult, error) {
		res := stepResult{Gen: "fake", Rate: r, Completed: int64(2 * r), Achieved: r}
		res.Service.P99 = 5 * time.Millisecond
		res.Latency.P99 = 5 * time.Millisecond
		if r > queuesFrom {
			res.Latency.P99 = time.Second
		}
		if r > errorsFrom {
			res.Errors = res.Completed / 2
		}
		return res, nil
	}
	for _, tc := range []struct {
		p99      p99Of
		capacity float64
	}{{serviceP99, errorsFrom}, {intendedP99, queuesFrom}} {
		s, err := newSearch("fake", 1000, 100, 64000, 2, tc.p99, t.Logf, fake)
		require.NoError(t, err)
		require.NoError(t, runSearches(t.Context(), t.Logf, time.Hour, s))
		b, best, err := bracketOf(s)
		require.NoError(t, err)
		assert.LessOrEqual(t, b.Held, tc.capacity)
		assert.Greater(t, b.Failed, tc.capacity)
		assert.LessOrEqual(t, b.Failed-b.Held, searchResolution*b.Held+1)
		assert.Equal(t, b.Held, best.Rate, "the held step's own record")
	}

	// A budget too short for the bracket is an error, not the best rate so far.
	s, err := newSearch("short", 1000, 100, 64000, 2, serviceP99, t.Logf, fake)
	require.NoError(t, err)
	require.NoError(t, runSearches(t.Context(), t.Logf, stepCost, s))
	_, _, err = bracketOf(s)
	require.ErrorIs(t, err, ratesearch.ErrBudget)
}

func TestBothGeneratorsAgainstTheControlPlane(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane and runs two load steps")
	}
	tg, err := startTarget(t.Context(), "", t.TempDir(), false)
	require.NoError(t, err)
	defer tg.stop()
	w, err := workload(t.Context(), t.Logf, tg, "get-only", 0, 0)
	require.NoError(t, err)
	defer w.CloseIdleConnections()

	lr, err := runLoadgen(t.Context(), w, 200, cold)
	require.NoError(t, err)
	t.Log(lr)
	assert.Equal(t, int64(400), lr.Completed)
	assert.Zero(t, lr.Errors, "%s", lr)

	var targets []vegeta.Target
	for _, u := range w.ItemURLs(model.KindNetwork) {
		targets = append(targets, vegeta.Target{Method: "GET", URL: u, Header: w.Header()})
	}
	require.Len(t, targets, 500)
	vr, err := runVegeta(t.Context(), targets, 200)
	require.NoError(t, err)
	t.Log(vr)
	assert.InDelta(t, 400, vr.Completed, 2)
	assert.Zero(t, vr.Errors, "%s", vr)
	// A step this small gives the profile a dozen samples, so the generator's share may be
	// none of them; TestLabeledShareSplitsAProfile checks the split itself.
	if lr.CPU.Known {
		assert.GreaterOrEqual(t, lr.CPU.Generator, time.Duration(0))
		assert.LessOrEqual(t, lr.CPU.Generator, lr.CPU.Process)
	}
}

// TestSecureTargetServesTheLoad checks that a workload reaches the secure target with the
// credential flow (CA, login) and that every request of a step succeeds.
func TestSecureTargetServesTheLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane and runs a load step")
	}
	tg, err := startTarget(t.Context(), "", t.TempDir(), true)
	require.NoError(t, err)
	defer tg.stop()
	require.True(t, strings.HasPrefix(tg.url, "https://"), tg.url)
	w, err := workload(t.Context(), t.Logf, tg, "update-only", 2, 20)
	require.NoError(t, err)
	defer w.CloseIdleConnections()
	r, err := runLoadgen(t.Context(), w, 100, cold)
	require.NoError(t, err)
	t.Log(r)
	assert.Equal(t, int64(200), r.Completed)
	assert.Zero(t, r.Errors, "%s", r)
}
