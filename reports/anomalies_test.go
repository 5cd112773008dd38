package reports

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recordedRun is a storm-restart run of 1,000 simulated DSNs against the reference control
// plane as a process, recorded as dsnscale wrote it. Every SLO passed, yet its event ingest
// queue dropped 89,395 events, the event search found 221,650 of the 311,044 events sent, the
// load generator fell behind in two steps and 240 DSNs received changes twice.
const recordedRun = "recorded-storm-restart.json"

func TestRecordedRunShowsAnomaliesFirst(t *testing.T) {
	r := loadFixture(t, recordedRun)
	require.Equal(t, ResultPass, r.Result, "a passing run")

	var md bytes.Buffer
	require.NoError(t, RenderSummary(&md, r))
	summary := md.String()
	anomalies := strings.Index(summary, "Anomalies: 5")
	slos := strings.Index(summary, "**SLOs:**")
	require.GreaterOrEqual(t, anomalies, 0, summary)
	assert.Less(t, anomalies, slos, "anomalies come before the verdicts")
	for _, want := range []string{
		"the control plane counted 89,395 dropped: dsnscale\\_queue\\_dropped\\_total{queue=\"events\",reason=\"full\"}",
		"telemetry events: 221,650 found again of 311,044 sent (89,394 not found by the end of the run)",
		"245 watch duplicates on 240 DSNs",
		"step storm: load generator limited: 822 of 2246 iterations (36.6%) started more than 10ms late",
	} {
		assert.Contains(t, summary[anomalies:slos], want)
	}
	golden(t, "recorded-summary.md", md.Bytes())

	var html bytes.Buffer
	require.NoError(t, RenderHTML(&html, r))
	page := html.String()
	top, verdicts := strings.Index(page, `<h2 id="anomalies">`), strings.Index(page, `<h2 id="slos">`)
	require.GreaterOrEqual(t, top, 0)
	assert.Less(t, top, verdicts)
	assert.Contains(t, page[top:verdicts], "the control plane counted 89,395 dropped")
	assert.Contains(t, page[top:verdicts], `<td class="num">89,395</td>`)
	assert.Contains(t, page[top:verdicts], `<td class="num">89,394 of 311,044</td>`)
	assert.Contains(t, page, `baseline:setup <span class="dim">(setup)</span>`, "the load's setup is a step of the report")
	assert.Contains(t, page, "generator limited: 822 of 2246 iterations", "every measurement note is shown")

	lines := AnomalyLines(r)
	require.Len(t, lines, 5)
	assert.Equal(t, `dropped: the control plane counted 89,395 dropped: dsnscale_queue_dropped_total{queue="events",reason="full"}`, lines[2])
}

func TestAnomaliesIncludeFailedStepsAndFaults(t *testing.T) {
	r := loadFixture(t, "base.json")
	r.Steps[1].Error = "until converged: not reached within 2m0s"
	r.Faults[0].Error = "inject: 3 DSNs did not answer"
	as := r.AllAnomalies()
	require.Len(t, as, 2)
	assert.Equal(t, AnomalyStepFailed, as[0].Kind)
	assert.Equal(t, "step storm: until converged: not reached within 2m0s", as[0].Summary)
	assert.Equal(t, AnomalyFaultFailed, as[1].Kind)

	var md bytes.Buffer
	require.NoError(t, RenderSummary(&md, loadFixture(t, "base.json")))
	assert.Contains(t, md.String(), "**Anomalies:** none", "a run without trouble says so")
}
