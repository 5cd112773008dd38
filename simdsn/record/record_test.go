package record

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEncodeCollect(t *testing.T) {
	now := time.Unix(1000, 0)
	c := NewCollector(func() time.Time { return now })
	c.Expect(map[string]string{"d1": "u1", "d2": "u1"})
	enc := NewEncoder(c.Writer())
	at := func(s int) int64 { return time.Unix(int64(s), 0).UnixNano() }
	recs := []Record{
		{At: at(10), Type: TypeState, DSN: "d1", State: "booting", Stage: "boot"},
		{At: at(12), Type: TypeState, DSN: "d1", State: "admitting", Stage: "connect"},
		{At: at(13), Type: TypeState, DSN: "d1", State: "syncing", Stage: "fetch"},
		{At: at(15), Type: TypeApplied, DSN: "d1", Revision: 7},
		{At: at(15), Type: TypeState, DSN: "d1", State: "serving", Stage: "serve"},
		{At: at(20), Type: TypeWatch, DSN: "d1", Watch: WatchDuplicate, Revision: 7, Prev: 7},
		{At: at(21), Type: TypeWatch, DSN: "d1", Watch: WatchGap, Revision: 9, Prev: 7},
		{At: at(30), Type: TypeFault, DSN: "d1", State: "start", Detail: "crash"},
		{At: at(30), Type: TypeState, DSN: "d1", State: "crashed", Stage: "crashed"},
		{At: at(31), Type: TypeUnit, Unit: "u1", State: "up"},
	}
	for _, r := range recs {
		require.NoError(t, enc.Emit(r))
	}
	_, _ = c.Writer().Write([]byte("{not json}\n"))

	rep, ok := c.DSN("d1")
	require.True(t, ok)
	assert.Equal(t, "crashed", rep.State)
	assert.Equal(t, "u1", rep.Unit)
	assert.Equal(t, uint64(7), rep.AppliedRevision)
	assert.Equal(t, time.Unix(15, 0), rep.AppliedAt)
	assert.Len(t, rep.Transitions, 5)
	assert.Equal(t, Transition{At: time.Unix(10, 0), From: "off", To: "booting", Stage: "boot"}, rep.Transitions[0])
	// admitting at 12 and syncing until 15 with nothing applied: 3 s served with no config.
	assert.Equal(t, 3*time.Second, rep.NoConfigServing)
	assert.Equal(t, 1, rep.Watch.Gaps)
	assert.Equal(t, 1, rep.Watch.Duplicates)
	assert.Equal(t, map[string]int{"crash": 1}, rep.Faults)

	s := c.Summary()
	assert.Equal(t, 2, s.Total)
	assert.Equal(t, 1, s.Count("crashed"))
	assert.Equal(t, 1, s.Count("off"))
	assert.Equal(t, 1, s.AtOrPast(7))
	assert.Equal(t, int64(1), s.Rejected)
	assert.Equal(t, "up", c.Units()["u1"].Status)

	// An open no-config interval counts up to now.
	require.NoError(t, enc.Emit(Record{At: at(100), Type: TypeApplied, DSN: "d2", Revision: 0}))
	require.NoError(t, enc.Emit(Record{At: at(100), Type: TypeState, DSN: "d2", State: "admitting"}))
	rep, _ = c.DSN("d2")
	assert.Equal(t, 900*time.Second, rep.NoConfigServing)
}

func TestWaitForAndSubscribe(t *testing.T) {
	c := NewCollector(nil)
	ch, cancel := c.Subscribe(10)
	defer cancel()
	done := make(chan error)
	go func() {
		ctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
		defer stop()
		done <- c.WaitFor(ctx, func(s Summary) bool { return s.Count("serving") == 1 })
	}()
	c.Add(Record{At: 1, Type: TypeState, DSN: "x", State: "serving"})
	require.NoError(t, <-done)
	r := <-ch
	assert.Equal(t, "x", r.DSN)
}

func TestDecodeRejects(t *testing.T) {
	for _, line := range []string{
		`{"type":"nope","dsn":"a"}`,
		`{"type":"state","dsn":"a b","state":"off"}`,
		`{"type":"state","dsn":"a"}`,
		`{"type":"watch","dsn":"a","watch":"weird"}`,
		`{"type":"unit"}`,
	} {
		_, err := Decode([]byte(line))
		assert.ErrorIs(t, err, ErrInvalid, line)
	}
	var got []Record
	require.NoError(t, ReadAll(strings.NewReader(`{"at":1,"type":"unit","unit":"u","state":"up"}`+"\n\n"), func(r Record) { got = append(got, r) }))
	assert.Len(t, got, 1)
}

// A unit's CPU adds up over its processes (a restarted unit counts from 0 again), and its peak
// memory is the highest it reported.
func TestUnitUsageAddsUpRestarts(t *testing.T) {
	c := NewCollector(nil)
	for _, r := range []Record{
		{At: 1, Type: TypeUsage, Unit: "r1", Host: "h1", CPU: 1.5, RSS: 100},
		{At: 2, Type: TypeUsage, Unit: "r1", Host: "h1", CPU: 2.0, RSS: 300},
		{At: 3, Type: TypeUsage, Unit: "r1", Host: "h2", CPU: 0.25, RSS: 50}, // a new process, elsewhere
		{At: 4, Type: TypeUsage, Unit: "r2", Host: "h1", CPU: 0.5, RSS: 10},
	} {
		require.NoError(t, r.Validate())
		c.Add(r)
	}
	u := c.Usage()
	require.Len(t, u, 2)
	assert.InDelta(t, 2.25, u["r1"].CPUSeconds, 1e-9)
	assert.Equal(t, int64(300), u["r1"].PeakRSSBytes)
	assert.Equal(t, int64(50), u["r1"].RSSBytes)
	assert.Equal(t, "h2", u["r1"].Host)
	assert.InDelta(t, 0.5, u["r2"].CPUSeconds, 1e-9)
	bad := Record{At: 5, Type: TypeUsage, Unit: "r1", CPU: -1}
	assert.ErrorIs(t, bad.Validate(), ErrInvalid)
}
