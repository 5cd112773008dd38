package reports

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// RenderCompareJUnit writes the comparison's junit.xml: one testsuite, one testcase per gated
// figure. A regression is a failure carrying its evidence; a figure that could not be judged
// (missing on a side, too few runs, too noisy for the runs) is skipped with the reason; the
// rest pass.
func RenderCompareJUnit(w io.Writer, c Comparison) error {
	suite := junitSuite{Name: "compare " + c.Scenario, Time: "0"}
	suite.Properties = append(suite.Properties,
		junitProperty{"base.source", c.Base.Source},
		junitProperty{"base.runs", fmt.Sprint(len(c.Base.Runs))},
		junitProperty{"base.commits", strings.Join(c.Base.Commits, " ")},
		junitProperty{"head.source", c.Head.Source},
		junitProperty{"head.runs", fmt.Sprint(len(c.Head.Runs))},
		junitProperty{"head.commits", strings.Join(c.Head.Commits, " ")},
		junitProperty{"alpha", fmt.Sprint(c.Options.Alpha)})
	for _, f := range c.Figures {
		if !f.Gated {
			continue
		}
		tc := junitCase{Name: displayName(f), Classname: "dsnscale.compare." + c.Scenario + "." + string(f.Kind), Time: "0"}
		evidence := fmt.Sprintf("figure: %s\nbase: %s (values %s)\nhead: %s (values %s)\nchange: %s\np: %s\nwhy: %s",
			f.Name, formatSide(f, f.Base), valueList(f, f.Base), formatSide(f, f.Head), valueList(f, f.Head), formatChange(f), pText(f), f.Why)
		switch {
		case f.Noisy, f.Verdict == Missing, f.Verdict == Inconclusive:
			tc.Skipped = &junitProblem{Message: f.Why, Text: evidence}
			suite.Skipped++
		case f.Verdict == Regressed:
			tc.Failure = &junitProblem{Message: f.Why, Type: "Regression", Text: evidence}
			suite.Failures++
		}
		suite.Cases = append(suite.Cases, tc)
	}
	suite.Tests = len(suite.Cases)
	doc := junitSuites{Name: "dsnscale compare", Tests: suite.Tests, Failures: suite.Failures, Time: "0", Suites: []junitSuite{suite}}
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

func pText(f FigureComparison) string {
	if f.P == nil {
		return "—"
	}
	return formatP(*f.P)
}

func valueList(f FigureComparison, s Side) string {
	parts := make([]string, len(s.Values))
	for i, v := range s.Values {
		parts[i] = figureValue(Figure{Value: v, Unit: f.Unit})
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
