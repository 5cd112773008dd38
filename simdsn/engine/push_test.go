package engine

import (
	"encoding/json"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/wire"
	"github.com/dsnscale/dsnscale/simdsn/record"
)

// serving starts one DSN and brings it to revision 5 through a snapshot.
func serving(t *testing.T) *sim {
	s := newSim(t, 1, "")
	snap := snapshotBytes(t, 5, policyObj(t, "web", 5, "443"))
	s.fb.hello = func(h wire.Hello) (*wire.Admission, time.Duration) {
		if h.AppliedRevision > 0 {
			a := admitted(h.AppliedRevision)
			a.UpToDate = true
			return a, 5 * time.Millisecond
		}
		return snapAdmission(5), 5 * time.Millisecond
	}
	s.fb.fetch = func(string, string) ([]byte, error, time.Duration) { return snap, nil, 10 * time.Millisecond }
	s.do(Command{Op: OpStart})
	time.Sleep(10 * time.Second)
	synctest.Wait()
	require.Equal(t, "serving", s.dsn("d0").State)
	return s
}

func change(t *testing.T, rev uint64, ports ...string) wire.Change {
	o := policyObj(t, "web", rev, ports...)
	return wire.Change{Op: wire.OpPut, Kind: model.KindPolicy, Tenant: "t1", Name: "web", Revision: rev, Object: &o}
}

func TestPushesDuplicatesAndGaps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := serving(t)
		defer s.stop()
		s.fb.push(0, wire.Push{Type: wire.PushDelta, From: 5, To: 7, Changes: []wire.Change{change(t, 7, "443", "5432")}})
		time.Sleep(time.Second)
		synctest.Wait()
		r := s.dsn("d0")
		assert.Equal(t, uint64(7), r.AppliedRevision)
		as := acks(t, s.fb)
		assert.Equal(t, uint64(7), as[len(as)-1].Revision)

		// Now everything is allowed (once the batch that carries the last denials is out).
		time.Sleep(11 * time.Second)
		synctest.Wait()
		before := lastCounts(t, s.fb)
		time.Sleep(30 * time.Second)
		synctest.Wait()
		after := lastCounts(t, s.fb)
		assert.Equal(t, before[1], after[1], "nothing more is denied")
		assert.Greater(t, after[0], before[0])

		s.fb.push(0, wire.Push{Type: wire.PushCurrent, From: 6, To: 7})
		s.fb.push(0, wire.Push{Type: wire.PushCurrent, From: 7, To: 8})
		time.Sleep(time.Second)
		synctest.Wait()
		r = s.dsn("d0")
		assert.Equal(t, uint64(8), r.AppliedRevision)
		assert.Equal(t, 1, r.Watch.Duplicates)

		// A push that starts past what the DSN has: a gap, and a new Hello with revision 8.
		s.fb.push(0, wire.Push{Type: wire.PushDelta, From: 10, To: 11, Changes: []wire.Change{change(t, 11)}})
		time.Sleep(time.Second)
		synctest.Wait()
		r = s.dsn("d0")
		assert.Equal(t, 1, r.Watch.Gaps)
		assert.Equal(t, record.WatchEvent{At: r.Watch.Events[1].At, Kind: record.WatchGap, Revision: 10, Applied: 8}, r.Watch.Events[1])
		hellos := s.fb.messages(".hello")
		var h wire.Hello
		require.NoError(t, json.Unmarshal(hellos[len(hellos)-1].data, &h))
		assert.Equal(t, uint64(8), h.AppliedRevision)
		assert.Equal(t, "serving", r.State)

		// A control plane that comes back at a lower revision is a regression.
		s.fb.hello = func(h wire.Hello) (*wire.Admission, time.Duration) {
			a := snapAdmission(2)
			return a, time.Millisecond
		}
		s.fb.fetch = func(string, string) ([]byte, error, time.Duration) {
			return snapshotBytes(t, 2, policyObj(t, "web", 2, "443")), nil, time.Millisecond
		}
		s.fb.push(0, wire.Push{Type: wire.PushRehello})
		time.Sleep(time.Second)
		synctest.Wait()
		r = s.dsn("d0")
		assert.Equal(t, 2, r.Watch.Regressions)
		assert.Equal(t, uint64(2), r.AppliedRevision)
	})
}

func lastCounts(t *testing.T, fb *fakeBus) [2]float64 {
	tel := fb.messages(".telemetry")
	var b wire.TelemetryBatch
	require.NoError(t, json.Unmarshal(tel[len(tel)-1].data, &b))
	v := samples(b)
	return [2]float64{v["dsn_flows_allowed_total"], v["dsn_flows_denied_total"]}
}

func TestAckMisbehaviours(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := serving(t)
		defer s.stop()
		s.do(Command{Op: OpInject, Injection: "w", Misbehaviour: "ack-wrong-revision", Params: map[string]string{"offset": "-3"}})
		s.fb.push(0, wire.Push{Type: wire.PushCurrent, From: 5, To: 6})
		time.Sleep(time.Second)
		synctest.Wait()
		as := acks(t, s.fb)
		assert.Equal(t, uint64(3), as[len(as)-1].Revision)
		assert.Equal(t, uint64(6), s.dsn("d0").AppliedRevision)

		s.do(Command{Op: OpRecover, Injection: "w"})
		s.do(Command{Op: OpInject, Injection: "d", Misbehaviour: "drop-acks"})
		n := len(acks(t, s.fb))
		s.fb.push(0, wire.Push{Type: wire.PushCurrent, From: 6, To: 7})
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Len(t, acks(t, s.fb), n)
		assert.Equal(t, uint64(7), s.dsn("d0").AppliedRevision)

		s.do(Command{Op: OpRecover, Injection: "d"})
		s.do(Command{Op: OpInject, Injection: "e", Misbehaviour: "apply-errors"})
		s.fb.push(0, wire.Push{Type: wire.PushCurrent, From: 7, To: 8})
		time.Sleep(time.Second)
		synctest.Wait()
		as = acks(t, s.fb)
		assert.Equal(t, wire.Ack{DSN: "d0", SessionID: "s-1", Revision: 7, Error: "apply failed"}, as[len(as)-1])
		s.do(Command{Op: OpRecover, Injection: "e"})

		s.do(Command{Op: OpInject, Injection: "slow", Misbehaviour: "slow-apply", Params: map[string]string{"delay": "4s"}})
		s.fb.push(0, wire.Push{Type: wire.PushCurrent, From: 7, To: 9})
		time.Sleep(3 * time.Second)
		synctest.Wait()
		assert.Equal(t, uint64(7), s.dsn("d0").AppliedRevision)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		assert.Equal(t, uint64(9), s.dsn("d0").AppliedRevision)
		assert.Equal(t, map[string]int{"ack-wrong-revision": 1, "drop-acks": 1, "apply-errors": 1, "slow-apply": 1}, s.dsn("d0").Faults)
	})
}

func TestCrashHangAndClockFaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := serving(t)
		defer s.stop()
		s.do(Command{Op: OpInject, Injection: "c", Misbehaviour: "crash"})
		time.Sleep(time.Second)
		synctest.Wait()
		r := s.dsn("d0")
		assert.Equal(t, "crashed", r.State)
		assert.Equal(t, uint64(0), r.AppliedRevision, "a crashed DSN holds nothing in memory")
		n := len(s.fb.messages(".heartbeat"))
		time.Sleep(time.Minute)
		synctest.Wait()
		assert.Len(t, s.fb.messages(".heartbeat"), n, "no heartbeats while crashed")
		s.do(Command{Op: OpRecover, Injection: "c"})
		time.Sleep(30 * time.Second)
		synctest.Wait()
		r = s.dsn("d0")
		assert.Equal(t, "serving", r.State)
		assert.Equal(t, uint64(5), r.AppliedRevision)

		s.do(Command{Op: OpInject, Injection: "h", Misbehaviour: "hang"})
		time.Sleep(time.Second)
		synctest.Wait()
		n = len(s.fb.messages(""))
		s.fb.push(0, wire.Push{Type: wire.PushCurrent, From: 5, To: 6})
		time.Sleep(time.Minute)
		synctest.Wait()
		r = s.dsn("d0")
		assert.Equal(t, "hung", r.State)
		assert.Equal(t, uint64(5), r.AppliedRevision)
		assert.Len(t, s.fb.messages(""), n, "a hung DSN sends nothing")
		s.do(Command{Op: OpRecover, Injection: "h"})
		time.Sleep(10 * time.Second)
		synctest.Wait()
		assert.Equal(t, "serving", s.dsn("d0").State)

		s.do(Command{Op: OpInject, Injection: "k", Misbehaviour: "clock-skew", Params: map[string]string{"skew": "-1h"}})
		s.do(Command{Op: OpInject, Injection: "t", Misbehaviour: "corrupt-telemetry", Params: map[string]string{"mode": "wrong-dsn"}})
		time.Sleep(21 * time.Second)
		synctest.Wait()
		hbs := s.fb.messages(".heartbeat")
		var hb wire.Heartbeat
		require.NoError(t, json.Unmarshal(hbs[len(hbs)-1].data, &hb))
		assert.Equal(t, hbs[len(hbs)-1].at.Add(-time.Hour).UnixNano(), hb.SentUnixNano)
		tel := s.fb.messages(".telemetry")
		var b wire.TelemetryBatch
		require.NoError(t, json.Unmarshal(tel[len(tel)-1].data, &b))
		assert.Equal(t, "d0-x", b.DSN)
		assert.Equal(t, tel[len(tel)-1].at.Add(-time.Hour).UnixNano(), b.TimeUnixNano)

		s.do(Command{Op: OpRecover, Injection: "t"})
		s.do(Command{Op: OpInject, Injection: "g", Misbehaviour: "corrupt-telemetry"})
		time.Sleep(11 * time.Second)
		synctest.Wait()
		tel = s.fb.messages(".telemetry")
		assert.Error(t, json.Unmarshal(tel[len(tel)-1].data, &b), "garbage is not JSON")

		s.do(Command{Op: OpInject, Injection: "temp", Misbehaviour: "temperature-rise", Params: map[string]string{"risePerMinute": "10"}})
		s.do(Command{Op: OpRecover, Injection: "g"})
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		tel = s.fb.messages(".telemetry")
		require.NoError(t, json.Unmarshal(tel[len(tel)-1].data, &b))
		assert.Greater(t, samples(b)["dsn_temperature_celsius"], 120.0)
	})
}

func TestFlapping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := serving(t)
		defer s.stop()
		s.do(Command{Op: OpInject, Injection: "f", Misbehaviour: "flapping", Params: map[string]string{"period": "10s"}})
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		r := s.dsn("d0")
		flaps := 0
		for _, tr := range r.Transitions {
			if tr.Stage == "flap-down" {
				flaps++
			}
		}
		assert.GreaterOrEqual(t, flaps, 5)
		assert.LessOrEqual(t, flaps, 12)
		assert.Equal(t, uint64(5), r.AppliedRevision)
		s.do(Command{Op: OpRecover, Injection: "f"})
		time.Sleep(10 * time.Second)
		synctest.Wait()
		r = s.dsn("d0")
		n := len(r.Transitions)
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		assert.Len(t, s.dsn("d0").Transitions, n, "no more flaps after recovery")
	})
}

func TestCommandsAreCheckedFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSim(t, 2, "")
		defer s.stop()
		assert.ErrorIs(t, s.eng.Do(Command{Op: OpStart, DSNs: []string{"nope"}}), ErrUnknownDSN)
		assert.ErrorIs(t, s.eng.Do(Command{Op: "dance"}), ErrCommand)
		assert.ErrorIs(t, s.eng.Do(Command{Op: OpInject, Injection: "x", Misbehaviour: "nope"}), ErrCommand)
		err := s.eng.Do(Command{Op: OpInject, Injection: "x", Misbehaviour: "slow-apply", Params: map[string]string{"delay": "-4s"}})
		assert.ErrorContains(t, err, "apply.delay: base and jitter must not be negative")
		assert.ErrorIs(t, s.eng.Do(Command{Op: OpRecover, Injection: "x"}), ErrCommand)
		require.NoError(t, s.eng.Do(Command{Op: OpInject, Injection: "x", Misbehaviour: "slow-apply"}))
		assert.ErrorIs(t, s.eng.Do(Command{Op: OpInject, Injection: "x", Misbehaviour: "slow-apply"}), ErrCommand)
		synctest.Wait()
		assert.Equal(t, 0, len(s.fb.messages("")))
	})
}
