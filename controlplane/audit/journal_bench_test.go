package audit

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/dsnscale/dsnscale/internal/procstat"
)

// BenchmarkJournalAppend appends records from as many concurrent callers as the API benchmark's
// virtual users, and reports the process CPU per record (the stream's server, the publishes,
// the acknowledgements and the indexing into a sink that keeps them) and the stream messages a
// record costs.
func BenchmarkJournalAppend(b *testing.B) {
	for _, callers := range []int{8, 32} {
		b.Run(fmt.Sprint("callers=", callers), func(b *testing.B) {
			js := newJS(b)
			sink := &memSink{}
			ctx := context.Background()
			j, err := OpenJournal(ctx, JournalConfig{JS: js, Sink: sink, IndexWait: 50 * time.Millisecond})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = j.Close(ctx) }()
			rec := Record{User: "admin", Source: "127.0.0.1", Method: "GET", Path: "/api/v1/tenants/t1/networks/net-1",
				Verb: "get", Kind: "network", Tenant: "t1", Name: "net-1", Status: 200, Verdict: VerdictAllowed, Binding: "admin", DurationMs: 0.2}
			before, err := procstat.Read(os.Getpid())
			if err != nil {
				b.Fatal(err)
			}
			b.SetParallelism(max(1, callers/runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := j.Append(ctx, rec); err != nil {
						b.Error(err)
						return
					}
				}
			})
			for j.Stats().Written < j.Stats().Recorded {
				time.Sleep(10 * time.Millisecond)
			}
			b.StopTimer()
			after, err := procstat.Read(os.Getpid())
			if err != nil {
				b.Fatal(err)
			}
			st, err := js.Stream(ctx, DefaultJournalStream)
			if err != nil {
				b.Fatal(err)
			}
			info, err := st.Info(ctx)
			if err != nil {
				b.Fatal(err)
			}
			n := float64(j.Stats().Recorded)
			b.ReportMetric((after.CPUSeconds-before.CPUSeconds)*1e6/n, "cpu-us/record")
			b.ReportMetric(float64(info.State.Msgs)/n, "msgs/record")
		})
	}
}
