package northbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/loadgen/mix"
)

// SetupStats says what Setup did.
type SetupStats struct {
	Created  int           `json:"created"`
	Adopted  int           `json:"adopted"` // already there: read and used as they are
	Assumed  int           `json:"assumed"` // setup "skip": taken to exist without a request
	DSNs     int           `json:"dsns"`    // DSN ids found for DSN reads
	Duration time.Duration `json:"durationNs"`
}

// TeardownStats says what Teardown did.
type TeardownStats struct {
	Deleted  int           `json:"deleted"`
	Missing  int           `json:"missing"` // already gone
	Failed   int           `json:"failed"`
	Duration time.Duration `json:"durationNs"`
}

// Setup makes the mix's population exist: it creates each object (tenants, then networks, then
// policies), adopts objects that already exist by reading them, and lists DSNs for DSN reads.
// With setup "skip" it assumes the population exists. It fails on the first object it can
// neither create nor read, with the HTTP status and the server's message.
func (w *Workload) Setup(ctx context.Context) (SetupStats, error) {
	start := time.Now()
	var st SetupStats
	g, p := w.gen, w.mix.Population
	phases := [][]*model.Object{nil, nil, nil}
	for t := 0; t < p.Tenants; t++ {
		phases[0] = append(phases[0], g.Tenant(t))
		for j := 0; j < p.NetworksPerTenant; j++ {
			phases[1] = append(phases[1], g.Network(t, j))
		}
		for k := 0; k < p.PoliciesPerTenant; k++ {
			phases[2] = append(phases[2], g.Policy(t, k))
		}
	}
	for _, objs := range phases {
		if w.mix.Setup == mix.SetupSkip {
			for _, o := range objs {
				w.pools[o.Kind].add(&entry{path: itemPath(o.Key()), obj: o})
				st.Assumed++
			}
			continue
		}
		var created, adopted atomic.Int64
		err := w.parallel(ctx, len(objs), func(ctx context.Context, i int) error {
			stored, made, err := w.ensure(ctx, objs[i])
			if err != nil {
				return err
			}
			if made {
				created.Add(1)
			} else {
				adopted.Add(1)
			}
			w.pools[stored.Kind].add(&entry{path: itemPath(stored.Key()), obj: stored})
			return nil
		})
		st.Created += int(created.Load())
		st.Adopted += int(adopted.Load())
		if err != nil {
			st.Duration = time.Since(start)
			return st, err
		}
	}
	ids := w.listDSNs(ctx)
	w.dsns.Store(&ids)
	st.DSNs = len(ids)
	st.Duration = time.Since(start)
	w.log.Info("setup done", "created", st.Created, "adopted", st.Adopted, "assumed", st.Assumed, "dsns", st.DSNs, "took", st.Duration)
	return st, nil
}

// ensure creates obj, or reads it when it already exists.
func (w *Workload) ensure(ctx context.Context, obj *model.Object) (*model.Object, bool, error) {
	r := w.sendJSON(ctx, http.MethodPost, collectionPath(obj.Kind, obj.Metadata.Tenant), obj)
	made := true
	if r.err == nil && r.status == http.StatusConflict {
		r = w.send(ctx, http.MethodGet, itemPath(obj.Key()), nil, true)
		made = false
	}
	if r.err != nil {
		return nil, false, fmt.Errorf("%w: %s: %w", ErrSetup, obj.Key(), r.err)
	}
	if !r.ok() {
		return nil, false, fmt.Errorf("%w: %s: HTTP %d", ErrSetup, obj.Key(), r.status)
	}
	stored, err := w.decodeObject(r.body)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %s: %w", ErrSetup, obj.Key(), err)
	}
	stored.Status = nil
	return stored, made, nil
}

// maxDSNs bounds the DSN ids kept for DSN reads.
const maxDSNs = 10000

// listDSNs collects DSN ids; a control plane without DSNs (or without the route) gives none,
// and DSN reads then count as no-object.
func (w *Workload) listDSNs(ctx context.Context) []string {
	var ids []string
	cont := ""
	for len(ids) < maxDSNs {
		path := "/dsns?limit=1000"
		if cont != "" {
			path += "&continue=" + url.QueryEscape(cont)
		}
		r := w.send(ctx, http.MethodGet, path, nil, true)
		if !r.ok() {
			w.log.Info("no DSNs for DSN reads", "status", r.status, "err", r.err)
			return ids
		}
		var page struct {
			Metadata struct {
				Continue string `json:"continue"`
			} `json:"metadata"`
			Items []model.Object `json:"items"`
		}
		if err := json.Unmarshal(r.body, &page); err != nil {
			w.log.Info("unreadable DSN list", "err", err)
			return ids
		}
		for _, o := range page.Items {
			ids = append(ids, o.Metadata.Name)
		}
		if page.Metadata.Continue == "" || len(page.Items) == 0 {
			return ids
		}
		cont = page.Metadata.Continue
	}
	return ids
}

// Teardown deletes every object the workload knows of - the population it set up or adopted
// and the objects its operations created - policies first, then networks, then tenants. Objects
// already gone count as missing, not failures.
func (w *Workload) Teardown(ctx context.Context) (TeardownStats, error) {
	start := time.Now()
	var st TeardownStats
	var deleted, missing, failed atomic.Int64
	var mu sync.Mutex
	var firstErr []string
	for _, kind := range []model.Kind{model.KindPolicy, model.KindNetwork, model.KindTenant} {
		es := w.pools[kind].snapshot()
		_ = w.parallel(ctx, len(es), func(ctx context.Context, i int) error {
			r := w.send(ctx, http.MethodDelete, es[i].path, nil, false)
			switch {
			case r.ok():
				deleted.Add(1)
				w.pools[kind].remove(es[i])
			case r.err == nil && r.status == http.StatusNotFound:
				missing.Add(1)
				w.pools[kind].remove(es[i])
			default:
				failed.Add(1)
				mu.Lock()
				if len(firstErr) < 3 {
					firstErr = append(firstErr, fmt.Sprintf("%s: status %d %v", es[i].path, r.status, r.err))
				}
				mu.Unlock()
			}
			return nil
		})
	}
	st.Deleted, st.Missing, st.Failed = int(deleted.Load()), int(missing.Load()), int(failed.Load())
	st.Duration = time.Since(start)
	if st.Failed > 0 {
		return st, fmt.Errorf("%w: %d objects not deleted (%s)", ErrTeardown, st.Failed, strings.Join(firstErr, "; "))
	}
	if err := ctx.Err(); err != nil {
		return st, err
	}
	return st, nil
}

// parallel runs fn for 0..n-1 on SetupConcurrency workers and returns the first error; after
// an error, the remaining calls are skipped.
func (w *Workload) parallel(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(w.cfg.SetupConcurrency, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}
