package northbound

import (
	"math/rand/v2"
	"sync"

	"github.com/dsnscale/dsnscale/controlplane/model"
)

// entry is one object the load works on.
type entry struct {
	path    string        // the object's item path, from the API root
	obj     *model.Object // its last known state, resourceVersion included
	created bool          // created by this run's operations (and so deletable by them)
	busy    bool          // checked out by a write
	all     int           // index in pool.items
	mine    int           // index in pool.created, when created
}

// pool holds the objects of one kind. Writes check an object out so that no two writes race
// on one resourceVersion; reads pick any object.
type pool struct {
	mu      sync.Mutex
	items   []*entry
	created []*entry
}

// probes is how many random objects a checkout tries before it gives up.
const probes = 16

func (p *pool) add(e *entry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e.all = len(p.items)
	p.items = append(p.items, e)
	if e.created {
		e.mine = len(p.created)
		p.created = append(p.created, e)
	}
}

// remove drops a checked-out entry (the object is gone).
func (p *pool) remove(e *entry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	last := p.items[len(p.items)-1]
	p.items[e.all], last.all = last, e.all
	p.items = p.items[:len(p.items)-1]
	if e.created {
		last := p.created[len(p.created)-1]
		p.created[e.mine], last.mine = last, e.mine
		p.created = p.created[:len(p.created)-1]
	}
}

// randomPath returns the path of any object, busy or not.
func (p *pool) randomPath() (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.items) == 0 {
		return "", false
	}
	return p.items[rand.IntN(len(p.items))].path, true
}

// checkout reserves up to n distinct idle objects (only created ones if createdOnly).
func (p *pool) checkout(n int, createdOnly bool) []*entry {
	p.mu.Lock()
	defer p.mu.Unlock()
	from := p.items
	if createdOnly {
		from = p.created
	}
	var out []*entry
	for try := 0; try < probes*n && len(out) < n && len(from) > 0; try++ {
		e := from[rand.IntN(len(from))]
		if !e.busy {
			e.busy = true
			out = append(out, e)
		}
	}
	return out
}

// release returns checked-out entries.
func (p *pool) release(es ...*entry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range es {
		e.busy = false
	}
}

// snapshot returns the entries, for teardown.
func (p *pool) snapshot() []*entry {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*entry(nil), p.items...)
}

func (p *pool) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.items)
}
