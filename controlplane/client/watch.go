package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/dsnscale/dsnscale/controlplane/model"
)

// Watch event types.
const (
	EventAdded    = "ADDED"
	EventModified = "MODIFIED"
	EventDeleted  = "DELETED"
)

// maxEventBytes bounds one server-sent event, so that a broken stream cannot grow a line forever.
const maxEventBytes = 16 << 20

// Event is one change delivered by a watch.
type Event struct {
	Revision uint64        `json:"revision"`
	Type     string        `json:"type"` // EventAdded, EventModified or EventDeleted
	Object   *model.Object `json:"object"`
}

// WatchOptions say where a watch starts and what it delivers.
type WatchOptions struct {
	// FromRevision: deliver changes after this revision (0: every change the server still has).
	FromRevision uint64
	// FromNow ignores FromRevision and delivers only changes after the server's current revision.
	FromNow bool
	// Kind keeps only changes of one kind (Tenant, Network or Policy).
	Kind model.Kind
	// Tenant keeps only the tenant itself and the objects inside it.
	Tenant string
}

// Watch is an open watch stream. Next returns its events in revision order.
type Watch struct {
	body   io.ReadCloser
	rd     *bufio.Reader
	cancel context.CancelFunc
	last   uint64
}

// Watch opens a watch stream. A revision the server has compacted fails with a 410 *APIError:
// list again and watch from the list's revision. To resume a stream that ended, watch again
// from LastRevision.
func (c *Client) Watch(ctx context.Context, opts WatchOptions) (*Watch, error) {
	q := url.Values{}
	if !opts.FromNow {
		q.Set("fromRevision", strconv.FormatUint(opts.FromRevision, 10))
	}
	if opts.Kind != "" {
		q.Set("kind", string(opts.Kind))
	}
	if opts.Tenant != "" {
		q.Set("tenant", opts.Tenant)
	}
	ctx, cancel := context.WithCancel(ctx)
	var resp *http.Response
	for attempt := 0; ; attempt++ {
		req, err := c.newRequest(ctx, http.MethodGet, apiPrefix+"/watch", q, nil)
		if err != nil {
			cancel()
			return nil, err
		}
		req.Header.Set("Accept", "text/event-stream")
		resp, err = c.hc.Do(req)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("client: watch: %w", err)
		}
		if resp.StatusCode != http.StatusUnauthorized || attempt > 0 || c.login == nil {
			break
		}
		resp.Body.Close()
		c.login.invalidate(req.Header.Get("Authorization"))
	}
	if resp.StatusCode != http.StatusOK {
		defer cancel()
		defer resp.Body.Close()
		return nil, readAPIError(resp)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		cancel()
		resp.Body.Close()
		return nil, fmt.Errorf("client: watch: answer is %q, not an event stream", ct)
	}
	return &Watch{body: resp.Body, rd: bufio.NewReaderSize(resp.Body, 64<<10), cancel: cancel, last: opts.FromRevision}, nil
}

// Next blocks until the next change and returns it. When the stream ends it returns io.EOF (the
// server closed it), an *APIError (the server said why: 410 for a compacted revision, 503 for a
// watcher that fell behind or a store that went away), or the context's error.
func (w *Watch) Next() (Event, error) {
	var id, typ string
	var data strings.Builder
	size := 0
	for {
		line, err := w.rd.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return Event{}, io.EOF
			}
			return Event{}, fmt.Errorf("client: watch: %w", err)
		}
		if size += len(line); size > maxEventBytes {
			return Event{}, fmt.Errorf("client: watch: an event is over %d bytes", maxEventBytes)
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" { // end of an event
			if data.Len() == 0 {
				id, typ, size = "", "", 0
				continue
			}
			return w.event(id, typ, data.String())
		}
		if line[0] == ':' { // a comment: heartbeat
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			id = value
		case "event":
			typ = value
		case "data":
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(value)
		}
	}
}

func (w *Watch) event(id, typ, data string) (Event, error) {
	if typ == "ERROR" {
		ae := &APIError{}
		if err := json.Unmarshal([]byte(data), ae); err != nil || ae.Code == 0 {
			return Event{}, fmt.Errorf("client: watch: unreadable ERROR event %q", data)
		}
		return Event{}, ae
	}
	var ev Event
	if err := json.Unmarshal([]byte(data), &ev); err != nil {
		return Event{}, fmt.Errorf("client: watch: event %s: %w", id, err)
	}
	if ev.Type != typ || strconv.FormatUint(ev.Revision, 10) != id {
		return Event{}, fmt.Errorf("client: watch: event id %q type %q disagrees with its data (revision %d, type %q)", id, typ, ev.Revision, ev.Type)
	}
	if ev.Revision <= w.last && w.last != 0 {
		return Event{}, fmt.Errorf("client: watch: revision %d after %d: out of order", ev.Revision, w.last)
	}
	w.last = ev.Revision
	return ev, nil
}

// LastRevision is the revision of the last event Next returned (or where the watch started).
func (w *Watch) LastRevision() uint64 { return w.last }

// Close ends the stream.
func (w *Watch) Close() error {
	w.cancel()
	return w.body.Close()
}
