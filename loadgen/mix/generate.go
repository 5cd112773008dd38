package mix

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"

	"github.com/dsnscale/dsnscale/controlplane/model"
)

// Labels every generated object carries, so load objects are easy to find and tell apart.
const (
	LabelLoadgen  = "dsnscale.io/loadgen"
	LabelRevision = "dsnscale.io/load-rev"
	LabelGroup    = "dsnscale.io/group"
	LabelApp      = "app"
)

var apps = []string{"web", "api", "db", "cache", "queue", "auth"}

// groups is how many DSN groups generated policies select among.
const groups = 8

// Generator makes a population's objects, and new objects for creates and updates, the same
// way for the same seed. Its methods are safe for concurrent use.
type Generator struct {
	p Population
}

// NewGenerator returns a generator for p (its prefix defaulted).
func NewGenerator(p Population) *Generator {
	if p.Prefix == "" {
		p.Prefix = "lg"
	}
	return &Generator{p: p}
}

// Population returns the population the generator makes.
func (g *Generator) Population() Population { return g.p }

// TenantName is the name of tenant i.
func (g *Generator) TenantName(i int) string { return fmt.Sprintf("%s-t%04d", g.p.Prefix, i) }

// NetworkName is the name of network j of a tenant.
func (g *Generator) NetworkName(j int) string { return fmt.Sprintf("%s-net%04d", g.p.Prefix, j) }

// PolicyName is the name of policy k of a tenant.
func (g *Generator) PolicyName(k int) string { return fmt.Sprintf("%s-pol%04d", g.p.Prefix, k) }

// rng is the random source of one object, independent of the order objects are made in.
func (g *Generator) rng(kind model.Kind, tenant, index int) *rand.Rand {
	var k uint64
	for _, c := range []byte(kind) {
		k = k*131 + uint64(c)
	}
	return rand.New(rand.NewPCG(g.p.Seed, k<<40^uint64(tenant)<<20^uint64(index)))
}

func (g *Generator) labels(r *rand.Rand) map[string]string {
	return map[string]string{
		LabelLoadgen: "true",
		LabelApp:     apps[r.IntN(len(apps))],
	}
}

func envelope(kind model.Kind, tenant, name string, labels map[string]string, spec any) *model.Object {
	o := &model.Object{APIVersion: model.APIVersion, Kind: kind, Metadata: model.Metadata{Name: name, Tenant: tenant, Labels: labels}}
	if err := o.EncodeSpec(spec); err != nil {
		panic(err) // the specs are plain structs
	}
	return o
}

// Tenant makes tenant i.
func (g *Generator) Tenant(i int) *model.Object {
	r := g.rng(model.KindTenant, i, 0)
	return envelope(model.KindTenant, "", g.TenantName(i), g.labels(r), model.TenantSpec{DisplayName: fmt.Sprintf("load tenant %d", i)})
}

// Network makes network j of tenant t: a /24 of 10.0.0.0/8 unique in the population, VLAN j+1.
func (g *Generator) Network(t, j int) *model.Object {
	r := g.rng(model.KindNetwork, t, j)
	n := t*g.p.NetworksPerTenant + j
	spec := model.NetworkSpec{CIDR: fmt.Sprintf("10.%d.%d.0/24", n/256%256, n%256), VLAN: j%MaxNetworksPerTenant + 1}
	return envelope(model.KindNetwork, g.TenantName(t), g.NetworkName(j), g.labels(r), spec)
}

// Policy makes policy k of tenant t, with RulesPerPolicy rules between the tenant's networks
// and labelled endpoints.
func (g *Generator) Policy(t, k int) *model.Object {
	r := g.rng(model.KindPolicy, t, k)
	nets := make([]string, g.p.NetworksPerTenant)
	for j := range nets {
		nets[j] = g.NetworkName(j)
	}
	return g.policy(g.TenantName(t), g.PolicyName(k), nets, r)
}

func (g *Generator) policy(tenant, name string, nets []string, r *rand.Rand) *model.Object {
	spec := model.PolicySpec{
		Selector: model.Selector{MatchLabels: map[string]string{LabelGroup: "g" + strconv.Itoa(r.IntN(groups))}},
		Rules:    make([]model.Rule, g.p.RulesPerPolicy),
	}
	for i := range spec.Rules {
		spec.Rules[i] = rule(r, nets)
	}
	return envelope(model.KindPolicy, tenant, name, g.labels(r), spec)
}

func peer(r *rand.Rand, nets []string) model.Peer {
	if len(nets) > 0 && r.IntN(2) == 0 {
		return model.Peer{Network: nets[r.IntN(len(nets))]}
	}
	return model.Peer{Labels: map[string]string{LabelApp: apps[r.IntN(len(apps))]}}
}

func rule(r *rand.Rand, nets []string) model.Rule {
	ru := model.Rule{Action: model.ActionAllow, From: peer(r, nets), To: peer(r, nets)}
	if r.IntN(5) == 0 {
		ru.Action = model.ActionDeny
	}
	switch r.IntN(10) {
	case 0:
		ru.Protocol = "icmp"
	case 1, 2:
		ru.Protocol = "udp"
		ru.Ports = []string{strconv.Itoa(1024 + r.IntN(60000))}
	default:
		ru.Protocol = "tcp"
		ru.Ports = []string{"443"}
		if r.IntN(3) == 0 {
			lo := 8000 + r.IntN(1000)
			ru.Ports = append(ru.Ports, fmt.Sprintf("%d-%d", lo, lo+r.IntN(100)))
		}
	}
	return ru
}

// Objects makes the whole population in dependency order: tenants, then networks, then
// policies.
func (g *Generator) Objects() []*model.Object {
	var out []*model.Object
	for t := 0; t < g.p.Tenants; t++ {
		out = append(out, g.Tenant(t))
	}
	for t := 0; t < g.p.Tenants; t++ {
		for j := 0; j < g.p.NetworksPerTenant; j++ {
			out = append(out, g.Network(t, j))
		}
	}
	for t := 0; t < g.p.Tenants; t++ {
		for k := 0; k < g.p.PoliciesPerTenant; k++ {
			out = append(out, g.Policy(t, k))
		}
	}
	return out
}

// NewTenant makes a tenant for a create operation; run and serial make its name unique.
func (g *Generator) NewTenant(run string, serial uint64) *model.Object {
	r := rand.New(rand.NewPCG(g.p.Seed^serial, 1))
	name := fmt.Sprintf("%s-%s-t%d", g.p.Prefix, run, serial)
	return envelope(model.KindTenant, "", name, g.labels(r), model.TenantSpec{DisplayName: "created by load"})
}

// NewNetwork makes a network for a create operation in tenant: its CIDR is a /64 of
// fd00::/8 derived from run and serial, so created networks never overlap the population's or
// each other's.
func (g *Generator) NewNetwork(tenant, run string, serial uint64) *model.Object {
	r := rand.New(rand.NewPCG(g.p.Seed^serial, 2))
	var a [16]byte
	a[0] = 0xfd
	h := hash(run)
	a[1], a[2], a[3] = byte(h>>16), byte(h>>8), byte(h)
	a[4], a[5], a[6], a[7] = byte(serial>>24), byte(serial>>16), byte(serial>>8), byte(serial)
	cidr := netip.PrefixFrom(netip.AddrFrom16(a), 64).String()
	spec := model.NetworkSpec{CIDR: cidr, VLAN: int(serial%MaxNetworksPerTenant) + 1}
	return envelope(model.KindNetwork, tenant, fmt.Sprintf("%s-%s-n%d", g.p.Prefix, run, serial), g.labels(r), spec)
}

// NewPolicy makes a policy for a create operation in tenant, with rules over nets.
func (g *Generator) NewPolicy(tenant string, nets []string, run string, serial uint64) *model.Object {
	r := rand.New(rand.NewPCG(g.p.Seed^serial, 3))
	return g.policy(tenant, fmt.Sprintf("%s-%s-p%d", g.p.Prefix, run, serial), nets, r)
}

// Mutate returns a copy of obj changed the way an update operation changes it: a new revision
// label on every kind, and for a policy, one rule's ports.
func (g *Generator) Mutate(obj *model.Object, serial uint64) *model.Object {
	o := *obj
	o.Status = nil
	o.Metadata.Labels = make(map[string]string, len(obj.Metadata.Labels)+1)
	for k, v := range obj.Metadata.Labels {
		o.Metadata.Labels[k] = v
	}
	o.Metadata.Labels[LabelRevision] = strconv.FormatUint(serial, 10)
	if o.Kind == model.KindPolicy {
		var spec model.PolicySpec
		if json.Unmarshal(o.Spec, &spec) == nil && len(spec.Rules) > 0 {
			ru := &spec.Rules[serial%uint64(len(spec.Rules))]
			if ru.Protocol != "icmp" {
				ru.Ports = []string{strconv.FormatUint(1024+serial%60000, 10)}
				if b, err := json.Marshal(spec); err == nil {
					o.Spec = b
				}
			}
		}
	}
	return &o
}

func hash(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}
