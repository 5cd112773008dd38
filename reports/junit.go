package reports

import (
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
)

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr,omitempty"`
	Suites   []JUnitSuite `xml:"testsuite"`
}

// JUnitSuite is the one testsuite of a junit.xml. Its counts are filled in by WriteJUnit
// from its cases.
type JUnitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Hostname   string          `xml:"hostname,attr"`
	Properties []JUnitProperty `xml:"properties>property"`
	Cases      []JUnitCase     `xml:"testcase"`
}

// JUnitProperty is one name=value property of a testsuite.
type JUnitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

// JUnitCase is one testcase; at most one of Failure, Error and Skipped is set.
type JUnitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *JUnitProblem `xml:"failure"`
	Error     *JUnitProblem `xml:"error"`
	Skipped   *JUnitProblem `xml:"skipped"`
}

// JUnitProblem is the failure, error or skip of a testcase.
type JUnitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes a junit.xml document called name holding suite. The suite's tests,
// failures, errors and skipped counts are taken from its cases, so that they cannot
// disagree with them; the document carries the suite's time.
func WriteJUnit(w io.Writer, name string, suite JUnitSuite) error {
	suite.Tests, suite.Failures, suite.Errors, suite.Skipped = len(suite.Cases), 0, 0, 0
	for _, c := range suite.Cases {
		switch {
		case c.Failure != nil:
			suite.Failures++
		case c.Error != nil:
			suite.Errors++
		case c.Skipped != nil:
			suite.Skipped++
		}
	}
	doc := junitSuites{Name: name, Tests: suite.Tests, Failures: suite.Failures, Errors: suite.Errors, Time: suite.Time, Suites: []JUnitSuite{suite}}
	data, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	_, err = io.WriteString(w, "\n")
	return err
}

// RenderJUnit writes junit.xml: one testsuite for the run, one testcase per SLO, a failure
// (observed against threshold) for each SLO that failed. A run that failed or was aborted for
// a reason outside its SLOs gets one more testcase, "run", carrying that reason, so that CI
// shows it red.
func RenderJUnit(w io.Writer, r *Run) error {
	secs := strconv.FormatFloat(r.Duration().Seconds(), 'f', 3, 64)
	suite := JUnitSuite{
		Name:      r.Scenario.Name,
		Time:      secs,
		Timestamp: r.Start.UTC().Format("2006-01-02T15:04:05"),
		Hostname:  r.Environment.Hostname,
	}
	suite.Properties = append(suite.Properties,
		JUnitProperty{"run.id", r.ID},
		JUnitProperty{"run.result", string(r.Result)},
		JUnitProperty{"git.commit", r.Environment.GitCommit},
		JUnitProperty{"go.version", r.Environment.GoVersion},
		JUnitProperty{"cpus", strconv.Itoa(r.Environment.NumCPU)})
	for _, kv := range sortedPairs(r.Params) {
		suite.Properties = append(suite.Properties, JUnitProperty{"param." + kv.Key, kv.Value})
	}
	class := "dsnscale." + r.Scenario.Name
	failedSLOs := 0
	for _, row := range sloRows(r) {
		c := JUnitCase{Name: row.Name, Classname: class, Time: "0"}
		if !row.Pass {
			failedSLOs++
			msg := fmt.Sprintf("%s: observed %s, want %s", row.Measurement, row.Observed, row.Condition)
			c.Failure = &JUnitProblem{Message: msg, Type: "SLOViolation",
				Text: fmt.Sprintf("SLO %s failed.\nmeasurement: %s\nobserved: %s\nthreshold: %s", row.Name, row.Measurement, row.Observed, row.Condition)}
		}
		suite.Cases = append(suite.Cases, c)
	}
	// A fault that did not keep to its plan is a failure of its own, so that CI names it.
	for i, f := range r.Faults {
		if f.Error == "" {
			continue
		}
		c := JUnitCase{Name: fmt.Sprintf("fault %d %s", i+1, f.Kind), Classname: class, Time: "0"}
		msg := f.Kind + " on " + f.Target + ": " + f.Error
		if f.Optional {
			c.Skipped = &JUnitProblem{Message: "optional fault failed: " + msg}
		} else {
			c.Failure = &JUnitProblem{Message: msg, Type: "FaultFailed", Text: "step " + f.Step + ": " + msg}
		}
		suite.Cases = append(suite.Cases, c)
	}
	if r.Result == ResultAborted || (r.Result == ResultFail && failedSLOs == 0) {
		reason := r.Error
		for _, s := range r.Steps {
			if reason == "" && s.Error != "" {
				reason = "step " + s.Name + ": " + s.Error
			}
		}
		c := JUnitCase{Name: "run", Classname: class, Time: secs}
		if r.Result == ResultAborted {
			c.Error = &JUnitProblem{Message: reason, Type: "RunAborted", Text: reason}
		} else {
			c.Failure = &JUnitProblem{Message: reason, Type: "RunFailed", Text: reason}
		}
		suite.Cases = append(suite.Cases, c)
	}
	return WriteJUnit(w, "dsnscale", suite)
}
