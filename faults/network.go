package faults

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/dsnscale/dsnscale/simdsn/netproxy"
)

// Paths network faults act on.
const (
	// PathFleet is each fleet unit's link to the control plane's bus (each DSN's, when DSNs
	// connect one by one).
	PathFleet = "fleet"
	// PathAPI is the load generator's link to the control plane's API.
	PathAPI = "api"
	// PathTSDB, PathSearch and PathInventory are the control plane's links to its backends
	// (when it uses ones outside its data directory).
	PathTSDB      = "tsdb"
	PathSearch    = "search"
	PathInventory = "inventory"
)

// BackendPaths are the paths of the control plane's links to its backends.
var BackendPaths = []string{PathTSDB, PathSearch, PathInventory}

// IsBackendPath reports whether path is a link to a backend.
func IsBackendPath(path string) bool { return slices.Contains(BackendPaths, path) }

// SpecPath returns the path a network fault acts on: its path (or backend) parameter, or the
// default, the fleet's links.
func SpecPath(spec Spec) string {
	if b, ok := spec.Params["backend"]; ok && spec.Kind == "backend-unreachable" {
		return b
	}
	if spec.Kind == "backend-unreachable" {
		return PathTSDB
	}
	if p := spec.Params["path"]; p != "" {
		return p
	}
	return PathFleet
}

// Link is one proxied network link: a fleet unit's link to the bus, or the load generator's to
// the API.
type Link struct {
	Name string
	// Labels are what a target's labels match: site, rack and unit for a fleet unit.
	Labels map[string]string
	// DSNs are the DSNs behind the link (none for the API link).
	DSNs []string
}

// Network is the part of the harness's network that network faults impair.
type Network interface {
	// Links lists the links of a path (PathFleet or PathAPI); none when the harness proxies
	// none there.
	Links(path string) []Link
	// Proxy returns the proxy a link goes through.
	Proxy(path, link string) (*netproxy.Proxy, error)
}

// Parameters shared by the network kinds.
var (
	paramToxicity = Param{Name: "toxicity", Type: TypeFraction, Default: "1",
		Description: "share of the links' connections the fault applies to, 0-1"}
	paramPath = Param{Name: "path", Type: TypeString, Default: PathFleet,
		Description: "fleet: each fleet unit's link to the bus; api: the load generator's link to the API; tsdb, search, inventory: the control plane's link to that backend"}
	paramBackend = Param{Name: "backend", Type: TypeString, Default: PathTSDB,
		Description: "the backend the control plane loses: tsdb, search or inventory"}
	paramDirection = Param{Name: "direction", Type: TypeString, Default: "both",
		Description: "upstream (toward the control plane), downstream (from it) or both"}
)

// netKind is a network fault kind: the toxics it puts on each selected link, or the link taken
// down.
type netKind struct {
	name, desc string
	params     []Param
	// toxics returns the toxics for one direction; nil with down set takes the link down.
	toxics func(p ParamValues) ([]netproxy.Toxic, error)
	down   bool
	// directed kinds take a direction parameter.
	directed bool
	// backend kinds take a backend parameter instead of a path.
	backend bool
	check   func(p ParamValues) error
}

func init() {
	for _, k := range netKinds {
		MustRegister(k)
	}
}

func (k *netKind) Name() string        { return k.name }
func (k *netKind) Description() string { return k.desc }
func (k *netKind) Scope() Scope        { return ScopeNetwork }

func (k *netKind) Params() []Param {
	out := append([]Param(nil), k.params...)
	if k.directed {
		out = append(out, paramDirection)
	}
	if !k.down {
		out = append(out, paramToxicity)
	}
	if k.backend {
		return append(out, paramBackend)
	}
	return append(out, paramPath)
}

// CheckSpec checks the path, the direction and what the kind asks of its values.
func (k *netKind) CheckSpec(spec Spec) error {
	p := ParamValues{Decl: k.Params(), Got: spec.Params}
	path := SpecPath(spec)
	switch {
	case k.backend && !IsBackendPath(path):
		return specErr("params.backend", "%q, want tsdb, search or inventory", path)
	case path == PathFleet:
	case path == PathAPI || IsBackendPath(path):
		if !spec.Target.IsZero() {
			return specErr("target", "the %s path is one link: it takes no target", path)
		}
	default:
		return specErr("params.path", "%q, want fleet, api, tsdb, search or inventory", path)
	}
	if k.directed {
		d, err := p.String("direction")
		if err != nil {
			return err
		}
		if _, ok := directions[d]; !ok {
			return specErr("params.direction", "%q, want upstream, downstream or both", d)
		}
	}
	if k.check != nil {
		return k.check(p)
	}
	return nil
}

var directions = map[string][]string{
	"upstream":   {netproxy.Upstream},
	"downstream": {netproxy.Downstream},
	"both":       {netproxy.Upstream, netproxy.Downstream},
}

var netSeq atomic.Int64

func (k *netKind) New(spec Spec, env Env) (Fault, error) {
	if err := k.CheckSpec(spec); err != nil {
		return nil, err
	}
	p := ParamValues{Decl: k.Params(), Got: spec.Params}
	path := SpecPath(spec)
	f := &netFault{kind: k, env: env, target: spec.Target, path: path}
	if k.down {
		return f, nil
	}
	toxicity, err := p.Fraction("toxicity")
	if err != nil {
		return nil, err
	}
	base, err := k.toxics(p)
	if err != nil {
		return nil, err
	}
	streams := []string{netproxy.Upstream, netproxy.Downstream}
	if k.directed {
		d, _ := p.String("direction")
		streams = directions[d]
	}
	// Toxic names are unique to the injection, so that two faults on a link never collide.
	prefix := fmt.Sprintf("%s-%d", k.name, netSeq.Add(1))
	for _, t := range base {
		for _, s := range streams {
			t.Name, t.Stream, t.Toxicity = prefix+"-"+t.Type+"-"+s, s, toxicity
			f.toxics = append(f.toxics, t)
		}
	}
	return f, nil
}

// netFault impairs the selected links of a path until recovered.
type netFault struct {
	kind   *netKind
	env    Env
	target Target
	path   string
	toxics []netproxy.Toxic

	mu        sync.Mutex
	done      []*netproxy.Proxy // links impaired so far
	affected  []string
	recovered bool
}

// Affected lists the DSNs behind the impaired links.
func (f *netFault) Affected() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.affected...)
}

// SelectLinks returns the links of a path that t chooses, sorted by name. Labels match the
// links' labels, Units name them; Count and Fraction choose among them with seed.
func SelectLinks(links []Link, t Target, seed int64) ([]Link, error) {
	cands := make([]DSN, len(links))
	byName := make(map[string]Link, len(links))
	for i, l := range links {
		cands[i] = DSN{ID: l.Name, Labels: l.Labels}
		byName[l.Name] = l
	}
	sel := t
	sel.DSNs, sel.Units = t.Units, nil
	ids, err := Select(cands, sel, seed)
	if err != nil {
		return nil, fmt.Errorf("links: %w", err)
	}
	out := make([]Link, len(ids))
	for i, id := range ids {
		out[i] = byName[id]
	}
	return out, nil
}

// Inject impairs every selected link. On an error the links impaired so far stay so until
// Recover.
func (f *netFault) Inject(ctx context.Context) error {
	links := f.env.Network.Links(f.path)
	if len(links) == 0 {
		return fmt.Errorf("%w: no proxied links on path %s", ErrUnsupported, f.path)
	}
	sel, err := SelectLinks(links, f.target, f.env.Seed)
	if err != nil {
		return err
	}
	for _, l := range sel {
		if err := ctx.Err(); err != nil {
			return err
		}
		px, err := f.env.Network.Proxy(f.path, l.Name)
		if err != nil {
			return err
		}
		f.mu.Lock()
		if f.recovered {
			f.mu.Unlock()
			return errors.New("recovered during injection")
		}
		err = f.apply(px)
		f.done = append(f.done, px)
		f.affected = append(f.affected, l.DSNs...)
		f.mu.Unlock()
		if err != nil {
			return fmt.Errorf("link %s: %w", l.Name, err)
		}
	}
	sort.Strings(f.affected)
	f.env.logger().Info("network fault injected", "kind", f.kind.name, "path", f.path, "links", len(sel))
	return nil
}

func (f *netFault) apply(px *netproxy.Proxy) error {
	if f.kind.down {
		return px.SetDown(true)
	}
	for _, t := range f.toxics {
		if err := px.Add(t); err != nil {
			return err
		}
	}
	return nil
}

// Recover lifts the fault from every link it impaired, once.
func (f *netFault) Recover(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.recovered {
		return nil
	}
	f.recovered = true
	var errs []error
	for _, px := range f.done {
		if f.kind.down {
			errs = append(errs, px.SetDown(false))
			continue
		}
		for _, t := range f.toxics {
			errs = append(errs, px.Remove(t.Name))
		}
	}
	return errors.Join(errs...)
}

func ms(p ParamValues, name string) (int64, error) {
	d, err := p.Duration(name)
	return d.Milliseconds(), err
}

var netKinds = []*netKind{
	{
		name: "net-latency", desc: "add latency (and jitter) to links' traffic", directed: true,
		params: []Param{
			{Name: "latency", Type: TypeDuration, Default: "100ms", Description: "delay added to each chunk of data, per direction"},
			{Name: "jitter", Type: TypeDuration, Default: "0s", Description: "the delay varies by up to this much either way"},
		},
		toxics: func(p ParamValues) ([]netproxy.Toxic, error) {
			lat, err := ms(p, "latency")
			if err != nil {
				return nil, err
			}
			jit, err := ms(p, "jitter")
			if err != nil {
				return nil, err
			}
			return []netproxy.Toxic{{Type: netproxy.Latency, Attributes: map[string]int64{"latency": lat, "jitter": jit}}}, nil
		},
		check: func(p ParamValues) error {
			lat, _ := p.Duration("latency")
			jit, _ := p.Duration("jitter")
			if jit > lat {
				return specErr("params.jitter", "%s is more than the latency %s", jit, lat)
			}
			return nil
		},
	},
	{
		name: "net-bandwidth", desc: "limit links' bandwidth", directed: true,
		params: []Param{{Name: "rate", Type: TypeInt, Default: "1024", Description: "KB/s per connection and direction; above 0"}},
		toxics: func(p ParamValues) ([]netproxy.Toxic, error) {
			r, err := p.Int("rate")
			return []netproxy.Toxic{{Type: netproxy.Bandwidth, Attributes: map[string]int64{"rate": int64(r)}}}, err
		},
		check: func(p ParamValues) error {
			if r, _ := p.Int("rate"); r <= 0 {
				return specErr("params.rate", "must be above 0 KB/s")
			}
			return nil
		},
	},
	{
		name: "net-slicer", desc: "slice links' data into small writes, each delayed", directed: true,
		params: []Param{
			{Name: "size", Type: TypeInt, Default: "64", Description: "average bytes per slice; above 0"},
			{Name: "variation", Type: TypeInt, Default: "32", Description: "slices vary by up to this many bytes; below size"},
			{Name: "delay", Type: TypeDuration, Default: "1ms", Description: "pause between slices"},
		},
		toxics: func(p ParamValues) ([]netproxy.Toxic, error) {
			size, _ := p.Int("size")
			v, _ := p.Int("variation")
			d, err := p.Duration("delay")
			return []netproxy.Toxic{{Type: netproxy.Slicer, Attributes: map[string]int64{
				"average_size": int64(size), "size_variation": int64(v), "delay": d.Microseconds()}}}, err
		},
		check: func(p ParamValues) error {
			size, _ := p.Int("size")
			v, _ := p.Int("variation")
			switch {
			case size <= 0:
				return specErr("params.size", "must be above 0")
			case v >= size:
				return specErr("params.variation", "%d must be below size %d", v, size)
			}
			return nil
		},
	},
	{
		name: "net-reset", desc: "reset links' connections (TCP RST) after a timeout; reconnections are reset too",
		params: []Param{{Name: "after", Type: TypeDuration, Default: "0s", Description: "how long a connection lives before its reset"}},
		toxics: func(p ParamValues) ([]netproxy.Toxic, error) {
			a, err := ms(p, "after")
			return []netproxy.Toxic{{Type: netproxy.ResetPeer, Attributes: map[string]int64{"timeout": a}}}, err
		},
	},
	{
		name: "net-timeout", desc: "blackhole links: data dropped both ways; connections closed after a timeout (0: held open)",
		params: []Param{{Name: "timeout", Type: TypeDuration, Default: "0s", Description: "close connections after this long; 0 holds them"}},
		toxics: func(p ParamValues) ([]netproxy.Toxic, error) {
			t, err := ms(p, "timeout")
			return []netproxy.Toxic{{Type: netproxy.Timeout, Attributes: map[string]int64{"timeout": t}}}, err
		},
	},
	{
		name: "net-partition", desc: "take links down both ways: connections closed, new ones refused, until recovered",
		down: true,
	},
	{
		name: "backend-unreachable", desc: "the control plane's backend stops answering: its link is a blackhole (data dropped both ways, connections held)",
		backend: true,
		toxics: func(ParamValues) ([]netproxy.Toxic, error) {
			return []netproxy.Toxic{{Type: netproxy.Timeout, Attributes: map[string]int64{"timeout": 0}}}, nil
		},
	},
}
