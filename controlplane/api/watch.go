package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/rbac"
	"github.com/dsnscale/dsnscale/controlplane/store"
)

// Watch event types, as Kubernetes names them.
const (
	eventAdded    = "ADDED"
	eventModified = "MODIFIED"
	eventDeleted  = "DELETED"
	eventError    = "ERROR"
)

// watchEvent is the data of one server-sent event.
type watchEvent struct {
	Revision uint64        `json:"revision"`
	Type     string        `json:"type"`
	Object   *model.Object `json:"object"`
}

func eventType(t store.OpType) string {
	switch t {
	case store.OpCreate:
		return eventAdded
	case store.OpDelete:
		return eventDeleted
	}
	return eventModified
}

// watchParams are the checked parameters of a watch.
type watchParams struct {
	from   uint64
	kind   model.Kind
	tenant string
}

func (s *server) watchParams(r *http.Request) (watchParams, error) {
	var p watchParams
	q, err := parseQuery(r, "fromRevision", "kind", "tenant")
	if err != nil {
		return p, err
	}
	if p.from, err = q.uint("fromRevision"); err != nil {
		return p, err
	}
	if q.Get("fromRevision") == "" {
		p.from = s.store.Revision()
	}
	// A reconnecting EventSource sends the id of the last event it saw: resume after it.
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		n, err := strconv.ParseUint(strings.TrimSpace(id), 10, 64)
		if err != nil {
			return p, errorf(http.StatusBadRequest, reasonBadRequest, "Last-Event-ID", "must be a revision, got %q", id)
		}
		p.from = n
	}
	// A revision the store has not reached, once it has read what other replicas committed, is
	// refused rather than waited for: a client with one holds a revision from another store (or
	// a typo), and would wait forever.
	cur, err := store.Reach(r.Context(), s.store, p.from)
	if err != nil {
		return p, err
	}
	if p.from > cur {
		field := "fromRevision"
		if r.Header.Get("Last-Event-ID") != "" {
			field = "Last-Event-ID"
		}
		return p, errorf(http.StatusBadRequest, reasonBadRequest, field,
			"revision %d does not exist yet: the current revision is %d; watch from it or an earlier one", p.from, cur)
	}
	if k := q.Get("kind"); k != "" {
		p.kind = model.Kind(k)
		known := false
		for _, ok := range objectKinds {
			known = known || p.kind == ok
		}
		if !known {
			return p, errorf(http.StatusBadRequest, reasonBadRequest, "kind", "must be Tenant, Network or Policy, got %q", k)
		}
	}
	if t := q.Get("tenant"); t != "" {
		if msg := model.CheckName(t); msg != "" {
			return p, errorf(http.StatusBadRequest, reasonBadRequest, "tenant", "%s", msg)
		}
		p.tenant = t
	}
	return p, nil
}

func (p watchParams) matches(ev store.Event) bool {
	if p.kind != "" && ev.Key.Kind != p.kind {
		return false
	}
	if p.tenant == "" {
		return true
	}
	// A tenant filter follows the tenant's own object as well as the objects inside it.
	return ev.Key.Tenant == p.tenant || (ev.Key.Kind == model.KindTenant && ev.Key.Name == p.tenant)
}

// watch streams the store's changes after a revision as server-sent events:
//
//	id: <revision>
//	event: ADDED|MODIFIED|DELETED
//	data: {"revision":..,"type":..,"object":{..}}
//
// with ": heartbeat" comments while idle. A revision below the compaction horizon gets 410 before
// the stream starts; a watcher that falls behind ends the stream with an ERROR event, and the
// client resumes with Last-Event-ID (or relists on 410).
func (s *server) watch(w http.ResponseWriter, r *http.Request) {
	p, err := s.watchParams(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx := r.Context()
	if s.cfg.Streams != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(s.cfg.Streams, cancel)()
	}
	watcher, err := s.store.Watch(ctx, p.from)
	if err != nil {
		if errors.Is(err, store.ErrCompacted) {
			err = errorf(http.StatusGone, reasonGone, "fromRevision",
				"revision %d is compacted (history kept after %d); list again and watch from the list's revision",
				p.from, s.store.CompactedRevision())
		}
		s.writeError(w, r, err)
		return
	}
	s.metrics.watches.Inc()
	defer s.metrics.watches.Dec()

	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives any server write timeout
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprintf(w, "retry: 1000\n: watching from revision %d\n\n", p.from); err != nil {
		return
	}
	if rc.Flush() != nil {
		return
	}

	// Events are filtered for the caller as they come, so that a watch loses at once what a
	// change of roles takes away.
	allowed := rbac.CheckerFrom(ctx).Filter(rbac.VerbWatch)
	match := func(ev store.Event) bool {
		return p.matches(ev) && allowed.Allows(string(ev.Key.Kind), keyTenant(ev.Key))
	}
	heartbeat := time.NewTicker(s.cfg.HeartbeatInterval)
	defer heartbeat.Stop()
	var buf bytes.Buffer
	for {
		select {
		case <-ctx.Done():
			return
		case <-heartbeat.C:
			if _, err := io.WriteString(w, ": heartbeat\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case ev, ok := <-watcher.Events():
			if !ok {
				s.endWatch(w, rc, watcher.Err())
				return
			}
			if !match(ev) {
				continue
			}
			buf.Reset()
			if err := writeEvent(&buf, ev); err != nil {
				s.log.Error("encoding a watch event", "revision", ev.Revision, "err", err)
				return
			}
			// Drain what is already queued before flushing, so a burst costs one flush.
			for more := true; more; {
				select {
				case next, ok := <-watcher.Events():
					if !ok {
						more = false
						break
					}
					if match(next) {
						if err := writeEvent(&buf, next); err != nil {
							return
						}
					}
					if buf.Len() > 64<<10 {
						more = false
					}
				default:
					more = false
				}
			}
			if _, err := w.Write(buf.Bytes()); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}

func writeEvent(buf *bytes.Buffer, ev store.Event) error {
	data, err := json.Marshal(watchEvent{Revision: ev.Revision, Type: eventType(ev.Type), Object: ev.Object})
	if err != nil {
		return err
	}
	fmt.Fprintf(buf, "id: %d\nevent: %s\ndata: %s\n\n", ev.Revision, eventType(ev.Type), data)
	return nil
}

// endWatch tells the client why the stream ends, unless it ended because the client left.
func (s *server) endWatch(w http.ResponseWriter, rc *http.ResponseController, cause error) {
	if cause == nil {
		return
	}
	status, reason := http.StatusServiceUnavailable, reasonServiceUnavailable
	if errors.Is(cause, store.ErrCompacted) {
		status, reason = http.StatusGone, reasonGone
	}
	data, _ := json.Marshal(errorBody{Code: status, Reason: reason,
		Message: "watch ended: " + cause.Error() + "; resume with Last-Event-ID"})
	_, _ = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", eventError, data)
	_ = rc.Flush()
}
