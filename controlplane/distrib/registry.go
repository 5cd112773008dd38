package distrib

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/wire"
)

// record is a DSN's registry entry, one KV value per DSN keyed by its id. Only what admission
// establishes is persisted; live state is rebuilt from Hellos, acks and heartbeats.
type record struct {
	ID         string            `json:"id"`
	Tenant     string            `json:"tenant,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	Spec       model.DSNSpec     `json:"spec"`
	AdmittedAt time.Time         `json:"admittedAt"`
}

func (m *dsn) record() *record {
	return &record{ID: m.id, Tenant: m.tenant, Labels: m.labels, Spec: m.spec, AdmittedAt: m.admittedAt}
}

// loadRegistry reads every record of the bucket. Records that do not decode or carry a bad id
// are logged and skipped: the DSN will be admitted afresh when it says Hello.
func loadRegistry(ctx context.Context, kv jetstream.KeyValue, log *slog.Logger) ([]*record, error) {
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("distrib: reading the registry: %w", err)
	}
	defer func() { _ = w.Stop() }()
	var out []*record
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("distrib: reading the registry: watch closed")
			}
			if e == nil {
				return out, nil // the initial values are all delivered
			}
			var r record
			if err := json.Unmarshal(e.Value(), &r); err != nil || r.ID != e.Key() || !wire.ValidID(r.ID) {
				log.Warn("skipping a bad registry record", "key", e.Key(), "err", err)
				continue
			}
			out = append(out, &r)
		}
	}
}

// registryWriter persists registry changes in the background, coalesced per DSN, so that
// admission never waits on storage. Losing a write costs nothing but efficiency: the DSN's
// next Hello carries everything the record holds.
type registryWriter struct {
	kv     jetstream.KeyValue
	log    *slog.Logger
	m      *metrics
	mu     sync.Mutex
	q      map[string]*record // nil value: delete
	signal chan struct{}
}

func newRegistryWriter(kv jetstream.KeyValue, log *slog.Logger, m *metrics) *registryWriter {
	return &registryWriter{kv: kv, log: log, m: m, q: map[string]*record{}, signal: make(chan struct{}, 1)}
}

func (w *registryWriter) put(r *record) { w.set(r.ID, r) }
func (w *registryWriter) del(id string) { w.set(id, nil) }

func (w *registryWriter) set(id string, r *record) {
	w.mu.Lock()
	w.q[id] = r
	n := len(w.q)
	w.mu.Unlock()
	w.m.queueDepth.WithLabelValues("registry").Set(float64(n))
	notify(w.signal)
}

func (w *registryWriter) run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			// Write what is left, briefly, so that a clean stop keeps recent admissions.
			fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			w.flush(fctx)
			cancel()
			return nil
		case <-w.signal:
			w.flush(ctx)
		}
	}
}

func (w *registryWriter) flush(ctx context.Context) {
	w.mu.Lock()
	q := w.q
	w.q = map[string]*record{}
	w.mu.Unlock()
	w.m.queueDepth.WithLabelValues("registry").Set(0)
	for id, r := range q {
		if ctx.Err() != nil {
			return
		}
		var err error
		if r == nil {
			err = w.kv.Purge(ctx, id)
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				err = nil
			}
		} else {
			var b []byte
			if b, err = json.Marshal(r); err == nil {
				_, err = w.kv.Put(ctx, id, b)
			}
		}
		if err != nil {
			w.m.registryWrites.WithLabelValues("error").Inc()
			w.log.Warn("registry write failed", "dsn", id, "err", err)
			continue
		}
		w.m.registryWrites.WithLabelValues("ok").Inc()
	}
}
