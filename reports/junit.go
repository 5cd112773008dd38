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
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Hostname   string          `xml:"hostname,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure"`
	Error     *junitProblem `xml:"error"`
	Skipped   *junitProblem `xml:"skipped"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// RenderJUnit writes junit.xml: one testsuite for the run, one testcase per SLO, a failure
// (observed against threshold) for each SLO that failed. A run that failed or was aborted for
// a reason outside its SLOs gets one more testcase, "run", carrying that reason, so that CI
// shows it red.
func RenderJUnit(w io.Writer, r *Run) error {
	secs := strconv.FormatFloat(r.Duration().Seconds(), 'f', 3, 64)
	suite := junitSuite{
		Name:      r.Scenario.Name,
		Time:      secs,
		Timestamp: r.Start.UTC().Format("2006-01-02T15:04:05"),
		Hostname:  r.Environment.Hostname,
	}
	suite.Properties = append(suite.Properties,
		junitProperty{"run.id", r.ID},
		junitProperty{"run.result", string(r.Result)},
		junitProperty{"git.commit", r.Environment.GitCommit},
		junitProperty{"go.version", r.Environment.GoVersion},
		junitProperty{"cpus", strconv.Itoa(r.Environment.NumCPU)})
	for _, kv := range sortedPairs(r.Params) {
		suite.Properties = append(suite.Properties, junitProperty{"param." + kv.Key, kv.Value})
	}
	class := "dsnscale." + r.Scenario.Name
	failedSLOs := 0
	for _, row := range sloRows(r) {
		c := junitCase{Name: row.Name, Classname: class, Time: "0"}
		if !row.Pass {
			failedSLOs++
			msg := fmt.Sprintf("%s: observed %s, want %s", row.Measurement, row.Observed, row.Condition)
			c.Failure = &junitProblem{Message: msg, Type: "SLOViolation",
				Text: fmt.Sprintf("SLO %s failed.\nmeasurement: %s\nobserved: %s\nthreshold: %s", row.Name, row.Measurement, row.Observed, row.Condition)}
		}
		suite.Cases = append(suite.Cases, c)
	}
	suite.Failures = failedSLOs
	// A fault that did not keep to its plan is a failure of its own, so that CI names it.
	for i, f := range r.Faults {
		if f.Error == "" {
			continue
		}
		c := junitCase{Name: fmt.Sprintf("fault %d %s", i+1, f.Kind), Classname: class, Time: "0"}
		msg := f.Kind + " on " + f.Target + ": " + f.Error
		if f.Optional {
			c.Skipped = &junitProblem{Message: "optional fault failed: " + msg}
			suite.Skipped++
		} else {
			c.Failure = &junitProblem{Message: msg, Type: "FaultFailed", Text: "step " + f.Step + ": " + msg}
			suite.Failures++
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
		c := junitCase{Name: "run", Classname: class, Time: secs}
		if r.Result == ResultAborted {
			c.Error = &junitProblem{Message: reason, Type: "RunAborted", Text: reason}
			suite.Errors++
		} else {
			c.Failure = &junitProblem{Message: reason, Type: "RunFailed", Text: reason}
			suite.Failures++
		}
		suite.Cases = append(suite.Cases, c)
	}
	suite.Tests = len(suite.Cases)
	doc := junitSuites{Name: "dsnscale", Tests: suite.Tests, Failures: suite.Failures, Errors: suite.Errors, Time: secs, Suites: []junitSuite{suite}}
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
