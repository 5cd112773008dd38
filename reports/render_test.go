package reports

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// JUnit is the JUnit XML schema as CI servers read it, declared here independently of the
// renderer's types.
type JUnit struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Errors   int      `xml:"errors,attr"`
	Suites   []struct {
		Name       string  `xml:"name,attr"`
		Tests      int     `xml:"tests,attr"`
		Failures   int     `xml:"failures,attr"`
		Errors     int     `xml:"errors,attr"`
		Skipped    int     `xml:"skipped,attr"`
		Time       float64 `xml:"time,attr"`
		Timestamp  string  `xml:"timestamp,attr"`
		Properties []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"properties>property"`
		Cases []struct {
			Name      string `xml:"name,attr"`
			Classname string `xml:"classname,attr"`
			Failure   *struct {
				Message string `xml:"message,attr"`
				Type    string `xml:"type,attr"`
				Text    string `xml:",chardata"`
			} `xml:"failure"`
			Error *struct {
				Message string `xml:"message,attr"`
			} `xml:"error"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func parseJUnit(t *testing.T, r *Run) JUnit {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, RenderJUnit(&buf, r))
	var j JUnit
	require.NoError(t, xml.Unmarshal(buf.Bytes(), &j), buf.String())
	require.Len(t, j.Suites, 1, "one testsuite per run")
	return j
}

func TestJUnitCounts(t *testing.T) {
	t.Run("fixture", func(t *testing.T) {
		j := parseJUnit(t, generateRun(true))
		s := j.Suites[0]
		assert.Equal(t, "storm-restart", s.Name)
		assert.Equal(t, 6, s.Tests)
		assert.Equal(t, 3, s.Failures)
		assert.Equal(t, 0, s.Errors)
		assert.Equal(t, 360.0, s.Time)
		assert.Equal(t, "2025-03-15T11:00:00", s.Timestamp)
		require.Len(t, s.Cases, 6)
		assert.Equal(t, j.Tests, s.Tests)
		assert.Equal(t, j.Failures, s.Failures)
		// The fault that failed to recover is a failure of its own.
		require.NotNil(t, s.Cases[5].Failure)
		assert.Equal(t, "FaultFailed", s.Cases[5].Failure.Type)
		assert.Contains(t, s.Cases[5].Failure.Message, "qdisc rules")
		failed := 0
		for _, c := range s.Cases[:5] {
			if c.Failure != nil {
				failed++
				assert.Equal(t, "SLOViolation", c.Failure.Type)
				assert.Contains(t, c.Failure.Message, "observed")
				assert.Contains(t, c.Failure.Message, "want")
			}
		}
		assert.Equal(t, 2, failed)
		assert.Equal(t, "API p99 <= 250ms", s.Cases[1].Name)
		assert.Equal(t, "api-latency.p99: observed 295.7 ms, want <= 250 ms", s.Cases[1].Failure.Message)
	})
	t.Run("passing", func(t *testing.T) {
		j := parseJUnit(t, generateRun(false))
		assert.Equal(t, 5, j.Tests)
		assert.Equal(t, 0, j.Failures)
	})
	t.Run("aborted", func(t *testing.T) {
		r := smallRun()
		r.Result, r.Error = ResultAborted, "control plane exited: signal: killed"
		j := parseJUnit(t, r)
		s := j.Suites[0]
		assert.Equal(t, 2, s.Tests)
		assert.Equal(t, 1, s.Errors)
		assert.Equal(t, 0, s.Failures)
		require.NotNil(t, s.Cases[1].Error)
		assert.Equal(t, "run", s.Cases[1].Name)
		assert.Equal(t, r.Error, s.Cases[1].Error.Message)
	})
	t.Run("failed step without failed SLO", func(t *testing.T) {
		r := smallRun()
		r.Result = ResultFail
		r.Steps = []Step{{Name: "wait-converged", Start: r.Start, End: r.End, Error: "timed out after 1m"}}
		j := parseJUnit(t, r)
		assert.Equal(t, 2, j.Tests)
		assert.Equal(t, 1, j.Failures)
		assert.Equal(t, "step wait-converged: timed out after 1m", j.Suites[0].Cases[1].Failure.Message)
	})
	t.Run("hostile names", func(t *testing.T) {
		r := smallRun()
		r.Scenario.Name = `a"b<c>&d` + "\x00\x1b"
		r.SLOs[0].Name = "]]><x/>"
		j := parseJUnit(t, r)
		assert.Equal(t, "]]><x/>", j.Suites[0].Cases[0].Name)
	})
}

func hostileRun() *Run {
	r := generateRun(true)
	evil := `<script>alert(1)</script>|*_[x](javascript:1)`
	r.Scenario.Name = evil
	r.Scenario.Content = evil
	r.Error = ""
	r.Params["k"+evil] = evil
	r.Steps[0].Name = evil
	r.Faults[0].Target = evil
	r.Measurements[0].Name = evil
	r.Measurements[0].Series[0].Name = evil
	r.SLOs[0].Name = evil
	r.Components[0].Name = evil
	r.Environment.Extra["x"] = evil
	return r
}

func TestHTMLEscapesEverything(t *testing.T) {
	r := hostileRun()
	require.NoError(t, r.Validate())
	var buf bytes.Buffer
	require.NoError(t, RenderHTML(&buf, r))
	out := buf.String()
	assert.NotContains(t, out, "<script")
	assert.Contains(t, out, "&lt;script&gt;")
	assert.NotContains(t, out, "https://")
	// The only URL is the SVG namespace, which loads nothing.
	assert.Equal(t, strings.Count(out, "http://"), strings.Count(out, `xmlns="http://www.w3.org/2000/svg"`))
	assert.Equal(t, strings.Count(out, "<svg "), strings.Count(out, "http://"))
}

func TestSummaryEscapesMarkdown(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, RenderSummary(&buf, hostileRun()))
	out := buf.String()
	assert.NotContains(t, out, "<script")
	escaped := `&lt;script&gt;alert(1)&lt;/script&gt;\|\*\_\[x\](javascript:1)`
	n := 0
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "alert") {
			// The | inside the name is escaped, so table rows keep their columns.
			assert.Contains(t, line, escaped)
			n++
		}
	}
	assert.Greater(t, n, 5)
}

func TestSummaryOfAbortedRun(t *testing.T) {
	r := smallRun()
	r.Result, r.Error = ResultAborted, "fleet driver: docker: no such image"
	var buf bytes.Buffer
	require.NoError(t, RenderSummary(&buf, r))
	assert.Contains(t, buf.String(), "### ⛔ smoke: aborted")
	assert.Contains(t, buf.String(), "> **Error:** fleet driver: docker: no such image")
}

func TestHTMLOfEmptyRunStillHasEveryChart(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, RenderHTML(&buf, smallRun()))
	out := buf.String()
	assert.Equal(t, 6, strings.Count(out, "<svg "), "convergence, acked, cpu, rss, latency, errors")
	assert.Equal(t, 6, strings.Count(out, ">no data<"))
}

func TestLongRunStaysSmall(t *testing.T) {
	// A 24-hour soak sampled every second.
	r := smallRun()
	r.End = r.Start.Add(24 * 3600e9)
	s := Series{Name: "p99", Unit: UnitMillis}
	for i := 0; i < 86400; i++ {
		s.Points = append(s.Points, Point{T: int64(i) * 1000, V: float64(i % 97)})
	}
	r.API.P99, r.API.P50 = s, s
	var buf bytes.Buffer
	require.NoError(t, RenderHTML(&buf, r))
	assert.Less(t, buf.Len(), 400_000, "charts are decimated to their width")
}
