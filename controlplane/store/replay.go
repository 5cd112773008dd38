package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dsnscale/dsnscale/controlplane/model"
)

// stored is one message of the bucket's stream, decoded.
type stored struct {
	seq   Revision
	skey  string
	key   model.Key
	op    OpType        // the store's own op header; "" for a message from another writer
	del   bool          // a delete or purge marker, or a value that is not an object
	purge bool          // a purge marker: the server dropped the key's older messages
	obj   *model.Object // put: the new object; delete: the last state, if the marker has it
	batch string        // the commit that wrote it, for the store's own messages
}

// decode reads one stream message. ok is false for a subject outside the store's key scheme,
// which the store skips.
func (s *KV) decode(subject string, hdr nats.Header, data []byte, seq Revision) (st stored, ok bool) {
	skey, found := strings.CutPrefix(subject, s.prefix)
	if !found {
		s.log.Warn("skipping a message outside the bucket's keys", "subject", subject, "revision", seq)
		return stored{}, false
	}
	key, err := parseKVKey(skey)
	if err != nil {
		s.log.Warn("skipping a message with a foreign key", "key", skey, "revision", seq, "err", err)
		return stored{}, false
	}
	st = stored{seq: seq, skey: skey, key: key, op: OpType(hdr.Get(hdrOp)), batch: hdr.Get(hdrCommitID)}
	switch st.op {
	case "", OpCreate, OpUpdate, OpDelete:
	default:
		st.op = ""
	}
	switch hdr.Get(hdrKVOperation) {
	case kvDelete:
		st.del = true
	case kvPurge:
		st.del, st.purge = true, true
	}
	if st.del != (st.op == OpDelete) {
		st.op = "" // the header does not match the message: judge it as another writer's
	}
	if len(data) == 0 {
		if !st.del {
			s.log.Error("an empty value is not an object; treating the key as deleted", "key", key, "revision", seq)
			st.del, st.op = true, ""
		}
		return st, true
	}
	var obj model.Object
	if err := json.Unmarshal(data, &obj); err != nil {
		if !st.del {
			s.log.Error("a value is not an object; treating the key as deleted", "key", key, "revision", seq, "err", err)
			st.del, st.op = true, ""
		}
		return st, true
	}
	if obj.Key() != key {
		if !st.del {
			s.log.Warn("a value names another key; the subject wins", "key", key, "named", obj.Key(), "revision", seq)
		}
		obj.Kind, obj.Metadata.Tenant, obj.Metadata.Name = key.Kind, key.Tenant, key.Name
	}
	st.obj = &obj
	return st, true
}

// applier applies stored messages to the index, in stream order, and then publishes the new
// snapshot and events at once. It runs under s.mu.
type applier struct {
	s       *KV
	events  []Event
	changed map[string]model.Key
}

func (s *KV) newApplier() *applier {
	return &applier{s: s, changed: map[string]model.Key{}}
}

// step applies one message.
func (a *applier) step(st stored) {
	s := a.s
	e := s.index[st.skey]
	if e == nil {
		e = &entry{key: st.key, first: st.seq}
		s.index[st.skey] = e
	}
	prev := e.obj
	e.seq = st.seq
	if st.purge {
		e.first = st.seq
	}
	a.changed[st.skey] = st.key
	var ev Event
	if st.del {
		e.obj = nil
		last := prev
		if last == nil {
			last = st.obj
		}
		// A foreign delete of a missing key changes nothing anyone saw; the store's own delete
		// markers make an event even when compaction removed the key's earlier revisions.
		if last == nil || (prev == nil && st.op != OpDelete) {
			return
		}
		ev = Event{Revision: st.seq, Type: OpDelete, Key: st.key, Object: last}
	} else {
		obj := st.obj
		typ := st.op
		if typ == "" {
			typ = OpCreate
			if prev != nil {
				typ = OpUpdate
			}
		}
		obj.Metadata.ResourceVersion = strconv.FormatUint(st.seq, 10)
		if obj.Metadata.CreationRevision == 0 {
			obj.Metadata.CreationRevision = st.seq
			if typ == OpUpdate && prev != nil {
				obj.Metadata.CreationRevision = prev.Metadata.CreationRevision
			}
		}
		e.obj = obj
		ev = Event{Revision: st.seq, Type: typ, Key: st.key, Object: obj}
	}
	a.events = append(a.events, ev)
}

// finish publishes the snapshot at revision rev (or the applied revision, if later) and the
// events collected. Both change under logMu, so that Changes up to a revision that a reader
// saw in a snapshot finds its events, and a watcher given an event finds it in Snapshot.
func (a *applier) finish(rev Revision) {
	s := a.s
	s.applied = max(s.applied, rev)
	var next *snapshot
	if old := s.snap.Load(); len(a.changed) > 0 || old.rev != s.applied {
		changes := make([]change, 0, len(a.changed))
		for skey, key := range a.changed {
			c := change{key: key}
			if e := s.index[skey]; e != nil {
				c.obj = e.obj
			}
			changes = append(changes, c)
		}
		sortChanges(changes)
		next = old.with(changes, s.applied)
	}
	s.logMu.Lock()
	if next != nil {
		s.snap.Store(next)
	}
	s.appendEventsLocked(a.events)
	s.logMu.Unlock()
	a.events, a.changed = nil, map[string]model.Key{}
}

// catchUp reads the stream after the applied revision and applies it. It returns the stream
// sequence of the last message of commit batch, if batch is not "" and its messages were read.
// It runs under s.mu, or before the store is shared.
func (s *KV) catchUp(ctx context.Context, batch string) (Revision, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream info: %w", err)
	}
	end := info.State.LastSeq
	if batch == "" && end <= s.applied {
		return 0, nil // nothing new
	}
	var found Revision
	last := s.applied
	a := s.newApplier()
	apply := func(m jetstream.Msg, seq Revision) {
		last = seq
		st, ok := s.decode(m.Subject(), m.Headers(), m.Data(), seq)
		if !ok {
			return
		}
		if batch != "" && st.batch == batch {
			found = seq
		}
		a.step(st)
	}
	err = s.read(ctx, s.applied+1, apply)
	// The read's consumer lives on one replica of the stream, and a replica that has just become
	// the leader may not have applied every message yet: what it delivered can end before end.
	// Unless the messages after the last one read are gone (compacted tombstones), read again
	// until they are: claiming revision end without them would hide commits.
	for wait := 20 * time.Millisecond; err == nil && last < end; wait = min(2*wait, time.Second) {
		var present Revision
		if present, err = s.lastPresent(ctx, last, end); err != nil || present <= last {
			break
		}
		select {
		case <-ctx.Done():
			err = ctx.Err()
			continue
		case <-time.After(wait):
		}
		err = s.read(ctx, last+1, apply)
	}
	if err == nil {
		// The stream's last messages may be gone (compacted tombstones); the revision stays.
		last = max(last, end)
		if s.applied == 0 {
			last = max(last, s.horizon)
		}
	}
	a.finish(last)
	return found, err
}

// maxTailProbe bounds how many sequences lastPresent probes back from the stream's end.
const maxTailProbe = 1000

// lastPresent is the last sequence in (after, end] whose message the stream still holds, asked
// of the stream's leader, or after when there is none. It probes back from end one sequence at
// a time, since only a tail of deleted messages makes it probe more than once; past maxTailProbe
// it gives up and answers after.
func (s *KV) lastPresent(ctx context.Context, after, end Revision) (Revision, error) {
	for seq := end; seq > after && end-seq < maxTailProbe; seq-- {
		found, err := s.leaderHas(ctx, seq)
		if err != nil {
			return 0, fmt.Errorf("is message %d there: %w", seq, err)
		}
		if found {
			return seq, nil
		}
	}
	return after, nil
}

// leaderHas asks the stream's leader whether it holds the message at seq. It uses the stream's
// message-get API and not the direct get that Stream.GetMsg uses for a KV bucket's stream:
// every replica answers a direct get, including the lagging one this is asked to see past.
func (s *KV) leaderHas(ctx context.Context, seq Revision) (bool, error) {
	prefix := s.js.Options().APIPrefix
	switch {
	case s.js.Options().Domain != "":
		prefix = "$JS." + s.js.Options().Domain + ".API."
	case prefix == "":
		prefix = jetstream.DefaultAPIPrefix
	}
	if !strings.HasSuffix(prefix, ".") {
		prefix += "."
	}
	req, err := json.Marshal(struct {
		Seq uint64 `json:"seq"`
	}{seq})
	if err != nil {
		return false, err
	}
	msg, err := s.js.Conn().RequestWithContext(ctx, prefix+"STREAM.MSG.GET.KV_"+s.cfg.Bucket, req)
	if err != nil {
		return false, err
	}
	var resp struct {
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return false, fmt.Errorf("message get answer: %w", err)
	}
	switch {
	case resp.Error == nil:
		return true, nil
	case resp.Error.ErrCode == int(jetstream.JSErrCodeMessageNotFound):
		return false, nil
	}
	return false, fmt.Errorf("message get: %s (%d)", resp.Error.Description, resp.Error.ErrCode)
}

// read calls fn with each message of the stream from sequence from on, in order, until the
// messages present when it started are read.
func (s *KV) read(ctx context.Context, from Revision, fn func(jetstream.Msg, Revision)) error {
	cfg := jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       max(from, 1),
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: s.cfg.RequestTimeout * 6,
		MemoryStorage:     true,
		// One replica, on the stream's leader: a read consumer lives for one read, and a
		// replicated one would first have to elect a leader of its own.
		Replicas: 1,
	}
	cons, err := s.stream.CreateConsumer(ctx, cfg)
	// A replicated stream whose leader is being elected (a replica just started or went away)
	// has nobody answering for a moment: ask again, a little later, within the request timeout.
	for wait, waited := 50*time.Millisecond, time.Duration(0); errors.Is(err, nats.ErrNoResponders) && waited < s.cfg.RequestTimeout; wait *= 2 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		waited += wait
		cons, err = s.stream.CreateConsumer(ctx, cfg)
	}
	if err != nil {
		return fmt.Errorf("read from revision %d: %w", from, err)
	}
	name := cons.CachedInfo().Name
	defer func() {
		dctx, cancel := s.requestContext(context.WithoutCancel(ctx))
		defer cancel()
		if err := s.stream.DeleteConsumer(dctx, name); err != nil {
			s.log.Debug("deleting a read consumer", "consumer", name, "err", err)
		}
	}()
	pending := cons.CachedInfo().NumPending
	for pending > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := int(min(pending, 1000))
		got := 0
		var err error
		// Nobody may answer for a moment while the stream's leader changes hands: fetch again a
		// little later, within the request timeout.
		for wait := 50 * time.Millisecond; ; wait *= 2 {
			var batch jetstream.MessageBatch
			batch, err = cons.FetchNoWait(n)
			if err == nil {
				for m := range batch.Messages() {
					meta, merr := m.Metadata()
					if merr != nil {
						return fmt.Errorf("read from revision %d: %w", from, merr)
					}
					got++
					fn(m, meta.Sequence.Stream)
					pending = meta.NumPending
				}
				err = batch.Error()
			}
			if got > 0 || !errors.Is(err, nats.ErrNoResponders) || wait >= s.cfg.RequestTimeout {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		}
		if err != nil {
			return fmt.Errorf("read from revision %d: %w", from, err)
		}
		if got == 0 {
			return fmt.Errorf("read from revision %d: the server delivered nothing with %d messages pending", from, pending)
		}
	}
	return nil
}
