//go:build unix

package reports

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/scripts/testservers"
)

// chromium returns the headless browser to render reports with. Without one the tests skip,
// loudly, except in CI (CI=true), where a missing browser is a failure.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testservers.RequireTool(t, "chromium is not installed (apt-get install -y chromium), so the browser check of the report",
		errors.New("no chromium, chromium-browser or google-chrome on PATH"))
	return ""
}

// consoleLine matches the lines Chromium logs for console messages: page errors, refused
// resources, content-security-policy violations.
var consoleLine = regexp.MustCompile(`:CONSOLE[:(]`)

// browse loads the file in headless Chromium and returns the DOM after load and every console
// message the page caused.
func browse(t *testing.T, browser, file string) (dom string, console []string) {
	t.Helper()
	abs, err := filepath.Abs(file)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
		"--disable-extensions", "--disable-background-networking", "--enable-logging=stderr", "--v=0",
		"--user-data-dir="+t.TempDir(), "--dump-dom", "file://"+abs)
	// Its helper processes go with it if it hangs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "chromium failed:\n%s", stderr.String())
	for _, l := range strings.Split(stderr.String(), "\n") {
		if consoleLine.MatchString(l) {
			console = append(console, l)
		}
	}
	return stdout.String(), console
}

func TestReportsRenderInChromium(t *testing.T) {
	browser := chromium(t)
	head := generateRun(true)
	dir := filepath.Join(t.TempDir(), head.ID)
	require.NoError(t, Write(dir, head))
	cmpDir := t.TempDir()
	require.NoError(t, WriteComparison(cmpDir, goldenComparison(t)))

	for _, tc := range []struct {
		file   string
		charts int
		ids    []string
	}{
		// convergence, acked, CPU, RSS, API latency, errors, throughput, two measurement charts
		{filepath.Join(dir, ReportFile), 9, []string{"chart-convergence", "chart-acked", "chart-cpu", "chart-rss", "chart-api-latency", "chart-api-errors"}},
		// the overlay of acked share, and each run's value of the two figures that moved
		{filepath.Join(cmpDir, CompareHTMLFile), 3, []string{"overlay-0", "values-0", "values-1"}},
	} {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			dom, console := browse(t, browser, tc.file)
			assert.Empty(t, console, "the page logged console messages")
			assert.Equal(t, tc.charts, strings.Count(dom, `<svg xmlns="http://www.w3.org/2000/svg" class="chart"`), "charts in the rendered DOM")
			for _, id := range tc.ids {
				i := strings.Index(dom, `id="`+id+`"`)
				require.GreaterOrEqual(t, i, 0, "chart %s is not in the DOM", id)
				end := strings.Index(dom[i:], "</svg>")
				require.Greater(t, end, 0)
				chart := dom[i : i+end]
				assert.True(t, strings.Contains(chart, "<polyline") || strings.Contains(chart, "<circle"), "chart %s draws no series", id)
			}
		})
	}
}

// The console check must be able to fail: a page that tries to load anything is caught.
func TestBrowserCheckCatchesExternalLoads(t *testing.T) {
	if testing.Short() {
		t.Skip("the check's own control runs without -short")
	}
	browser := chromium(t)
	var buf bytes.Buffer
	require.NoError(t, RenderHTML(&buf, smallRun()))
	page := strings.Replace(buf.String(), "</main>", `<img src="http://127.0.0.1:9/pixel.png" alt=""></main>`, 1)
	file := filepath.Join(t.TempDir(), "bad.html")
	require.NoError(t, os.WriteFile(file, []byte(page), 0o644))
	_, console := browse(t, browser, file)
	require.NotEmpty(t, console, "a blocked external load must show up as a console message")
	assert.Contains(t, strings.Join(console, "\n"), "Content Security Policy")
}
