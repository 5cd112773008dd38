package tsdb

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/promutils"
	"github.com/influxdata/influxdb-client-go/v2/api/write"
)

// Influx is an InfluxDB 2.x bucket. A series is stored as measurement <metric name>, one tag
// per label and the float field "value"; it is read back with Flux. Label names the Flux data
// model reserves (starting with "_", or "result", "table", "time") are refused.
type Influx struct {
	target Target
	w      *lineWriter
	closed closeFlag
}

var _ Storage = (*Influx)(nil)

func openInflux(ctx context.Context, t Target, opts Options) (*Influx, error) {
	w := newLineWriter(t, opts, &http.Client{Timeout: opts.Timeout})
	ok, err := w.client.Ping(ctx)
	if err != nil || !ok {
		w.close()
		if err == nil {
			err = fmt.Errorf("GET /ping did not answer 204")
		}
		return nil, unreachable(t, err)
	}
	if _, err := w.client.BucketsAPI().FindBucketByName(ctx, t.Bucket); err != nil {
		w.close()
		return nil, fmt.Errorf("%w: %s: bucket %q not found or token refused: %v", ErrBackend, t, t.Bucket, err)
	}
	return &Influx{target: t, w: w}, nil
}

// Appender starts a write transaction; Commit sends its points.
func (x *Influx) Appender() Appender {
	return &remoteAppender{w: x.w, toPt: influxPoint, closed: x.closed.isClosed}
}

// Close releases the client.
func (x *Influx) Close() error {
	if !x.closed.close() {
		x.w.close()
	}
	return nil
}

var fluxReserved = map[string]bool{"result": true, "table": true, "time": true}

func influxPoint(ls *promutils.Labels, t time.Time, v float64) (*write.Point, error) {
	tags := make(map[string]string, ls.Len()-1)
	for _, l := range ls.GetLabels() {
		if l.Name == MetricNameLabel {
			continue
		}
		if strings.HasPrefix(l.Name, "_") || fluxReserved[l.Name] {
			return nil, fmt.Errorf("%w: label name %q is reserved in InfluxDB's data model", ErrInvalid, l.Name)
		}
		tags[l.Name] = l.Value
	}
	return write.NewPoint(ls.Get(MetricNameLabel), tags, map[string]any{"value": v}, t), nil
}

// Select implements Querier.
func (x *Influx) Select(ctx context.Context, q Query) ([]Series, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	from, to := millis(q.From), millis(q.To)
	start := from
	tail := ""
	if q.Step > 0 {
		// Flux windows are [start, stop); samples have millisecond precision, so the window
		// (t-step, t] is [t-step+1ms, t+1ms), and its _stop, less 1ms, is t.
		start = from.Add(-q.Step + time.Millisecond)
		offset := time.Duration(from.Add(time.Millisecond).UnixMilli()%q.Step.Milliseconds()) * time.Millisecond
		tail = fmt.Sprintf("\n  |> aggregateWindow(every: %dms, offset: %dms, fn: last, createEmpty: false, timeSrc: \"_stop\")",
			q.Step.Milliseconds(), offset.Milliseconds())
	}
	flux := x.flux(q.Matchers, start, to.Add(time.Millisecond)) + tail
	out, err := x.run(ctx, flux, func(s *Series, rt time.Time, v float64) {
		t := rt
		if q.Step > 0 {
			t = rt.Add(-time.Millisecond)
			if t.Sub(from)%q.Step != 0 || t.After(to) {
				return // a window cut short by the range's end
			}
		}
		s.Samples = append(s.Samples, Sample{Time: millis(t), Value: v})
	})
	if err != nil {
		return nil, err
	}
	kept := out[:0]
	for _, s := range out {
		if len(s.Samples) == 0 {
			continue
		}
		sort.SliceStable(s.Samples, func(a, b int) bool { return s.Samples[a].Time.Before(s.Samples[b].Time) })
		kept = append(kept, s)
	}
	return kept, nil
}

// Series implements Querier.
func (x *Influx) Series(ctx context.Context, from, to time.Time, matchers ...Matcher) ([]*promutils.Labels, error) {
	if err := validateMatchers(matchers); err != nil {
		return nil, err
	}
	if to.Before(from) {
		return nil, fmt.Errorf("%w: series %s: to (%v) is before from (%v)", ErrInvalid, selector(matchers), to, from)
	}
	flux := x.flux(matchers, millis(from), millis(to).Add(time.Millisecond)) + "\n  |> last()"
	series, err := x.run(ctx, flux, func(*Series, time.Time, float64) {})
	if err != nil {
		return nil, err
	}
	out := make([]*promutils.Labels, len(series))
	for i, s := range series {
		out[i] = s.Labels
	}
	return out, nil
}

// flux renders the source, range and filter of a query; stop is exclusive.
func (x *Influx) flux(ms []Matcher, start, stop time.Time) string {
	var b strings.Builder
	b.WriteString("import \"regexp\"\n")
	conds := []string{`r._field == "value"`}
	for i, m := range ms {
		col := fluxColumn(m.Name)
		re := fmt.Sprintf("re%d", i)
		if m.Type == MatchRegexp || m.Type == MatchNotRegexp {
			fmt.Fprintf(&b, "%s = regexp.compile(v: %s)\n", re, fluxString("^(?:"+m.Value+")$"))
		}
		// A series without the label has the empty value, as in PromQL.
		var has, test string
		switch m.Type {
		case MatchEqual, MatchNotEqual:
			op := map[MatchType]string{MatchEqual: "==", MatchNotEqual: "!="}[m.Type]
			test = fmt.Sprintf("%s %s %s", col, op, fluxString(m.Value))
		case MatchRegexp:
			test = fmt.Sprintf("%s =~ %s", col, re)
		case MatchNotRegexp:
			test = fmt.Sprintf("%s !~ %s", col, re)
		}
		if m.Name == MetricNameLabel {
			conds = append(conds, test)
			continue
		}
		has = fmt.Sprintf("exists %s", col)
		if m.matchesEmpty() {
			conds = append(conds, fmt.Sprintf("(not %s or %s)", has, test))
		} else {
			conds = append(conds, fmt.Sprintf("(%s and %s)", has, test))
		}
	}
	fmt.Fprintf(&b, "from(bucket: %s)\n  |> range(start: %s, stop: %s)\n  |> filter(fn: (r) => %s)",
		fluxString(x.target.Bucket), start.UTC().Format(time.RFC3339Nano), stop.UTC().Format(time.RFC3339Nano),
		strings.Join(conds, " and "))
	return b.String()
}

// fluxColumns are the columns of a Flux result that are not labels.
var fluxColumns = map[string]bool{
	"_start": true, "_stop": true, "_time": true, "_value": true, "_field": true, "_measurement": true,
	"result": true, "table": true,
}

// run executes flux and groups its records into series, calling add for each record.
func (x *Influx) run(ctx context.Context, flux string, add func(s *Series, t time.Time, v float64)) ([]Series, error) {
	if x.closed.isClosed() {
		return nil, ErrClosed
	}
	res, err := x.w.client.QueryAPI(x.target.Org).Query(ctx, flux)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: flux query: %w", ErrBackend, x.target, err)
	}
	defer res.Close()
	index := map[string]int{}
	var out []Series
	for res.Next() {
		rec := res.Record()
		ls := promutils.NewLabels(8)
		ls.Add(MetricNameLabel, rec.Measurement())
		for k, v := range rec.Values() {
			if fluxColumns[k] || v == nil {
				continue
			}
			if s, ok := v.(string); ok && s != "" {
				ls.Add(k, s)
			}
		}
		ls.Sort()
		key := ls.String()
		i, ok := index[key]
		if !ok {
			i = len(out)
			index[key] = i
			out = append(out, Series{Labels: ls})
		}
		v, ok := rec.Value().(float64)
		if !ok {
			return nil, fmt.Errorf("%w: %s: series %s: value %v is %T, want float", ErrBackend, x.target, key, rec.Value(), rec.Value())
		}
		add(&out[i], rec.Time(), v)
	}
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: reading flux result: %w", ErrBackend, x.target, err)
	}
	sortSeries(out)
	return out, nil
}

// fluxKeywords cannot follow "r." in Flux; such columns are written r["name"].
var fluxKeywords = map[string]bool{
	"and": true, "builtin": true, "else": true, "empty": true, "exists": true, "if": true, "import": true,
	"in": true, "not": true, "option": true, "or": true, "package": true, "return": true, "test": true, "then": true,
}

// fluxColumn renders the row member that holds label name (label names are Flux identifiers).
func fluxColumn(name string) string {
	switch {
	case name == MetricNameLabel:
		return "r._measurement"
	case fluxKeywords[name]:
		return fmt.Sprintf("r[%s]", fluxString(name))
	}
	return "r." + name
}

// fluxString quotes s as a Flux string literal.
func fluxString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`, "${", `\${`)
	return `"` + r.Replace(s) + `"`
}
