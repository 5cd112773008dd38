package engine

import (
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/wire"
	"github.com/dsnscale/dsnscale/simdsn/bus"
	"github.com/dsnscale/dsnscale/simdsn/record"
	"github.com/dsnscale/dsnscale/simdsn/sched"
	"github.com/dsnscale/dsnscale/simdsn/stage"
)

func (e *Engine) hello(d *dsn, s *stage.Compiled, now time.Time) error {
	h := wire.Hello{Protocol: wire.Version, DSN: d.id, Labels: d.g.labels, SoftwareVersion: SoftwareVersion,
		AppliedRevision: d.cur.rev, BootID: d.bootID}
	data, err := json.Marshal(&h)
	if err != nil {
		return err
	}
	if err := e.bus.Request(d.idx, wire.HelloSubject(d.id), data, d.seq); err != nil {
		return err
	}
	e.count(data)
	e.st.hellos.Add(1)
	e.sch.After(s.Timeout, sched.Event{Key: d.idx, Kind: evTimeout, Seq: d.seq})
	return nil
}

func (e *Engine) count(data []byte) {
	e.st.messages.Add(1)
	e.st.bytes.Add(int64(len(data)))
}

func (e *Engine) publish(d *dsn, subject string, data []byte) bool {
	if !d.connected {
		return false
	}
	if err := e.bus.Publish(d.idx, subject, data); err != nil {
		return false
	}
	e.count(data)
	return true
}

// admission handles the answer to a Hello.
func (e *Engine) admission(d *dsn, data []byte, err error, now time.Time) {
	if err != nil {
		if !errors.Is(err, bus.ErrNoResponders) {
			e.errorEvent(d, now, "hello failed: "+err.Error())
			e.admissionProblem(d, now, "hello: "+err.Error())
		} else {
			e.admissionProblem(d, now, "hello: no control plane answers on the bus")
		}
		e.outcome(d, stage.Error, now)
		return
	}
	var adm wire.Admission
	if err := wire.Unmarshal(data, &adm); err != nil {
		e.errorEvent(d, now, "bad admission: "+err.Error())
		e.outcome(d, stage.Error, now)
		return
	}
	switch adm.Status {
	case wire.Retry:
		d.retryAfter = time.Duration(adm.RetryAfterMs) * time.Millisecond
		e.admissionProblem(d, now, record.AdmissionRetry+": "+orUnsaid(adm.Reason))
		e.outcome(d, stage.RetryOutcome, now)
		return
	case wire.Rejected:
		e.admissionProblem(d, now, "the control plane rejected it: "+orUnsaid(adm.Reason))
		e.event(d, now, "admission", "error", "rejected: "+adm.Reason, nil)
		e.outcome(d, stage.RejectedOutcome, now)
		return
	}
	d.session = adm.SessionID
	d.lastAdmission = ""
	d.hb = time.Duration(adm.HeartbeatIntervalMs) * time.Millisecond
	d.attempt = 0
	e.announce(d, adm.Revision, now)
	d.admitRev = adm.Revision
	e.reschedule(d, now)
	e.event(d, now, "admission", "info", "admitted", map[string]string{"revision": u64(adm.Revision), "session": adm.SessionID})
	switch {
	case adm.UpToDate:
		a := d.cur
		if a.objs == nil {
			a.objs = emptySet
		}
		a.rev = max(a.rev, adm.Revision)
		e.commit(d, a, now, "up-to-date")
		e.outcome(d, stage.UpToDate, now)
	case adm.Delta != nil:
		d.delta, d.deltaKey = adm.Delta, pushKey(adm.Delta)
		e.outcome(d, stage.DeltaOutcome, now)
	default:
		d.snapRef = adm.Snapshot
		e.outcome(d, stage.SnapshotOutcome, now)
	}
}

// announce records a revision the control plane says it is at, and notes a regression.
func (e *Engine) announce(d *dsn, rev uint64, now time.Time) {
	if rev < d.maxSeen {
		e.emit(record.Record{At: now.UnixNano(), Type: record.TypeWatch, DSN: d.id, Watch: record.WatchRegression, Revision: rev, Prev: d.maxSeen})
	}
	d.maxSeen = max(d.maxSeen, rev)
}

// push handles a message on the DSN's push subject.
func (e *Engine) push(d *dsn, data []byte, now time.Time) {
	if d.state.Down() || d.state == stage.Booting || d.state == stage.Hung {
		return
	}
	p, key, err := e.cfgs.decodePush(data)
	if err != nil {
		e.errorEvent(d, now, "bad push: "+err.Error())
		return
	}
	switch p.Type {
	case wire.PushDelta, wire.PushCurrent:
		if d.session == "" && d.beh.Stages[d.st].Action != stage.ActHello {
			return // not in a session: whatever it says, a Hello will bring it
		}
		if len(d.queue) >= maxQueue {
			d.queue = d.queue[1:]
		}
		d.queue = append(d.queue, queuedPush{p: p, key: key})
		if d.beh.Stages[d.st].Action == stage.ActServe {
			e.serveQueue(d, now)
		}
	case wire.PushResync:
		e.announce(d, p.Snapshot.Revision, now)
		d.snapRef = p.Snapshot
		e.outcome(d, stage.Resync, now)
	case wire.PushQuarantine:
		d.session = ""
		e.event(d, now, "quarantine", "warning", "quarantined by the control plane: "+p.Reason, nil)
		e.outcome(d, stage.Quarantine, now)
	case wire.PushRehello:
		e.outcome(d, stage.Rehello, now)
	}
}

// chain applies the queued pushes that follow on from base, dropping duplicates. It reports a
// gap (a push that starts past what base has) by returning false.
func (e *Engine) chain(d *dsn, base applied, now time.Time) (applied, bool) {
	for len(d.queue) > 0 {
		q := d.queue[0]
		p := q.p
		switch {
		case p.To <= base.rev && p.To > d.admitRev:
			// Sent in this session although the DSN has it.
			e.emit(record.Record{At: now.UnixNano(), Type: record.TypeWatch, DSN: d.id, Watch: record.WatchDuplicate, Revision: p.To, Prev: base.rev})
		case p.To <= base.rev, p.From > base.rev && p.To <= d.admitRev:
			// Not past the admission, which overtook it: the control plane decided it before it
			// had the DSN's Hello (for the session the DSN had left).
			e.emit(record.Record{At: now.UnixNano(), Type: record.TypeWatch, DSN: d.id, Watch: record.WatchOvertaken, Revision: p.To, Prev: base.rev})
		case p.From > base.rev:
			e.emit(record.Record{At: now.UnixNano(), Type: record.TypeWatch, DSN: d.id, Watch: record.WatchGap, Revision: p.From, Prev: base.rev})
			d.queue = nil
			return base, false
		default:
			e.announce(d, p.To, now)
			base = applied{rev: p.To, objs: e.cfgs.derive(base.objs, q.key, p.Changes)}
		}
		d.queue = d.queue[1:]
	}
	d.queue = nil
	return base, true
}

// prepareApply works out what the apply stage brings the DSN to: the fetched snapshot, then
// the inline delta, then queued pushes.
func (e *Engine) prepareApply(d *dsn, now time.Time) bool {
	base := d.cur
	if base.objs == nil {
		base.objs = emptySet
	}
	if d.fetched != nil {
		if d.fetched.rev < d.cur.rev {
			e.emit(record.Record{At: now.UnixNano(), Type: record.TypeWatch, DSN: d.id, Watch: record.WatchRegression, Revision: d.fetched.rev, Prev: d.cur.rev})
		}
		base = applied{rev: d.fetched.rev, objs: d.fetched.objs}
		d.fetched = nil
	}
	if p := d.delta; p != nil {
		d.delta = nil
		if p.From > base.rev {
			e.errorEvent(d, now, "inline delta does not follow on from the applied revision")
			return false
		}
		if p.To > base.rev {
			base = applied{rev: p.To, objs: e.cfgs.derive(base.objs, d.deltaKey, p.Changes)}
		}
	}
	base, _ = e.chain(d, base, now)
	d.pend = base
	d.applying = true
	e.sch.After(d.beh.Apply.Delay.Sample(d.r.Float64()), sched.Event{Key: d.idx, Kind: evApplied, Seq: d.seq})
	return true
}

// serveQueue starts applying queued pushes while serving.
func (e *Engine) serveQueue(d *dsn, now time.Time) {
	if d.applying || len(d.queue) == 0 {
		return
	}
	next, ok := e.chain(d, d.cur, now)
	if !ok {
		e.outcome(d, stage.Gap, now)
		return
	}
	if next.rev == d.cur.rev && next.objs == d.cur.objs {
		return
	}
	d.pend = next
	d.applying = true
	e.sch.After(d.beh.Apply.Delay.Sample(d.r.Float64()), sched.Event{Key: d.idx, Kind: evApplied, Seq: d.seq})
}

// applied finishes an apply after its delay.
func (e *Engine) applied(d *dsn, now time.Time) {
	d.applying = false
	ap := d.beh.Apply
	inApplyStage := d.beh.Stages[d.st].Action == stage.ActApply
	if d.r.Float64() < ap.ErrorProbability {
		e.errorEvent(d, now, "config apply failed")
		e.ack(d, d.cur.rev, "apply failed", now)
		if inApplyStage {
			e.outcome(d, stage.Error, now)
		}
		return
	}
	e.commit(d, d.pend, now, "")
	e.ack(d, d.cur.rev, "", now)
	if inApplyStage {
		e.outcome(d, stage.OK, now)
		return
	}
	e.serveQueue(d, now)
}

// commit puts a config in force.
func (e *Engine) commit(d *dsn, a applied, now time.Time, how string) {
	if a.rev == d.cur.rev && a.objs == d.cur.objs {
		return
	}
	e.flows(d, now) // what flowed so far was decided by the old config
	d.cur = a
	d.counters.SetTable(d.g.table(a.objs))
	e.emit(record.Record{At: now.UnixNano(), Type: record.TypeApplied, DSN: d.id, Revision: a.rev, Detail: how})
	if how != "cache" {
		e.cache.Store(d.id, a)
		e.event(d, now, "config-applied", "info", "config applied", map[string]string{"revision": u64(a.rev)})
	}
}

// ack tells the control plane what the DSN has applied, unless a misbehaviour loses or bends it.
func (e *Engine) ack(d *dsn, rev uint64, errMsg string, now time.Time) {
	ap := d.beh.Apply
	if d.session == "" {
		return
	}
	if d.r.Float64() < ap.DropAckProbability {
		e.emit(record.Record{At: now.UnixNano(), Type: record.TypeAckDropped, DSN: d.id, Revision: rev})
		return
	}
	if d.r.Float64() < ap.WrongRevisionProbability {
		rev = uint64(max(int64(rev)+ap.WrongRevisionOffset, 0))
	}
	data, _ := json.Marshal(&wire.Ack{DSN: d.id, SessionID: d.session, Revision: rev, Error: errMsg})
	if e.publish(d, wire.AckSubject(d.id), data) {
		e.st.acks.Add(1)
	}
}

// heartbeat says the DSN is alive.
func (e *Engine) heartbeat(d *dsn, now time.Time) {
	st := wire.StateServing
	if d.state == stage.Syncing || d.applying {
		st = wire.StateSyncing
	}
	data, _ := json.Marshal(&wire.Heartbeat{DSN: d.id, SessionID: d.session, AppliedRevision: d.cur.rev,
		State: st, SentUnixNano: now.Add(d.beh.ClockSkew).UnixNano()})
	if e.publish(d, wire.HeartbeatSubject(d.id), data) {
		e.st.heartbeats.Add(1)
	}
}

// event sends an Event if the DSN can.
func (e *Engine) event(d *dsn, now time.Time, typ, severity, msg string, fields map[string]string) {
	if !d.connected {
		return
	}
	data, _ := json.Marshal(&wire.Event{DSN: d.id, TimeUnixNano: now.Add(d.beh.ClockSkew).UnixNano(), Type: typ,
		Severity: severity, Message: msg, Fields: fields})
	if e.publish(d, wire.EventSubject(d.id), data) {
		e.st.events.Add(1)
	}
}

func (e *Engine) errorEvent(d *dsn, now time.Time, msg string) {
	e.event(d, now, "error", "error", msg, nil)
}

func (e *Engine) fault(d *dsn, now time.Time, msg string) {
	e.event(d, now, "fault", "warning", msg, nil)
}

// admissionProblem reports why d is not admitted, when the reason changed. The DSN's own id is
// replaced so that the same reason counts once across DSNs.
func (e *Engine) admissionProblem(d *dsn, now time.Time, reason string) {
	reason = strings.ReplaceAll(reason, d.id, "<dsn>")
	if reason == d.lastAdmission {
		return
	}
	d.lastAdmission = reason
	e.emit(record.Record{At: now.UnixNano(), Type: record.TypeAdmission, DSN: d.id, Unit: d.unit, Detail: reason})
}

func orUnsaid(reason string) string {
	if reason == "" {
		return "no reason given"
	}
	return reason
}
