package measure

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"
)

func init() { mustRegister(ackedWrites{}) }

var (
	figAcked     = Figure{"acked_writes", UnitCount, "writes the API acknowledged (2xx) in the window, by the acked-writes action"}
	figAckedLost = Figure{"acked_writes_lost", UnitCount, "acknowledged writes the API no longer has at the end of the run (read back through any replica that answers)"}
	figFailWrite = Figure{"failover_write_seconds", UnitSeconds, "from the first control-plane kill in the window to the first write acknowledged after it (a replicated control plane's write outage)"}
)

// AckedWrite is a write the API acknowledged: the object's API path and when the answer came.
type AckedWrite struct {
	Path string
	At   time.Time
}

// AckedWrites is the ledger of acknowledged writes a run made to check later that none was
// lost. It is safe for concurrent use.
type AckedWrites struct {
	mu     sync.Mutex
	writes []AckedWrite
	failed int
}

// Add records an acknowledged write.
func (a *AckedWrites) Add(w AckedWrite) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.writes = append(a.writes, w)
}

// Fail counts a write that was not acknowledged (an error or no answer): it may or may not
// have been stored, and is not checked.
func (a *AckedWrites) Fail() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failed++
}

// Writes returns the acknowledged writes and the count of unacknowledged ones.
func (a *AckedWrites) Writes() ([]AckedWrite, int) {
	if a == nil {
		return nil, 0
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]AckedWrite(nil), a.writes...), a.failed
}

// ackedWrites reads back every write the API acknowledged in the window: one it no longer has
// was lost, whatever failed over in between.
type ackedWrites struct{}

func (ackedWrites) Name() string { return "acked-writes" }

func (ackedWrites) Description() string {
	return "writes the API acknowledged (acked-writes action), read back at the end: none may be lost"
}

func (ackedWrites) Figures() []Figure { return []Figure{figAcked, figAckedLost, figFailWrite} }

// FindsAnomalies: a lost acknowledged write is shown whatever the scenario measured.
func (ackedWrites) FindsAnomalies() {}

// A read is retried for a while: the API may be failing over when it is asked.
const (
	readBackTries = 100
	readBackPause = 200 * time.Millisecond
)

func (ackedWrites) Measure(ctx context.Context, in *Input) (Result, error) {
	all, _ := in.Acked.Writes()
	var writes []AckedWrite
	for _, w := range all {
		if !w.At.Before(in.Start) && !w.At.After(in.End) {
			writes = append(writes, w)
		}
	}
	if len(writes) == 0 {
		why := "no write was acknowledged in the window (the step runs no acked-writes action)"
		return Result{Values: []Value{missing(figAcked, "%s", why), missing(figAckedLost, "%s", why), missing(figFailWrite, "%s", why)}}, nil
	}
	failover := failoverWrite(in, writes)
	if in.API == nil {
		why := "no API to read the writes back from"
		return Result{Values: []Value{value(figAcked, float64(len(writes))), missing(figAckedLost, "%s", why), failover}}, nil
	}
	var lost []string
	for _, w := range writes {
		found, err := readBackFound(ctx, in, w.Path)
		if err != nil {
			return Result{}, err
		}
		if !found {
			lost = append(lost, w.Path)
		}
	}
	sort.Strings(lost)
	res := Result{Values: []Value{value(figAcked, float64(len(writes))), value(figAckedLost, float64(len(lost))), failover}, Details: lost}
	if len(lost) > 0 {
		res.Anomalies = append(res.Anomalies, Anomaly{Kind: AnomalyLost,
			Summary: fmt.Sprintf("%s of %s acknowledged by the API not found at the end", countOf(len(lost), "write", "writes"), count(float64(len(writes)))),
			Count:   float64(len(lost)), Of: float64(len(writes)), Examples: limit(lost, maxAnomalyExamples)})
	}
	return res, nil
}

// failoverWrite is the time from the first kill of the control plane (or one of its replicas)
// in the window to the first of writes acknowledged after it: missing when nothing was killed,
// or no write was acknowledged after the kill.
func failoverWrite(in *Input, writes []AckedWrite) Value {
	var kill time.Time
	if in.CP != nil {
		for _, e := range in.CP.Events() {
			if e.Kind == CPKilled && !e.At.Before(in.Start) && !e.At.After(in.End) && (kill.IsZero() || e.At.Before(kill)) {
				kill = e.At
			}
		}
	}
	if kill.IsZero() {
		return missing(figFailWrite, "nothing was killed in the window")
	}
	var first time.Time
	for _, w := range writes {
		if w.At.After(kill) && (first.IsZero() || w.At.Before(first)) {
			first = w.At
		}
	}
	if first.IsZero() {
		return missing(figFailWrite, "no write was acknowledged after the kill at %s", kill.UTC().Format(time.RFC3339Nano))
	}
	return value(figFailWrite, first.Sub(kill).Seconds())
}

// notFoundTries is how many answers of 404 in a row make a write lost: the reads go through a
// load balancer to any replica, and one whose view of the store lags would answer 404 for a
// while.
const notFoundTries = 5

// readBackFound reads path back; it is not found when notFoundTries reads, readBackPause apart,
// all answer 404.
func readBackFound(ctx context.Context, in *Input, path string) (bool, error) {
	for try := 1; ; try++ {
		status, err := readBack(ctx, in, path)
		if err != nil || status == http.StatusOK {
			return status == http.StatusOK, err
		}
		if try == notFoundTries || in.Wait == nil {
			return false, nil
		}
		if err := in.Wait(ctx, readBackPause); err != nil {
			return false, err
		}
	}
}

// readBack GETs path until the API answers 200 or 404, retrying errors and other statuses
// (readBackTries times, readBackPause apart).
func readBack(ctx context.Context, in *Input, path string) (int, error) {
	for try := 1; ; try++ {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		status, _, err := in.API.Get(rctx, path)
		cancel()
		if err == nil && (status == http.StatusOK || status == http.StatusNotFound) {
			return status, nil
		}
		if err == nil {
			err = fmt.Errorf("status %d", status)
		}
		if try == readBackTries || ctx.Err() != nil || in.Wait == nil {
			return 0, fmt.Errorf("read back %s: %w", path, err)
		}
		if err := in.Wait(ctx, readBackPause); err != nil {
			return 0, err
		}
	}
}
