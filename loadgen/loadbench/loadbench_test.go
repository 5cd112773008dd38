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

func TestStepSearchConverges(t *testing.T) {
	capacity := 5000.0
	var tried []float64
	s := newSearch("x", 1000, 100, 64000, func(_ context.Context, r float64) (stepResult, error) {
		tried = append(tried, r)
		res := stepResult{Gen: "fake", Rate: r, Completed: int64(2 * r), Achieved: r}
		if r > capacity {
			res.Errors = res.Completed / 2
		}
		return res, nil
	})
	require.NoError(t, runSearches(t.Context(), t.Logf, time.Hour, s))
	assert.Equal(t, []float64{1000, 2000, 4000, 8000, 8000, 6000, 6000, 5000, 5500, 5500, 5250, 5250}, tried)
	assert.Equal(t, 5000.0, s.maxRate())

	// One failure is tried again; a pass the second time counts.
	failed := map[float64]bool{}
	flaky := newSearch("flaky", 1000, 100, 4000, func(_ context.Context, r float64) (stepResult, error) {
		res := stepResult{Rate: r, Completed: 10, Achieved: r}
		if r == 2000 && !failed[r] {
			failed[r] = true
			res.Errors = 10
		}
		return res, nil
	})
	require.NoError(t, runSearches(t.Context(), t.Logf, time.Hour, flaky))
	assert.Equal(t, 4000.0, flaky.maxRate())

	// A target that sustains nothing ends the search at the floor.
	none := newSearch("none", 1000, 100, 64000, func(_ context.Context, r float64) (stepResult, error) {
		return stepResult{Rate: r, Completed: 10, Errors: 10}, nil
	})
	require.NoError(t, runSearches(t.Context(), t.Logf, time.Hour, none))
	assert.Zero(t, none.maxRate())
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
