package distrib

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dsnscale/dsnscale/controlplane/api"
	"github.com/dsnscale/dsnscale/controlplane/model"
)

// Fleet-wide reads with ownership on. A replica knows the live state of the DSNs it serves
// only, so the Fleet methods ask the others over the bus: a DSN's GET, relabelling and
// decommissioning go to the replica that holds its partition; lists and convergence reports
// are scattered to every live replica and gathered, each answering for the partitions it
// serves when the request reaches it.
//
// What the reads guarantee: every DSN of a partition whose holder answered within
// Config.FleetTimeout appears with that replica's live state, once. A partition no live
// replica answered for (its lease is changing hands, or its holder is slow or gone) is answered
// from this replica's registry, as last read: its DSNs appear offline, behind, with no live
// state. A DSN admitted by another replica since this one last read the registry and whose
// holder did not answer is missing. Desired revisions are each holder's distributed revision,
// which may trail the store by the time it takes a replica to read a change.

// FleetSubject is where the replica named replica answers other replicas' fleet-wide reads.
// It is not a per-DSN subject, so DSNs cannot reach it.
func FleetSubject(replica string) string { return "cp.v1.distrib.fleet." + replica }

// Fleet operations.
const (
	fleetGet          = "get"
	fleetList         = "list"
	fleetConvergence  = "convergence"
	fleetDecommission = "decommission"
	fleetLabels       = "labels"
)

type fleetRequest struct {
	Op       string            `json:"op"`
	ID       string            `json:"id,omitempty"`
	Selector map[string]string `json:"selector,omitempty"`
	Limit    int               `json:"limit,omitempty"`
	After    string            `json:"after,omitempty"`
	Revision uint64            `json:"revision,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
}

// fleetChunk is one message of a replica's answer; a long answer is several, the last with
// More false.
type fleetChunk struct {
	Replica string `json:"replica"`
	// Partitions are the partitions the answer covers (in the first chunk).
	Partitions []int           `json:"partitions,omitempty"`
	Items      []*model.Object `json:"items,omitempty"`
	Conv       *convPart       `json:"conv,omitempty"`
	Latencies  []float64       `json:"latencies,omitempty"`
	Unknown    bool            `json:"unknown,omitempty"`
	Truncated  bool            `json:"truncated,omitempty"` // a list cut at its limit
	Error      string          `json:"error,omitempty"`
	More       bool            `json:"more,omitempty"`
}

// convPart is one replica's share of a convergence report.
type convPart struct {
	Total, AtOrPast, Behind int
	BehindDSNs              []string // sorted, at most maxBehindNames
}

// Chunk bounds: items and latencies per message (a message that still exceeds the bus's
// payload limit is split further).
const (
	chunkItems     = 256
	chunkLatencies = 16384
)

// subscribeFleet answers other replicas' fleet-wide reads.
func (d *Distributor) subscribeFleet() (*nats.Subscription, error) {
	s, err := d.cfg.Conn.Subscribe(FleetSubject(d.cfg.Replica), d.answerFleet)
	if err != nil {
		return nil, fmt.Errorf("distrib: subscribing to %s: %w", FleetSubject(d.cfg.Replica), err)
	}
	_ = s.SetPendingLimits(1<<16, 64<<20)
	return s, nil
}

func (d *Distributor) answerFleet(msg *nats.Msg) {
	if msg.Reply == "" {
		return
	}
	var req fleetRequest
	if err := json.Unmarshal(msg.Data, &req); err != nil {
		d.sendChunks(msg, fleetChunk{Error: "bad request: " + err.Error()})
		return
	}
	served := d.servedPartitions()
	in := func(id string) bool { return served[Partition(id, d.own.parts)] }
	c := fleetChunk{Partitions: trues(served)}
	switch req.Op {
	case fleetGet, fleetDecommission, fleetLabels:
		c.Partitions = nil
		var o *model.Object
		var err error
		switch {
		case !d.mine(req.ID):
			err = errors.New("not served here")
		case req.Op == fleetGet:
			o, err = d.dsnLocal(req.ID)
		case req.Op == fleetDecommission:
			err = d.decommissionLocal(req.ID)
		default:
			o, err = d.setLabelsLocal(req.ID, req.Labels)
		}
		switch {
		case errors.Is(err, api.ErrUnknownDSN):
			c.Unknown = true
		case err != nil:
			c.Error = err.Error()
		case o != nil:
			c.Items = []*model.Object{o}
		}
	case fleetList:
		c.Items, c.Truncated = d.listLocal(req.Selector, req.Limit, req.After, in)
	case fleetConvergence:
		part, lat, err := d.convergenceLocal(req.Revision, in)
		if err != nil {
			c.Error = err.Error()
			c.Partitions = nil
			break
		}
		c.Conv, c.Latencies = &part, lat
	default:
		c.Error = fmt.Sprintf("op: %q is not a fleet operation", req.Op)
		c.Partitions = nil
	}
	d.sendChunks(msg, c)
}

func trues(bs []bool) []int {
	var out []int
	for i, b := range bs {
		if b {
			out = append(out, i)
		}
	}
	return out
}

// sendChunks sends c as one or more messages that each fit the bus's payload limit.
func (d *Distributor) sendChunks(msg *nats.Msg, c fleetChunk) {
	c.Replica = d.cfg.Replica
	var parts []fleetChunk
	items, lat := c.Items, c.Latencies
	c.Items, c.Latencies = nil, nil
	for first := true; first || len(items) > 0 || len(lat) > 0; first = false {
		p := fleetChunk{Replica: c.Replica}
		if first {
			p = c
		}
		k := min(len(items), chunkItems)
		p.Items, items = items[:k], items[k:]
		k = min(len(lat), chunkLatencies)
		p.Latencies, lat = lat[:k], lat[k:]
		parts = append(parts, p)
	}
	limit := int(d.cfg.Conn.MaxPayload()) - 1024
	for i := range parts {
		parts[i].More = i < len(parts)-1
		d.sendChunk(msg, parts[i], limit)
	}
}

func (d *Distributor) sendChunk(msg *nats.Msg, c fleetChunk, limit int) {
	b, err := json.Marshal(&c)
	if err != nil {
		d.log.Error("encoding a fleet answer", "err", err)
		return
	}
	if len(b) > limit && len(c.Items) > 1 {
		h := len(c.Items) / 2
		a, z := c, c
		a.Items, a.More, a.Latencies = c.Items[:h], true, nil
		z.Items, z.Partitions, z.Conv = c.Items[h:], nil, nil
		d.sendChunk(msg, a, limit)
		d.sendChunk(msg, z, limit)
		return
	}
	if err := msg.Respond(b); err != nil {
		d.log.Debug("fleet answer not sent", "err", err)
	}
}

// ask sends req to the replica named to and gathers its answer.
func (d *Distributor) ask(ctx context.Context, to string, req fleetRequest) (fleetChunk, error) {
	got, err := d.gather(ctx, []string{to}, req)
	if err != nil {
		return fleetChunk{}, err
	}
	a, ok := got[to]
	if !ok {
		return fleetChunk{}, fmt.Errorf("replica %s did not answer within %v", to, d.cfg.FleetTimeout)
	}
	if a.Error != "" {
		return a, fmt.Errorf("replica %s: %s", to, a.Error)
	}
	return a, nil
}

// gather sends req to the replicas named and returns the complete answers that arrived
// within FleetTimeout, merged per replica. An answer that is an error is returned as such.
func (d *Distributor) gather(ctx context.Context, to []string, req fleetRequest) (map[string]fleetChunk, error) {
	data, err := json.Marshal(&req)
	if err != nil {
		return nil, err
	}
	nc := d.cfg.Conn
	// Each replica answers to an inbox of its own, so that the bus's "no responders" for a
	// replica that is gone (its lease not yet lapsed) says which one, and the read does not
	// wait out FleetTimeout for it.
	inbox := nc.NewInbox()
	ch := make(chan *nats.Msg, 1024)
	sub, err := nc.ChanSubscribe(inbox+".*", ch)
	if err != nil {
		return nil, fmt.Errorf("distrib: fleet read: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	_ = sub.SetPendingLimits(-1, -1)
	want := map[string]bool{}
	replyOf := map[string]string{} // reply subject -> replica
	for i, r := range to {
		reply := inbox + "." + strconv.Itoa(i)
		if err := nc.PublishRequest(FleetSubject(r), reply, data); err != nil {
			d.log.Debug("fleet read not sent", "replica", r, "err", err)
			continue
		}
		want[r] = true
		replyOf[reply] = r
	}
	partial := map[string]*fleetChunk{}
	done := map[string]fleetChunk{}
	timeout := time.NewTimer(d.cfg.FleetTimeout) // a bound on waiting, not logic under test
	defer timeout.Stop()
	for len(done) < len(want) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timeout.C:
			return done, nil
		case m := <-ch:
			if noResponders(m) {
				if r, ok := replyOf[m.Subject]; ok && want[r] {
					d.log.Debug("fleet read: replica not subscribed", "replica", r)
					delete(want, r)
				}
				continue
			}
			var c fleetChunk
			if json.Unmarshal(m.Data, &c) != nil || !want[c.Replica] {
				continue
			}
			if _, finished := done[c.Replica]; finished {
				continue
			}
			acc := partial[c.Replica]
			if acc == nil {
				acc = &fleetChunk{Replica: c.Replica}
				partial[c.Replica] = acc
			}
			acc.Partitions = append(acc.Partitions, c.Partitions...)
			acc.Items = append(acc.Items, c.Items...)
			acc.Latencies = append(acc.Latencies, c.Latencies...)
			acc.Unknown = acc.Unknown || c.Unknown
			acc.Truncated = acc.Truncated || c.Truncated
			if c.Conv != nil {
				acc.Conv = c.Conv
			}
			if c.Error != "" {
				acc.Error = c.Error
			}
			if !c.More {
				done[c.Replica] = *acc
			}
		}
	}
	return done, nil
}

// noResponders reports whether m is the bus's answer that nobody subscribes to the subject a
// request went to (status 503, no payload).
func noResponders(m *nats.Msg) bool {
	return len(m.Data) == 0 && m.Header.Get("Status") == "503"
}

// liveReplicas are the live replicas other than this one.
func (d *Distributor) liveReplicas() []string {
	o := d.own
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.l == nil {
		return nil
	}
	var out []string
	for _, r := range o.l.live {
		if r != d.cfg.Replica {
			out = append(out, r)
		}
	}
	return out
}

// scatter asks every live replica (this one included) for its share of a list or convergence
// report. It returns, per partition, the answer that covers it (the first to claim it), and
// the partitions nobody answered for.
func (d *Distributor) scatter(ctx context.Context, req fleetRequest, local fleetChunk) (map[string]fleetChunk, []string, []bool, error) {
	got, err := d.gather(ctx, d.liveReplicas(), req)
	if err != nil {
		return nil, nil, nil, err
	}
	got[d.cfg.Replica] = local
	claim := make([]string, d.own.parts)
	// This replica's answer first, then the others in name order: a partition claimed twice
	// (it changed hands while the request was out) is taken from one answer only.
	names := []string{d.cfg.Replica}
	for _, r := range slices.Sorted(maps.Keys(got)) {
		if r != d.cfg.Replica {
			names = append(names, r)
		}
	}
	for _, r := range names {
		a := got[r]
		if a.Error != "" {
			continue
		}
		for _, p := range a.Partitions {
			if p >= 0 && p < len(claim) && claim[p] == "" {
				claim[p] = r
			}
		}
	}
	uncovered := make([]bool, d.own.parts)
	for p, r := range claim {
		uncovered[p] = r == ""
	}
	return got, claim, uncovered, nil
}

// DSN returns the DSN object with its live status, or an error wrapping api.ErrUnknownDSN.
// With ownership on, the replica that serves the DSN answers (see FleetSubject for what the
// answer guarantees).
func (d *Distributor) DSN(ctx context.Context, id string) (*model.Object, error) {
	if d.own == nil {
		return d.dsnLocal(id)
	}
	if owner := d.ownerOfDSN(id); owner != "" && owner != d.cfg.Replica {
		a, err := d.ask(ctx, owner, fleetRequest{Op: fleetGet, ID: id})
		switch {
		case err == nil && a.Unknown:
			return nil, fmt.Errorf("%w: %q", api.ErrUnknownDSN, id)
		case err == nil && len(a.Items) == 1:
			return a.Items[0], nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		}
		d.log.Debug("DSN read from the registry: its replica did not answer", "dsn", id, "replica", owner, "err", err)
	}
	return d.dsnLocal(id)
}

// DSNs lists the DSNs whose labels match selector, in id order: at most limit (0 for all)
// after the id continueAfter. next is the id to continue after, or empty at the end. With
// ownership on, every live replica answers for the DSNs it serves (see FleetSubject).
func (d *Distributor) DSNs(ctx context.Context, selector map[string]string, limit int, continueAfter string) ([]*model.Object, string, error) {
	if limit < 0 {
		return nil, "", fmt.Errorf("limit: %d must not be negative", limit)
	}
	if d.own == nil {
		items, more := d.listLocal(selector, limit, continueAfter, nil)
		return page(items, limit, more)
	}
	req := fleetRequest{Op: fleetList, Selector: selector, Limit: limit, After: continueAfter}
	served := d.servedPartitions()
	local := fleetChunk{Replica: d.cfg.Replica, Partitions: trues(served)}
	local.Items, local.Truncated = d.listLocal(selector, limit, continueAfter, func(id string) bool { return served[Partition(id, d.own.parts)] })
	got, claim, uncovered, err := d.scatter(ctx, req, local)
	if err != nil {
		return nil, "", err
	}
	// Each answer holds the first limit DSNs of its partitions, so the first limit of their
	// union are the first limit of the fleet; there are more when the union holds more, or
	// when an answer was cut short.
	var items []*model.Object
	more := false
	seen := map[string]bool{}
	for r, a := range got {
		if a.Error != "" {
			continue
		}
		more = more || a.Truncated
		for _, o := range a.Items {
			if claim[Partition(o.Metadata.Name, d.own.parts)] == r && !seen[o.Metadata.Name] {
				seen[o.Metadata.Name] = true
				items = append(items, o)
			}
		}
	}
	rest, restMore := d.listLocal(selector, limit, continueAfter, func(id string) bool { return uncovered[Partition(id, d.own.parts)] })
	more = more || restMore
	for _, o := range rest {
		if !seen[o.Metadata.Name] {
			items = append(items, o)
		}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].Metadata.Name < items[j].Metadata.Name })
	if limit > 0 && len(items) > limit {
		items, more = items[:limit], true
	}
	return page(items, limit, more)
}

// page returns a page of a list and the id to continue after, when more follow.
func page(items []*model.Object, limit int, more bool) ([]*model.Object, string, error) {
	if limit > 0 && more && len(items) > 0 {
		return items, items[len(items)-1].Metadata.Name, nil
	}
	return items, "", nil
}

// listLocal renders the DSNs of this replica's memory that match selector, come after after
// and pass in (nil: all), in id order: at most n (0: all), and whether more matched.
func (d *Distributor) listLocal(selector map[string]string, n int, after string, in func(string) bool) ([]*model.Object, bool) {
	sel := model.Selector{MatchLabels: selector}
	d.mu.RLock()
	defer d.mu.RUnlock()
	ids := make([]string, 0, len(d.dsns))
	for id, m := range d.dsns {
		if id > after && (in == nil || in(id)) && sel.Matches(m.labels) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	more := n > 0 && len(ids) > n
	if more {
		ids = ids[:n]
	}
	now := d.clock.Now()
	out := make([]*model.Object, len(ids))
	for i, id := range ids {
		out[i] = d.object(d.dsns[id], now)
	}
	return out, more
}

// Convergence reports how many known DSNs have applied rev (0: the distributed revision), names
// the first stragglers and gives the quantiles of the time from the revision's arrival at the
// distributor to each ack at or past it. With ownership on, every live replica reports on the
// DSNs it serves, timing acks from the revision's arrival at itself (see FleetSubject).
func (d *Distributor) Convergence(ctx context.Context, rev uint64) (model.Convergence, error) {
	if rev == 0 {
		d.mu.RLock()
		rev = d.rev
		d.mu.RUnlock()
	}
	if d.own == nil {
		part, lat, err := d.convergenceLocal(rev, nil)
		if err != nil {
			return model.Convergence{}, err
		}
		return convergence(rev, []convPart{part}, lat), nil
	}
	served := d.servedPartitions()
	part, lat, err := d.convergenceLocal(rev, func(id string) bool { return served[Partition(id, d.own.parts)] })
	if err != nil {
		return model.Convergence{}, err
	}
	local := fleetChunk{Replica: d.cfg.Replica, Partitions: trues(served), Conv: &part, Latencies: lat}
	got, _, uncovered, err := d.scatter(ctx, fleetRequest{Op: fleetConvergence, Revision: rev}, local)
	if err != nil {
		return model.Convergence{}, err
	}
	// An answer covers all of its partitions or none: counts cannot be split by partition.
	// A partition claimed twice is counted in the first claimant's answer (this replica's
	// first): another claimant's answer is dropped and the partitions it claimed alone are
	// answered from the registry.
	var parts []convPart
	var lats []float64
	claimed := make([]bool, d.own.parts)
	names := append([]string{d.cfg.Replica}, slices.DeleteFunc(slices.Sorted(maps.Keys(got)), func(r string) bool { return r == d.cfg.Replica })...)
	for _, r := range names {
		a := got[r]
		if a.Error != "" || a.Conv == nil || slices.ContainsFunc(a.Partitions, func(p int) bool { return p < 0 || p >= len(claimed) || claimed[p] }) {
			continue
		}
		for _, p := range a.Partitions {
			claimed[p] = true
		}
		parts = append(parts, *a.Conv)
		lats = append(lats, a.Latencies...)
	}
	for p := range uncovered {
		uncovered[p] = !claimed[p]
	}
	rest, _, err := d.convergenceLocal(rev, func(id string) bool { return uncovered[Partition(id, d.own.parts)] })
	if err != nil {
		return model.Convergence{}, err
	}
	parts = append(parts, rest)
	return convergence(rev, parts, lats), nil
}

// convergenceLocal counts the DSNs of this replica's memory that pass in (nil: all) at rev and
// returns the ack latencies, in milliseconds, of those at or past it.
func (d *Distributor) convergenceLocal(rev uint64, in func(string) bool) (convPart, []float64, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if !d.loaded {
		return convPart{}, nil, ErrNotReady
	}
	c := convPart{BehindDSNs: []string{}}
	seenAt, timed := d.seen.at(rev)
	var lat []float64
	for id, m := range d.dsns {
		if in != nil && !in(id) {
			continue
		}
		c.Total++
		if m.applied < rev {
			c.Behind++
			c.BehindDSNs = append(c.BehindDSNs, id)
			continue
		}
		c.AtOrPast++
		if !timed {
			continue
		}
		for _, a := range m.acks {
			if a.rev >= rev {
				lat = append(lat, float64(a.at.Sub(seenAt).Microseconds())/1000)
				break
			}
		}
	}
	sort.Strings(c.BehindDSNs)
	if len(c.BehindDSNs) > maxBehindNames {
		c.BehindDSNs = c.BehindDSNs[:maxBehindNames]
	}
	return c, lat, nil
}

// convergence adds up the parts of a convergence report.
func convergence(rev uint64, parts []convPart, lat []float64) model.Convergence {
	c := model.Convergence{Revision: rev, BehindDSNs: []string{}}
	for _, p := range parts {
		c.Total += p.Total
		c.AtOrPast += p.AtOrPast
		c.Behind += p.Behind
		c.BehindDSNs = append(c.BehindDSNs, p.BehindDSNs...)
	}
	sort.Strings(c.BehindDSNs)
	if len(c.BehindDSNs) > maxBehindNames {
		c.BehindDSNs = c.BehindDSNs[:maxBehindNames]
	}
	if len(lat) > 0 {
		sort.Float64s(lat)
		c.AckLatencyMs = map[string]float64{
			"p50": quantile(lat, 0.50), "p90": quantile(lat, 0.90), "p99": quantile(lat, 0.99), "max": lat[len(lat)-1],
		}
	}
	return c
}

// Decommission forgets a DSN: its registry entry, session and status. A DSN that says Hello
// afterwards is admitted as a new one. With ownership on, the replica serving the DSN does it.
func (d *Distributor) Decommission(ctx context.Context, id string) error {
	if d.own != nil {
		if owner := d.ownerOfDSN(id); owner != "" && owner != d.cfg.Replica {
			a, err := d.ask(ctx, owner, fleetRequest{Op: fleetDecommission, ID: id})
			if err != nil {
				return fmt.Errorf("distrib: decommissioning %q through replica %s: %w", id, owner, err)
			}
			lerr := d.decommissionLocal(id) // this replica's registry copy
			if a.Unknown && errors.Is(lerr, api.ErrUnknownDSN) {
				return lerr
			}
			return nil
		}
	}
	return d.decommissionLocal(id)
}

// SetLabels gives a DSN new labels, as the northbound API decides (its tenant stays). The DSN
// moves to the group of its new labels and, if it is live, is resynchronised to that group's
// view from a snapshot. It returns the DSN as it now is, or an error wrapping
// api.ErrUnknownDSN. With ownership on, the replica serving the DSN does it.
func (d *Distributor) SetLabels(ctx context.Context, id string, labels map[string]string) (*model.Object, error) {
	if d.own != nil {
		if owner := d.ownerOfDSN(id); owner != "" && owner != d.cfg.Replica {
			a, err := d.ask(ctx, owner, fleetRequest{Op: fleetLabels, ID: id, Labels: labels})
			switch {
			case err != nil:
				return nil, fmt.Errorf("distrib: relabelling %q through replica %s: %w", id, owner, err)
			case a.Unknown:
				return nil, fmt.Errorf("%w: %q", api.ErrUnknownDSN, id)
			case len(a.Items) != 1:
				return nil, fmt.Errorf("distrib: relabelling %q through replica %s: no DSN in the answer", id, owner)
			}
			return a.Items[0], nil
		}
	}
	return d.setLabelsLocal(id, labels)
}
