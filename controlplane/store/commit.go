package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dsnscale/dsnscale/controlplane/model"
)

// Message headers. The Nats-* ones are the server's atomic batch and consistency protocol;
// KV-Operation is the KV delete marker; hdrOp records the store's own op so that a rebuilt
// event log tells creates from updates even after compaction removed a key's older revisions,
// and hdrCommitID names the commit, so that a commit whose acknowledgement was lost can be
// found in the stream.
const (
	hdrBatchID      = "Nats-Batch-Id"
	hdrBatchSeq     = "Nats-Batch-Sequence"
	hdrBatchCommit  = "Nats-Batch-Commit"
	hdrExpectedLast = "Nats-Expected-Last-Subject-Sequence"
	hdrKVOperation  = "KV-Operation"
	hdrOp           = "Dsnscale-Op"
	hdrCommitID     = "Dsnscale-Commit"

	kvDelete = "DEL"
	kvPurge  = "PURGE"
)

// Server error codes the store tells apart.
const (
	errCodeWrongLastSeq      = 10071
	errCodeWrongLastSeqConst = 10164
)

// flowEvery makes every n-th message of a batch a request, so that a large batch waits for the
// server now and then instead of filling the connection's buffers.
const flowEvery = 128

// headerAllowance is room left for subject and headers when checking a message's size.
const headerAllowance = 1024

// planned is one op checked against current state.
type planned struct {
	op     OpType
	key    model.Key
	skey   string
	expect Revision      // the key's last stream sequence, which the server must still have
	obj    *model.Object // create, update: the new object, no revision yet; delete: the stored one
}

// Commit validates ops against current state, runs check on the state they would produce and,
// unless dryRun, writes them all or nothing: several ops as one atomic batch, one op as one
// publish. Every message carries the key's expected last sequence, so the server refuses the
// whole commit (ErrConflict) if another writer changed one of the keys. It returns copies of the stored objects (for
// deletes the last state) and the revision of the last op. check sees the new objects without
// resourceVersion (and creates without creationRevision), since revisions are only known once
// the server stored them; so do the objects a dry run returns, with the current revision.
func (s *KV) Commit(ctx context.Context, ops []Op, check CheckFunc, dryRun bool) ([]*model.Object, Revision, error) {
	start := time.Now()
	var checkFailed bool
	objs, rev, err := s.commit(ctx, ops, check, dryRun, &checkFailed)
	s.metrics.observeCommit(dryRun, checkFailed, err, time.Since(start))
	return objs, rev, err
}

func (s *KV) commit(ctx context.Context, ops []Op, check CheckFunc, dryRun bool, checkFailed *bool) ([]*model.Object, Revision, error) {
	if s.isClosed.Load() {
		return nil, 0, ErrClosed
	}
	if len(ops) == 0 {
		return nil, 0, fmt.Errorf("commit: no ops: %w", ErrInvalid)
	}
	if len(ops) > MaxBatchOps {
		return nil, 0, fmt.Errorf("commit: %d ops, at most %d in one batch: %w", len(ops), MaxBatchOps, ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, 0, ErrClosed
	}
	if s.following.Load() {
		// Other writers share the bucket: read what they committed before this commit started,
		// so that its checks (a referenced tenant exists, say) see every earlier write.
		if _, err := s.catchUp(ctx, ""); err != nil {
			return nil, 0, fmt.Errorf("commit: reading other writers' commits: %w", err)
		}
	}
	plan, err := s.plan(ops)
	if err != nil {
		return nil, 0, err
	}
	msgs, err := s.encode(plan)
	if err != nil {
		return nil, 0, err
	}
	base := s.snap.Load()
	if check != nil {
		changes := make([]change, len(plan))
		for i, p := range plan {
			changes[i] = change{key: p.key}
			if p.op != OpDelete {
				changes[i].obj = p.obj
			}
		}
		sortChanges(changes)
		if err := check(base.with(changes, base.rev)); err != nil {
			*checkFailed = true
			return nil, 0, err
		}
	}
	if dryRun {
		out := make([]*model.Object, len(plan))
		for i, p := range plan {
			out[i] = cloneObject(p.obj)
		}
		return out, base.rev, nil
	}
	batch := newBatchID()
	last, sentCommit, err := s.publish(ctx, batch, msgs)
	// Nobody took a message of the batch: its stream had no leader for a moment (a replica is
	// handing its leaderships over, or one is being elected). The commit did not happen, so
	// the batch goes again, under a new id, while the request's time lasts; what the old
	// leader staged of it is never committed.
	for wait := 50 * time.Millisecond; err != nil && !sentCommit && errors.Is(err, nats.ErrNoResponders) && wait <= maxNoLeaderWait; wait *= 2 {
		select {
		case <-ctx.Done():
		case <-time.After(wait):
			batch = newBatchID()
			last, sentCommit, err = s.publish(ctx, batch, msgs)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		var se *serverError
		switch {
		case errors.As(err, &se) && (se.ErrCode == errCodeWrongLastSeq || se.ErrCode == errCodeWrongLastSeqConst):
			// Someone else wrote one of the keys: learn what, so that a retry can succeed.
			if _, cerr := s.catchUp(ctx, ""); cerr != nil {
				s.log.Warn("reading the stream after a server-side conflict", "err", cerr)
			}
			return nil, 0, fmt.Errorf("commit %s: changed by another writer of bucket %s: %w", planKeys(plan), s.cfg.Bucket, ErrConflict)
		case se != nil || !sentCommit:
			return nil, 0, fmt.Errorf("commit %s: nothing written: %w", planKeys(plan), err)
		}
		// The commit was sent but its ack was lost: the stream tells whether it landed.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.RequestTimeout)
		found, cerr := s.catchUp(rctx, batch)
		cancel()
		if cerr != nil || found == 0 {
			return nil, 0, fmt.Errorf("commit %s: no acknowledgement and not found in the stream: %w", planKeys(plan), err)
		}
		s.log.Warn("commit acknowledgement lost, found the batch in the stream", "revision", found, "err", err)
		return s.results(plan), found, nil
	}
	first := last - Revision(len(plan)) + 1
	if first != s.applied+1 {
		// Messages from another writer sit between our last revision and this batch: read them
		// and ours in stream order, so that events stay in revision order.
		if _, err := s.catchUp(ctx, ""); err != nil {
			return nil, 0, fmt.Errorf("commit %s: committed at revision %d, but reading the stream failed: %w", planKeys(plan), last, err)
		}
		res := s.results(plan)
		for i, o := range res {
			if o == nil {
				return nil, 0, fmt.Errorf("commit %s: committed at revision %d, but %s was not there when the stream was read back", planKeys(plan), last, plan[i].key)
			}
		}
		return res, last, nil
	}
	a := s.newApplier()
	for i, p := range plan {
		st := stored{seq: first + Revision(i), skey: p.skey, key: p.key, op: p.op, obj: cloneObject(p.obj)}
		if p.op == OpDelete {
			st.del = true
		}
		a.step(st)
	}
	a.finish(last)
	return s.results(plan), last, nil
}

// results returns copies of what plan stored: current objects, or the last state of deletes.
func (s *KV) results(plan []planned) []*model.Object {
	out := make([]*model.Object, len(plan))
	for i, p := range plan {
		if p.op == OpDelete {
			out[i] = cloneObject(p.obj)
			continue
		}
		if e := s.index[p.skey]; e != nil {
			out[i] = cloneObject(e.obj)
		}
	}
	return out
}

// plan checks ops against the index. It runs under s.mu.
func (s *KV) plan(ops []Op) ([]planned, error) {
	plan := make([]planned, len(ops))
	seen := make(map[string]int, len(ops))
	for i, op := range ops {
		if op.Object == nil {
			return nil, fmt.Errorf("ops[%d]: %s without an object: %w", i, op.Type, ErrInvalid)
		}
		key := op.Object.Key()
		skey, err := kvKey(key)
		if err != nil {
			return nil, fmt.Errorf("ops[%d]: %w", i, err)
		}
		if j, dup := seen[skey]; dup {
			return nil, fmt.Errorf("ops[%d]: key %s is also written by ops[%d]; a batch writes each key once: %w", i, key, j, ErrInvalid)
		}
		seen[skey] = i
		rv, err := parseRevision(op.Object.Metadata.ResourceVersion)
		if err != nil {
			return nil, fmt.Errorf("ops[%d]: %s %s: %w", i, op.Type, key, err)
		}
		e := s.index[skey]
		live := e != nil && e.obj != nil
		p := planned{op: op.Type, key: key, skey: skey}
		if e != nil {
			p.expect = e.seq
		}
		switch op.Type {
		case OpCreate:
			if rv != 0 || op.ExpectedRevision != 0 {
				return nil, fmt.Errorf("ops[%d]: create %s: a new object carries no resourceVersion or expected revision: %w", i, key, ErrInvalid)
			}
			if live {
				return nil, fmt.Errorf("create %s: %w", key, ErrAlreadyExists)
			}
			p.obj = cloneObject(op.Object)
			p.obj.Metadata.ResourceVersion = ""
			p.obj.Metadata.CreationRevision = 0
		case OpUpdate, OpDelete:
			if !live {
				return nil, fmt.Errorf("%s %s: %w", op.Type, key, ErrNotFound)
			}
			cur := e.seq
			if rv != 0 && rv != cur {
				return nil, fmt.Errorf("%s %s: resourceVersion %d, stored %d: %w", op.Type, key, rv, cur, ErrConflict)
			}
			if op.ExpectedRevision != 0 && op.ExpectedRevision != cur {
				return nil, fmt.Errorf("%s %s: expected revision %d, stored %d: %w", op.Type, key, op.ExpectedRevision, cur, ErrConflict)
			}
			if op.Type == OpDelete {
				p.obj = e.obj
				break
			}
			p.obj = cloneObject(op.Object)
			p.obj.Metadata.ResourceVersion = ""
			p.obj.Metadata.CreationRevision = e.obj.Metadata.CreationRevision
		default:
			return nil, fmt.Errorf("ops[%d]: unknown op type %q (want create, update or delete): %w", i, op.Type, ErrInvalid)
		}
		plan[i] = p
	}
	return plan, nil
}

func parseRevision(s string) (Revision, error) {
	if s == "" {
		return 0, nil
	}
	rv, err := strconv.ParseUint(s, 10, 64)
	if err != nil || rv == 0 {
		return 0, fmt.Errorf("metadata.resourceVersion %q is not a revision: %w", s, ErrInvalid)
	}
	return rv, nil
}

// encode turns plan into the batch's messages. A delete is a KV delete marker that carries the
// last state, so that a delete event keeps its object even after compaction.
func (s *KV) encode(plan []planned) ([]*nats.Msg, error) {
	limit := int(s.js.Conn().MaxPayload()) - headerAllowance
	msgs := make([]*nats.Msg, len(plan))
	for i, p := range plan {
		body, err := json.Marshal(p.obj)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encode: %w", p.op, p.key, err)
		}
		if len(body) > limit {
			return nil, fmt.Errorf("%s %s: object is %d bytes encoded, at most %d: %w", p.op, p.key, len(body), limit, ErrInvalid)
		}
		m := nats.NewMsg(s.prefix + p.skey)
		m.Data = body
		m.Header.Set(hdrOp, string(p.op))
		m.Header.Set(hdrExpectedLast, strconv.FormatUint(p.expect, 10))
		if p.op == OpDelete {
			m.Header.Set(hdrKVOperation, kvDelete)
		}
		msgs[i] = m
	}
	return msgs, nil
}

// serverError is an error the server answered a publish with.
type serverError struct {
	Code        int    `json:"code"`
	ErrCode     uint16 `json:"err_code"`
	Description string `json:"description"`
}

func (e *serverError) Error() string {
	return fmt.Sprintf("server: %s (status %d, code %d)", e.Description, e.Code, e.ErrCode)
}

type pubAck struct {
	Error     *serverError `json:"error"`
	Stream    string       `json:"stream"`
	Sequence  uint64       `json:"seq"`
	BatchID   string       `json:"batch"`
	BatchSize uint64       `json:"count"`
}

// publish writes msgs all or nothing and returns the stream sequence of the last one. One
// message is a plain publish, atomic by itself and far cheaper for the server than a batch;
// more are one atomic batch. sentCommit says whether the message that commits went out, after
// which the outcome of an error is unknown until the stream is read.
func (s *KV) publish(ctx context.Context, batch string, msgs []*nats.Msg) (last Revision, sentCommit bool, err error) {
	nc := s.js.Conn()
	single := len(msgs) == 1
	for i, m := range msgs {
		isLast := i == len(msgs)-1
		m.Header.Set(hdrCommitID, batch)
		if !single {
			m.Header.Set(hdrBatchID, batch)
			m.Header.Set(hdrBatchSeq, strconv.Itoa(i+1))
			if isLast {
				m.Header.Set(hdrBatchCommit, "1")
			}
		}
		if !isLast && i%flowEvery != 0 {
			if err := nc.PublishMsg(m); err != nil {
				return 0, false, fmt.Errorf("publish: %w", err)
			}
			continue
		}
		rctx, cancel := s.requestContext(ctx)
		resp, err := nc.RequestMsgWithContext(rctx, m)
		// "No responders" means nobody took the message: the stream had no leader for a moment
		// (one is being elected after a replica left). A message of its own can go again; the
		// end of a batch is not sent again, since what became of the batch's other messages is
		// not known.
		for wait := 50 * time.Millisecond; single && errors.Is(err, nats.ErrNoResponders) && rctx.Err() == nil; wait *= 2 {
			select {
			case <-rctx.Done():
			case <-time.After(wait):
				resp, err = nc.RequestMsgWithContext(rctx, m)
			}
		}
		cancel()
		if err != nil {
			// With no responders nobody took the message, so a commit was not sent.
			return 0, isLast && !errors.Is(err, nats.ErrNoResponders), fmt.Errorf("publish: %w", err)
		}
		if !isLast && len(resp.Data) == 0 {
			continue // staged
		}
		var ack pubAck
		if err := json.Unmarshal(resp.Data, &ack); err != nil {
			return 0, isLast, fmt.Errorf("publish: unreadable acknowledgement %q: %w", resp.Data, err)
		}
		if ack.Error != nil {
			return 0, false, ack.Error
		}
		if !isLast {
			return 0, false, fmt.Errorf("publish: acknowledgement before the batch was complete: %q", resp.Data)
		}
		if !single && (ack.BatchID != batch || ack.BatchSize != uint64(len(msgs))) {
			return 0, true, fmt.Errorf("publish: acknowledgement of batch %q size %d, sent %q size %d", ack.BatchID, ack.BatchSize, batch, len(msgs))
		}
		if ack.Sequence == 0 {
			return 0, true, fmt.Errorf("publish: acknowledgement without a sequence: %q", resp.Data)
		}
		return ack.Sequence, true, nil
	}
	return 0, false, errors.New("publish: empty batch")
}

// maxNoLeaderWait bounds the back-off between tries of a batch that found its stream without a
// leader: about 3 s in all, the time a stream of a replica that is stopping takes to change
// leader.
const maxNoLeaderWait = 1600 * time.Millisecond

func newBatchID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// planKeys names the keys of a plan for error messages.
func planKeys(plan []planned) string {
	if len(plan) == 1 {
		return plan[0].key.String()
	}
	var b strings.Builder
	b.WriteByte('[')
	for i, p := range plan {
		if i > 0 {
			b.WriteString(", ")
		}
		if i == 8 {
			fmt.Fprintf(&b, "and %d more", len(plan)-i)
			break
		}
		b.WriteString(p.key.String())
	}
	b.WriteByte(']')
	return b.String()
}
