package reports

import (
	"bytes"
	"flag"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// golden compares got with testdata/golden/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file; run go test ./reports -run Golden -update")
	if !bytes.Equal(want, got) {
		out := filepath.Join(t.TempDir(), name)
		require.NoError(t, os.WriteFile(out, got, 0o644))
		t.Fatalf("%s differs from its golden file; got written to %s (diff them, or rerun with -update if the change is intended)", name, out)
	}
}

func loadFixture(t *testing.T, name string) *Run {
	t.Helper()
	r, err := LoadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return r
}

func TestGoldenRenderers(t *testing.T) {
	run := loadFixture(t, "run.json")
	for _, tc := range []struct {
		file   string
		render func(io.Writer, *Run) error
	}{
		{ReportFile, RenderHTML},
		{SummaryFile, RenderSummary},
		{JUnitFile, RenderJUnit},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var a, b bytes.Buffer
			require.NoError(t, tc.render(&a, run))
			require.NoError(t, tc.render(&b, run))
			require.Equal(t, a.String(), b.String(), "rendering is not deterministic")
			golden(t, tc.file, a.Bytes())
		})
	}
}

// goldenComparison compares five recorded smoke runs with five whose storm recovery is 30%
// slower, availability 15% higher, a crash in one run, an SLO failing in another, a broken
// run, the control plane's memory missing and a figure outside the catalogue.
func goldenComparison(t *testing.T) Comparison {
	rec := loadRecorded(t)
	custom := func(i int, v map[string]float64) { v["custom.queue_errors"] = 3 + float64(i%2) }
	base := recordedSet(rec, "base", "4f2c9a1d7e3b5c8a9f0e1d2c3b4a5968778695a4", 5, custom)
	head := recordedSet(rec, "head", "b7e1d04c2a9f8e7d6c5b4a39281706f5e4d3c2b1", 5, func(i int, v map[string]float64) {
		custom(i, v)
		v[stormRecovery] *= 1.3
		v["availability.static_stability_availability"] = math.Min(100, v["availability.static_stability_availability"]*1.15)
		delete(v, "resources.cp_peak_rss_bytes")
		if i == 3 {
			v["cp-health.cp_crashes"] = 1
		}
	})
	for _, set := range []*RunSet{base, head} {
		for i, r := range set.Runs {
			r.SLOs = []Verdict{pass("lost_dsns == 0"), pass("restart/storm_recovery_seconds <= 30s")}
			for s := range 20 {
				r.Acked.Points = append(r.Acked.Points, Point{T: int64(s * 1000), V: math.Min(100, float64(s*10+i))})
			}
		}
	}
	head.Runs[2].SLOs[0] = fail("lost_dsns == 0")
	head.Runs[2].Result = ResultFail
	head.Broken = []BrokenRun{{Dir: "runs/head/run-06", ID: "head-6", Error: "control plane: exited with status 2"}}
	c, err := Compare(base, head, CompareOptions{})
	require.NoError(t, err)
	return c
}

func TestGoldenComparison(t *testing.T) {
	c := goldenComparison(t)
	for _, tc := range []struct {
		file   string
		render func(io.Writer, Comparison) error
	}{
		{"compare-summary.md", RenderCompareMarkdown},
		{"compare-junit.xml", RenderCompareJUnit},
		{CompareHTMLFile, RenderCompareHTML},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var a, b bytes.Buffer
			require.NoError(t, tc.render(&a, c))
			require.NoError(t, tc.render(&b, c))
			require.Equal(t, a.String(), b.String(), "rendering is not deterministic")
			golden(t, tc.file, a.Bytes())
		})
	}
}

// TestWriteMatchesGolden checks that Write produces exactly the golden files plus a run.json
// that is byte-for-byte the fixture, and leaves no temporary file behind.
func TestWriteMatchesGolden(t *testing.T) {
	if *update {
		t.Skip("goldens are being rewritten")
	}
	run := loadFixture(t, "run.json")
	dir := filepath.Join(t.TempDir(), "runs", run.ID)
	require.NoError(t, Write(dir, run))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	require.ElementsMatch(t, []string{RunFile, ReportFile, SummaryFile, JUnitFile}, names)
	fixture, err := os.ReadFile(filepath.Join("testdata", "run.json"))
	require.NoError(t, err)
	written, err := os.ReadFile(filepath.Join(dir, RunFile))
	require.NoError(t, err)
	require.Equal(t, string(fixture), string(written))
	for _, f := range []string{ReportFile, SummaryFile, JUnitFile} {
		got, err := os.ReadFile(filepath.Join(dir, f))
		require.NoError(t, err)
		golden(t, f, got)
	}
}
