package northbound

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/loadgen"
)

// noObject is the outcome of an operation the pools cannot feed.
var noObject = loadgen.Outcome{Class: loadgen.ClassNoObject}

func (w *Workload) get(ctx context.Context, kind model.Kind) loadgen.Outcome {
	var path string
	if kind == model.KindDSN {
		ids := *w.dsns.Load()
		if len(ids) == 0 {
			return noObject
		}
		path = "/dsns/" + url.PathEscape(ids[rand.IntN(len(ids))])
	} else {
		p, ok := w.pools[kind].randomPath()
		if !ok {
			return noObject
		}
		path = p
	}
	return w.send(ctx, http.MethodGet, path, nil, false).outcome()
}

func (w *Workload) list(ctx context.Context, kind model.Kind, size int) loadgen.Outcome {
	path := collectionPath(kind, "")
	if kind.Namespaced() {
		path = collectionPath(kind, w.randomTenant())
	}
	return w.send(ctx, http.MethodGet, path+"?limit="+strconv.Itoa(size), nil, false).outcome()
}

func (w *Workload) create(ctx context.Context, kind model.Kind) loadgen.Outcome {
	serial := w.serial.Add(1)
	var obj *model.Object
	switch kind {
	case model.KindTenant:
		obj = w.gen.NewTenant(w.cfg.RunID, serial)
	case model.KindNetwork:
		obj = w.gen.NewNetwork(w.randomTenant(), w.cfg.RunID, serial)
	case model.KindPolicy:
		t := w.randomTenant()
		obj = w.gen.NewPolicy(t, w.nets[t], w.cfg.RunID, serial)
	}
	r := w.sendJSON(ctx, http.MethodPost, collectionPath(kind, obj.Metadata.Tenant), obj)
	out := r.outcome()
	if !r.ok() {
		return out
	}
	stored, err := w.decodeObject(r.body)
	if err != nil {
		out.Err = err
		return out
	}
	w.pools[kind].add(&entry{path: itemPath(stored.Key()), obj: stored, created: true})
	return out
}

func (w *Workload) update(ctx context.Context, kind model.Kind) loadgen.Outcome {
	p := w.pools[kind]
	es := p.checkout(1, false)
	if len(es) == 0 {
		return noObject
	}
	e := es[0]
	defer p.release(e)
	r := w.sendJSON(ctx, http.MethodPut, e.path, w.gen.Mutate(e.obj, w.serial.Add(1)))
	out := r.outcome()
	switch {
	case r.ok():
		stored, err := w.decodeObject(r.body)
		if err != nil {
			out.Err = err
			return out
		}
		e.obj = stored
	case r.status == http.StatusConflict:
		w.refresh(ctx, p, e) // someone else wrote it: carry on from its current version
	case r.status == http.StatusNotFound:
		w.forget(p, e)
	}
	return out
}

// refresh reads an object again after a conflict, so later writes carry its current version.
func (w *Workload) refresh(ctx context.Context, p *pool, e *entry) {
	r := w.send(ctx, http.MethodGet, e.path, nil, true)
	switch {
	case r.ok():
		if o, err := w.decodeObject(r.body); err == nil {
			o.Status = nil
			e.obj = o
		}
	case r.status == http.StatusNotFound:
		w.forget(p, e)
	}
}

// forget drops an object that is gone; the caller's deferred release only clears busy.
func (w *Workload) forget(p *pool, e *entry) { p.remove(e) }

func (w *Workload) delete(ctx context.Context, kind model.Kind) loadgen.Outcome {
	p := w.pools[kind]
	es := p.checkout(1, true)
	if len(es) == 0 {
		return noObject
	}
	e := es[0]
	defer p.release(e)
	path := e.path
	if rv := e.obj.Metadata.ResourceVersion; rv != "" {
		path += "?resourceVersion=" + url.QueryEscape(rv)
	}
	r := w.send(ctx, http.MethodDelete, path, nil, false)
	switch {
	case r.ok(), r.status == http.StatusNotFound:
		w.forget(p, e)
	case r.status == http.StatusConflict:
		w.refresh(ctx, p, e)
	}
	return r.outcome()
}

type txOp struct {
	Op     string        `json:"op"`
	Object *model.Object `json:"object"`
}

type txRequest struct {
	Operations []txOp `json:"operations"`
}

type txResponse struct {
	Revision uint64 `json:"revision"`
	Results  []struct {
		Op     string        `json:"op"`
		Object *model.Object `json:"object"`
	} `json:"results"`
}

// transaction updates size objects of kind all or nothing.
func (w *Workload) transaction(ctx context.Context, kind model.Kind, size int) loadgen.Outcome {
	p := w.pools[kind]
	es := p.checkout(size, false)
	if len(es) < size {
		p.release(es...)
		return noObject
	}
	defer p.release(es...)
	req := txRequest{Operations: make([]txOp, len(es))}
	for i, e := range es {
		req.Operations[i] = txOp{Op: "update", Object: w.gen.Mutate(e.obj, w.serial.Add(1))}
	}
	r := w.sendJSON(ctx, http.MethodPost, "/transactions", req)
	out := r.outcome()
	switch {
	case r.ok():
		var resp txResponse
		if err := json.Unmarshal(r.body, &resp); err != nil || len(resp.Results) != len(es) {
			out.Err = fmt.Errorf("decoding the transaction answer: want %d results: %v", len(es), err)
			for _, e := range es {
				w.refresh(ctx, p, e)
			}
			return out
		}
		for i, res := range resp.Results {
			if res.Object != nil {
				w.noteRevision(res.Object.Metadata.ResourceVersion)
				es[i].obj = res.Object
			}
		}
	case r.status == http.StatusConflict, r.status == http.StatusNotFound:
		for _, e := range es {
			w.refresh(ctx, p, e)
		}
	}
	return out
}

// errNoEvent is a watch stream that ended before its first event.
var errNoEvent = errors.New("watch stream ended before its first event")

// watch opens a watch just before the latest revision the workload has seen and waits for the
// first event: the latency of opening a watch and getting it going.
func (w *Workload) watch(ctx context.Context) loadgen.Outcome {
	from := w.maxRev.Load()
	if from > 0 {
		from--
	}
	ctx, cancel := context.WithTimeout(ctx, w.mix.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.base+"/watch?fromRevision="+strconv.FormatUint(from, 10), nil)
	if err != nil {
		return loadgen.Outcome{Err: err}
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("User-Agent", "dsnscale-loadgen")
	if auth, err := w.authorization(ctx); err != nil {
		return loadgen.Outcome{Err: err}
	} else if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := w.stream.Do(req)
	if err != nil {
		return loadgen.Outcome{Err: err}
	}
	defer resp.Body.Close()
	out := loadgen.Outcome{Status: resp.StatusCode}
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode >= 400 {
			out.Detail, out.BytesIn = failureDetail(resp.Body)
		}
		return out
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		out.BytesIn += int64(len(line)) + 1
		if strings.HasPrefix(line, "data:") {
			return out
		}
	}
	out.Err = sc.Err()
	if out.Err == nil {
		out.Err = errNoEvent
	}
	if ctx.Err() != nil {
		out.Err = ctx.Err()
	}
	return out
}

// search queries the events or audit index; "{tenant}" in the query is a random tenant.
func (w *Workload) search(ctx context.Context, index, query string) loadgen.Outcome {
	q := strings.ReplaceAll(query, "{tenant}", w.randomTenant())
	return w.send(ctx, http.MethodGet, "/"+index+"?q="+url.QueryEscape(q), nil, false).outcome()
}
