package engine

import (
	"encoding/hex"
	"math/rand/v2"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/wire"
	"github.com/dsnscale/dsnscale/simdsn/bus"
	"github.com/dsnscale/dsnscale/simdsn/dataplane"
	"github.com/dsnscale/dsnscale/simdsn/record"
	"github.com/dsnscale/dsnscale/simdsn/sched"
	"github.com/dsnscale/dsnscale/simdsn/stage"
)

// Event kinds.
const (
	evStage   uint8 = iota + 1 // a stage's delay is over (Seq: timerSeq)
	evTimeout                  // an action's timeout (Seq: seq)
	evBackoff                  // a back-off wait is over (Seq: seq)
	evApplied                  // an apply's delay is over (Seq: seq)
	evTick                     // periodic data-plane work (Seq: tickSeq)
	evBus                      // a bus delivery
	evCmd                      // a command
)

// dsn is one simulated DSN: plain data, touched only by the worker that owns it.
type dsn struct {
	idx  int32
	id   string
	unit string
	g    *lgroup
	beh  *stage.Behaviour

	injections []*injection

	st       int32 // current stage
	state    stage.State
	seq      uint32 // bumped on every stage entry: answers and timeouts carry it
	timerSeq uint32 // bumped when the stage timer is (re)started
	tickSeq  uint32 // bumped when periodic work stops or is rescheduled

	attempt    int
	retryAfter time.Duration
	connected  bool
	applying   bool
	session    string
	bootID     string
	hb         time.Duration

	cur      applied // in force; objs nil when nothing is
	pend     applied // being applied
	maxSeen  uint64  // highest revision the control plane announced
	admitRev uint64
	delta    *wire.Push
	deltaKey [32]byte
	snapRef  *wire.SnapshotRef
	fetched  *snapshot
	queue    []queuedPush

	nextHB, nextTel, nextEvt, lastFlow int64
	healthSince                        int64

	counters dataplane.Counters
	pcg      rand.PCG
	r        *rand.Rand

	lastRecState stage.State
	// lastAdmission is the admission problem last reported, so that a DSN retrying for the
	// same reason reports it once.
	lastAdmission string
	lastRecStage  int32
}

type queuedPush struct {
	p   *wire.Push
	key [32]byte
}

// maxQueue bounds the pushes a DSN holds while it is not ready to apply them; beyond it the
// oldest are dropped, which the protocol detects as a gap.
const maxQueue = 256

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0xda3e39cb94b95bdb)) }

// handle runs one event on the DSN's worker.
func (e *Engine) handle(worker int, ev sched.Event) {
	if int(ev.Key) >= len(e.dsns) || ev.Key < 0 {
		return
	}
	d := e.dsns[ev.Key]
	now := e.sch.Now()
	switch ev.Kind {
	case evStage:
		if ev.Seq == d.timerSeq {
			s := &d.beh.Stages[d.st]
			if next := e.pickNext(d, s); next >= 0 {
				e.enter(d, next, now)
			}
		}
	case evTimeout:
		if ev.Seq == d.seq {
			switch d.beh.Stages[d.st].Action {
			case stage.ActConnect, stage.ActHello, stage.ActFetchSnapshot:
				if d.beh.Stages[d.st].Action == stage.ActHello {
					e.errorEvent(d, now, "hello unanswered")
				}
				e.outcome(d, stage.Error, now)
			}
		}
	case evBackoff:
		if ev.Seq == d.seq && d.beh.Stages[d.st].Action == stage.ActBackoff {
			e.outcome(d, stage.OK, now)
		}
	case evApplied:
		if ev.Seq == d.seq && d.applying {
			e.applied(d, now)
		}
	case evTick:
		if ev.Seq == d.tickSeq {
			e.tick(d, worker, now)
		}
	case evBus:
		e.busEvent(d, ev.Data.(bus.Delivery), now)
	case evCmd:
		e.command(d, ev.Data.(*cmdEvent), now)
	}
}

// enter moves a DSN into stage i and follows stages that end at once.
func (e *Engine) enter(d *dsn, i int, now time.Time) {
	for hops := 0; i >= 0; hops++ {
		if hops == 64 {
			e.log.Error("stages loop without waiting", "dsn", d.id, "stage", d.beh.Stages[i].Name)
			return
		}
		i = e.enterOnce(d, i, now)
	}
}

// enterOnce enters stage i; it returns the next stage if the stage ended at once, else -1.
func (e *Engine) enterOnce(d *dsn, i int, now time.Time) int {
	s := &d.beh.Stages[i]
	prev := d.state
	d.st = int32(i)
	d.seq++
	d.timerSeq++
	d.applying = false

	switch {
	case s.State.Down() && !prev.Down():
		e.down(d, now)
	case s.State == stage.Booting && prev != stage.Booting && !prev.Down():
		e.down(d, now) // a restart straight from a running state
	}
	if s.State == stage.Booting && prev != stage.Booting {
		var b [8]byte
		for k := range b {
			b[k] = byte(d.r.Uint32())
		}
		d.bootID = hex.EncodeToString(b[:])
	}
	if prev.DataPlane() && !s.State.DataPlane() {
		e.flows(d, now)
		d.tickSeq++
	}
	d.state = s.State
	if prev == stage.Admitting && s.State != stage.Admitting {
		d.lastAdmission = "" // a later admission reports its reasons afresh
	}
	if !prev.DataPlane() && s.State.DataPlane() {
		e.startTicks(d, now)
	}
	if d.state != d.lastRecState || d.st != d.lastRecStage {
		d.lastRecState, d.lastRecStage = d.state, d.st
		e.emit(record.Record{At: now.UnixNano(), Type: record.TypeState, DSN: d.id, Unit: d.unit, State: d.state.String(), Stage: s.Name})
	}

	if s.Action == stage.ActNone && s.Delay == (stage.Delay{}) {
		return e.pickNext(d, s)
	}
	e.stageTimer(d, s)
	o, done := e.act(d, s, now)
	if done {
		return s.On[o]
	}
	return -1
}

// stageTimer starts the stage's delay timer if the stage has somewhere to go when it ends.
func (e *Engine) stageTimer(d *dsn, s *stage.Compiled) {
	if s.Delay == (stage.Delay{}) || (s.Next < 0 && len(s.Transitions) == 0) {
		return
	}
	e.sch.After(s.Delay.Sample(d.r.Float64()), sched.Event{Key: d.idx, Kind: evStage, Seq: d.timerSeq})
}

// pickNext rolls a stage's transitions; the leftover probability goes to Next (-1: stay).
func (e *Engine) pickNext(d *dsn, s *stage.Compiled) int {
	if len(s.Transitions) > 0 {
		u := d.r.Float64()
		for _, t := range s.Transitions {
			if u < t.Probability {
				return t.To
			}
			u -= t.Probability
		}
	}
	return s.Next
}

// outcome moves the DSN where its stage says for o (signals a stage does not name are ignored).
func (e *Engine) outcome(d *dsn, o stage.Outcome, now time.Time) {
	if next := d.beh.Stages[d.st].On[o]; next >= 0 {
		e.enter(d, next, now)
	}
}

// down is what happens to a DSN whose process stops: its connection closes and its memory
// (applied config, sessions, queues, counters) is gone. Its cache stays.
func (e *Engine) down(d *dsn, now time.Time) {
	e.bus.Disconnect(d.idx)
	d.connected = false
	d.session = ""
	if d.cur.objs != nil || d.cur.rev != 0 {
		d.cur = applied{}
		e.emit(record.Record{At: now.UnixNano(), Type: record.TypeApplied, DSN: d.id, Revision: 0, Detail: "lost"})
	}
	d.pend, d.delta, d.snapRef, d.fetched, d.queue = applied{}, nil, nil, nil, nil
	d.counters.Reset()
	d.tickSeq++
	d.attempt, d.retryAfter, d.admitRev = 0, 0, 0
	d.hb = e.cfg.Map.Heartbeat
}

// act starts a stage's action. done reports an action that finished at once, with outcome o.
func (e *Engine) act(d *dsn, s *stage.Compiled, now time.Time) (o stage.Outcome, done bool) {
	switch s.Action {
	case stage.ActLoadCache:
		if a, ok := e.cache.Load(d.id); ok {
			e.commit(d, a, now, "cache")
		}
		return stage.OK, true
	case stage.ActConnect:
		if d.connected {
			return stage.OK, true
		}
		e.bus.Connect(d.idx)
		e.sch.After(s.Timeout, sched.Event{Key: d.idx, Kind: evTimeout, Seq: d.seq})
	case stage.ActHello:
		if !d.connected {
			return stage.Error, true
		}
		if err := e.hello(d, s, now); err != nil {
			return stage.Error, true
		}
	case stage.ActFetchSnapshot:
		if d.snapRef == nil || !d.connected {
			return stage.Error, true
		}
		e.bus.Fetch(d.idx, d.snapRef.Bucket, d.snapRef.Object, d.seq, s.Timeout)
		e.sch.After(s.Timeout+time.Second, sched.Event{Key: d.idx, Kind: evTimeout, Seq: d.seq})
	case stage.ActApply:
		if !e.prepareApply(d, now) {
			return stage.Error, true
		}
	case stage.ActServe:
		d.nextHB = now.UnixNano() + d.r.Int64N(int64(d.hb)+1)
		e.reschedule(d, now)
		e.serveQueue(d, now)
	case stage.ActBackoff:
		wait := s.Backoff.Wait(d.attempt, d.r.Float64(), d.retryAfter)
		d.attempt++
		d.retryAfter = 0
		e.sch.After(wait, sched.Event{Key: d.idx, Kind: evBackoff, Seq: d.seq})
	case stage.ActDisconnect:
		e.bus.Disconnect(d.idx)
		d.connected = false
		d.session = ""
		return stage.OK, true
	case stage.ActWipeCache:
		e.cache.Delete(d.id)
		return stage.OK, true
	}
	return 0, false
}

// busEvent handles a delivery from the bus.
func (e *Engine) busEvent(d *dsn, dl bus.Delivery, now time.Time) {
	action := d.beh.Stages[d.st].Action
	switch dl.Kind {
	case bus.ConnUp:
		if d.state.Down() {
			e.bus.Disconnect(d.idx) // dialled before the DSN went down
			return
		}
		d.connected = true
		if action == stage.ActConnect {
			e.outcome(d, stage.OK, now)
		}
	case bus.ConnFailed:
		if action == stage.ActConnect && !d.connected {
			if dl.Err != nil {
				e.admissionProblem(d, now, "connect: "+dl.Err.Error())
			}
			e.outcome(d, stage.Error, now)
		}
	case bus.ConnLost:
		if !d.connected {
			return
		}
		d.connected = false
		d.session = ""
		e.outcome(d, stage.Disconnected, now)
	case bus.Reply:
		if dl.Token == d.seq && action == stage.ActHello {
			e.admission(d, dl.Data, dl.Err, now)
		}
	case bus.Fetched:
		if dl.Token != d.seq || action != stage.ActFetchSnapshot {
			return
		}
		if dl.Err != nil {
			e.errorEvent(d, now, "snapshot fetch failed: "+dl.Err.Error())
			e.outcome(d, stage.Error, now)
			return
		}
		snap, err := e.cfgs.decodeSnapshot(d.snapRef, dl.Data)
		if err != nil {
			e.errorEvent(d, now, "bad snapshot: "+err.Error())
			e.outcome(d, stage.Error, now)
			return
		}
		d.fetched = snap
		e.outcome(d, stage.OK, now)
	case bus.Push:
		e.push(d, dl.Data, now)
	}
}
