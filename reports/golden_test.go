package reports

import (
	"bytes"
	"flag"
	"io"
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

func TestGoldenComparison(t *testing.T) {
	base, head := loadFixture(t, "base.json"), loadFixture(t, "run.json")
	cmp := Compare(base, head, DefaultTolerance())
	var md, html bytes.Buffer
	require.NoError(t, RenderCompareMarkdown(&md, cmp))
	require.NoError(t, RenderCompareHTML(&html, cmp))
	golden(t, CompareMarkdownFile, md.Bytes())
	golden(t, CompareHTMLFile, html.Bytes())
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
