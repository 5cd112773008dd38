package mix

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/internal/strictyaml"
)

// problem is a validation finding before it is placed in a file.
type problem struct{ field, msg string }

type problems []problem

func (ps *problems) add(field, format string, args ...any) {
	*ps = append(*ps, problem{field, fmt.Sprintf(format, args...)})
}

// Validate checks the mix and returns every problem, each an *Error matching ErrInvalid. The
// errors have no file position; Parse and Load add one.
func (m Mix) Validate() error { return m.errorsIn(&strictyaml.Decoder{Sentinel: ErrInvalid}) }

// errorsIn validates m and reports each problem to d, which places it at its field.
func (m Mix) errorsIn(d *strictyaml.Decoder) error {
	for _, p := range m.check() {
		d.ErrorAt(p.field, "%s", p.msg)
	}
	return d.Err()
}

func (m Mix) check() problems {
	var ps problems
	if m.APIVersion != model.APIVersion {
		ps.add("apiVersion", "must be %q, got %q", model.APIVersion, m.APIVersion)
	}
	if m.Kind != Kind {
		ps.add("kind", "must be %q, got %q", Kind, m.Kind)
	}
	if m.Name != "" {
		if msg := model.CheckName(m.Name); msg != "" {
			ps.add("name", "%s", msg)
		}
	}
	switch m.Setup {
	case "", SetupCreate, SetupSkip:
	default:
		ps.add("setup", "must be %q or %q, got %q", SetupCreate, SetupSkip, m.Setup)
	}
	if m.Timeout < 0 || m.Timeout > MaxTimeout {
		ps.add("timeout", "must be in 0-%s, got %s", MaxTimeout, m.Timeout)
	}
	m.Population.check(&ps)
	if len(m.Operations) == 0 {
		ps.add("operations", "required: at least one operation")
	}
	if len(m.Operations) > MaxOperations {
		ps.add("operations", "%d operations, at most %d", len(m.Operations), MaxOperations)
	}
	for i, o := range m.Operations {
		m.checkOp(o, fmt.Sprintf("operations[%d]", i), &ps)
	}
	return ps
}

func (p Population) check(ps *problems) {
	const f = "population"
	bound := func(field string, v, lo, hi int) {
		if v < lo || v > hi {
			ps.add(f+"."+field, "must be in %d-%d, got %d", lo, hi, v)
		}
	}
	bound("tenants", p.Tenants, 1, MaxTenants)
	bound("networksPerTenant", p.NetworksPerTenant, 0, MaxNetworksPerTenant)
	bound("policiesPerTenant", p.PoliciesPerTenant, 0, MaxPoliciesPerTenant)
	bound("rulesPerPolicy", p.RulesPerPolicy, 0, model.MaxRules)
	if n := p.Tenants * p.NetworksPerTenant; n > MaxNetworks {
		ps.add(f, "%d networks in all (tenants x networksPerTenant), at most %d (one /24 of 10.0.0.0/8 each)", n, MaxNetworks)
	}
	if n := p.Tenants * (1 + p.NetworksPerTenant + p.PoliciesPerTenant); n > MaxObjects {
		ps.add(f, "%d objects in all, at most %d", n, MaxObjects)
	}
	if len(p.Prefix) > MaxPrefixLength {
		ps.add(f+".prefix", "%d characters, at most %d", len(p.Prefix), MaxPrefixLength)
	} else if p.Prefix != "" {
		if msg := model.CheckName(p.Prefix); msg != "" {
			ps.add(f+".prefix", "%s", msg)
		}
	}
}

var (
	writableKinds = []model.Kind{model.KindTenant, model.KindNetwork, model.KindPolicy}
	readableKinds = model.Kinds
)

func (m Mix) checkOp(o Operation, path string, ps *problems) {
	if math.IsNaN(o.Weight) || math.IsInf(o.Weight, 0) || o.Weight <= 0 {
		ps.add(path+".weight", "must be a positive number, got %v", o.Weight)
	}
	kinds := kindList(readableKinds)
	switch o.Op {
	case OpGet, OpList:
		if !slices.Contains(readableKinds, o.Kind) {
			ps.add(path+".kind", "%s needs a kind: one of %s, got %q", o.Op, kinds, o.Kind)
		}
	case OpCreate, OpUpdate, OpDelete, OpTransaction:
		if !slices.Contains(writableKinds, o.Kind) {
			msg := fmt.Sprintf("%s needs a kind: one of %s, got %q", o.Op, kindList(writableKinds), o.Kind)
			if o.Kind == model.KindDSN {
				msg = fmt.Sprintf("%s does not apply to DSN: DSNs are admitted by the southbound protocol, only read here", o.Op)
			}
			ps.add(path+".kind", "%s", msg)
		}
	case OpWatch, OpSearch:
		if o.Kind != "" {
			ps.add(path+".kind", "not used by %s", o.Op)
		}
	case "":
		ps.add(path+".op", "required: one of %s", opList())
		return
	default:
		ps.add(path+".op", "must be one of %s, got %q", opList(), o.Op)
		return
	}
	switch o.Op {
	case OpList:
		if o.Size < 0 || o.Size > MaxListSize {
			ps.add(path+".size", "page size must be in 0-%d, got %d", MaxListSize, o.Size)
		}
	case OpTransaction:
		if o.Size < 0 || o.Size > MaxTransactionSize {
			ps.add(path+".size", "updates per transaction must be in 0-%d, got %d", MaxTransactionSize, o.Size)
		}
	default:
		if o.Size != 0 {
			ps.add(path+".size", "not used by %s", o.Op)
		}
	}
	if o.Op == OpSearch {
		if o.Index != IndexEvents && o.Index != IndexAudit {
			ps.add(path+".index", "must be %q or %q, got %q", IndexEvents, IndexAudit, o.Index)
		}
		if len(o.Query) > 1024 {
			ps.add(path+".query", "%d bytes, at most 1024", len(o.Query))
		}
	} else {
		if o.Index != "" {
			ps.add(path+".index", "not used by %s", o.Op)
		}
		if o.Query != "" {
			ps.add(path+".query", "not used by %s", o.Op)
		}
	}
	m.checkSupply(o, path, ps)
}

// checkSupply rejects operations that could never find an object to work on.
func (m Mix) checkSupply(o Operation, path string, ps *problems) {
	if o.Op != OpGet && o.Op != OpUpdate && o.Op != OpDelete && o.Op != OpTransaction {
		return
	}
	created := slices.ContainsFunc(m.Operations, func(x Operation) bool { return x.Op == OpCreate && x.Kind == o.Kind })
	p := m.Population
	var have bool
	var field string
	switch o.Kind {
	case model.KindTenant:
		have, field = p.Tenants > 0, "tenants"
	case model.KindNetwork:
		have, field = p.NetworksPerTenant > 0, "networksPerTenant"
	case model.KindPolicy:
		have, field = p.PoliciesPerTenant > 0, "policiesPerTenant"
	default:
		return // DSNs come from the fleet, not the population
	}
	switch {
	case o.Op == OpDelete && !created:
		ps.add(path, "delete %s needs an operation that creates %s objects: a run deletes only what it created", o.Kind, o.Kind)
	case o.Op != OpDelete && !have && !created:
		ps.add(path, "%s %s has nothing to work on: population.%s is 0 and no operation creates one", o.Op, o.Kind, field)
	}
}

func kindList(ks []model.Kind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

func opList() string {
	s := make([]string, len(OpTypes))
	for i, o := range OpTypes {
		s[i] = string(o)
	}
	return strings.Join(s, ", ")
}
