package reports

import (
	"fmt"
	"io"
	"strings"
)

// RenderCompareJUnit writes the comparison's junit.xml: one testsuite, one testcase per gated
// figure. A regression is a failure carrying its evidence; a figure that could not be judged
// (missing on a side, too few runs, too noisy for the runs) is skipped with the reason; the
// rest pass.
func RenderCompareJUnit(w io.Writer, c Comparison) error {
	suite := JUnitSuite{Name: "compare " + c.Scenario, Time: "0"}
	suite.Properties = append(suite.Properties,
		JUnitProperty{"base.source", c.Base.Source},
		JUnitProperty{"base.runs", fmt.Sprint(len(c.Base.Runs))},
		JUnitProperty{"base.commits", strings.Join(c.Base.Commits, " ")},
		JUnitProperty{"head.source", c.Head.Source},
		JUnitProperty{"head.runs", fmt.Sprint(len(c.Head.Runs))},
		JUnitProperty{"head.commits", strings.Join(c.Head.Commits, " ")},
		JUnitProperty{"alpha", fmt.Sprint(c.Options.Alpha)})
	for _, f := range c.Figures {
		if !f.Gated {
			continue
		}
		tc := JUnitCase{Name: displayName(f), Classname: "dsnscale.compare." + c.Scenario + "." + string(f.Kind), Time: "0"}
		evidence := fmt.Sprintf("figure: %s\nbase: %s (values %s)\nhead: %s (values %s)\nchange: %s\np: %s\nwhy: %s",
			f.Name, formatSide(f, f.Base), valueList(f, f.Base), formatSide(f, f.Head), valueList(f, f.Head), formatChange(f), pText(f), f.Why)
		switch {
		case f.Noisy, f.Verdict == Missing, f.Verdict == Inconclusive:
			tc.Skipped = &JUnitProblem{Message: f.Why, Text: evidence}
		case f.Verdict == Regressed:
			tc.Failure = &JUnitProblem{Message: f.Why, Type: "Regression", Text: evidence}
		}
		suite.Cases = append(suite.Cases, tc)
	}
	return WriteJUnit(w, "dsnscale compare", suite)
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
