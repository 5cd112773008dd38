package distrib

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/dsnscale/dsnscale/internal/benchfig"
)

// BenchmarkPropagation runs the registered cp_propagation_inprocess benchmark once per iteration
// (go test -run XXX -bench Propagation -benchtime 1x ./controlplane/distrib/).
func BenchmarkPropagation(b *testing.B) {
	for i := 0; i < b.N; i++ {
		logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
		figs, err := runPropagationBench(context.Background(), benchfig.Env{WorkDir: b.TempDir(), Logf: logf})
		if err != nil {
			b.Fatal(err)
		}
		for k, v := range figs {
			b.ReportMetric(v, k)
		}
	}
}
