// Package dataplane is a simulated DSN's data plane: it decides flows with the policies a DSN
// has applied (the first matching rule of the selected policies decides; a flow no rule
// matches is denied) and counts allowed and denied flows per policy and rule.
//
// Flows are drawn from the DSN's traffic profile, a finite mix of flow classes. Since every
// flow of a class gets the same decision, a DSN decides each class once per config (a Table)
// and then draws how many of the interval's flows fell in each decision: statistically the
// same as deciding every flow one by one, at a cost that does not grow with the flow rate.
package dataplane

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/simdsn/trafficmap"
)

// DefaultDeny names the decision taken when no rule matches.
const DefaultDeny = "default-deny"

// Policy is a decoded policy object.
type Policy struct {
	Key    string // "tenant/name"
	Tenant string
	Spec   model.PolicySpec
}

// Decision is what happened to a flow: which policy and rule decided it, and whether it was
// allowed. Policy is DefaultDeny (Rule -1) when no rule matched.
type Decision struct {
	Policy string
	Rule   int
	Allow  bool
}

// Label is the decision as a metric label value: "tenant/name#rule" or DefaultDeny.
func (d Decision) Label() string {
	if d.Rule < 0 {
		return DefaultDeny
	}
	return d.Policy + "#" + strconv.Itoa(d.Rule)
}

// PoliciesFor picks the Policy objects whose selector matches labels, in (tenant, name) order,
// which is the order their rules are tried in. Objects of other kinds are skipped; a policy
// whose spec cannot be decoded is skipped and reported.
func PoliciesFor(objects []*model.Object, labels map[string]string) ([]Policy, []error) {
	var out []Policy
	var errs []error
	for _, o := range objects {
		if o == nil || o.Kind != model.KindPolicy {
			continue
		}
		var spec model.PolicySpec
		if err := o.DecodeSpec(&spec); err != nil {
			errs = append(errs, fmt.Errorf("policy %s/%s: %w", o.Metadata.Tenant, o.Metadata.Name, err))
			continue
		}
		if !spec.Selector.Matches(labels) {
			continue
		}
		out = append(out, Policy{Key: o.Metadata.Tenant + "/" + o.Metadata.Name, Tenant: o.Metadata.Tenant, Spec: spec})
	}
	slices.SortFunc(out, func(a, b Policy) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Key, b.Key))
	})
	return out, errs
}

// Evaluate decides one flow.
func Evaluate(policies []Policy, f trafficmap.FlowClass) Decision {
	for _, p := range policies {
		for i, r := range p.Spec.Rules {
			if ruleMatches(p.Tenant, r, f) {
				return Decision{Policy: p.Key, Rule: i, Allow: r.Action == model.ActionAllow}
			}
		}
	}
	return Decision{Policy: DefaultDeny, Rule: -1}
}

func ruleMatches(tenant string, r model.Rule, f trafficmap.FlowClass) bool {
	return peerMatches(tenant, r.From, f.From) && peerMatches(tenant, r.To, f.To) &&
		protocolMatches(r.Protocol, f.Protocol) && portMatches(r.Ports, f.Port)
}

func peerMatches(tenant string, p model.Peer, e trafficmap.Endpoint) bool {
	if p.Network != "" {
		if e.Network != p.Network || (e.Tenant != "" && e.Tenant != tenant) {
			return false
		}
	}
	for k, v := range p.Labels {
		if ev, ok := e.Labels[k]; !ok || ev != v {
			return false
		}
	}
	return true
}

func protocolMatches(rule, flow string) bool {
	if rule == "" || rule == "any" {
		return true
	}
	return strings.EqualFold(rule, flow)
}

func portMatches(ports []string, port int) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		lo, hi, ok := strings.Cut(p, "-")
		a, err := strconv.Atoi(strings.TrimSpace(lo))
		if err != nil {
			continue
		}
		b := a
		if ok {
			if b, err = strconv.Atoi(strings.TrimSpace(hi)); err != nil {
				continue
			}
		}
		if port >= a && port <= b {
			return true
		}
	}
	return false
}

// Bucket is a decision and the probability that a new flow gets it.
type Bucket struct {
	Decision    Decision
	Probability float64
}

// Table is the decisions of a traffic mix under one set of policies: the flow classes merged
// by decision, in first-seen order.
type Table struct {
	Buckets []Bucket
	// Allowed is the probability that a new flow is allowed.
	Allowed float64
}

// NewTable decides every flow class of flows under policies.
func NewTable(policies []Policy, flows []trafficmap.FlowClass) *Table {
	t := &Table{}
	for _, f := range flows {
		d := Evaluate(policies, f)
		idx := slices.IndexFunc(t.Buckets, func(b Bucket) bool { return b.Decision == d })
		if idx < 0 {
			t.Buckets = append(t.Buckets, Bucket{Decision: d})
			idx = len(t.Buckets) - 1
		}
		t.Buckets[idx].Probability += f.Probability
		if d.Allow {
			t.Allowed += f.Probability
		}
	}
	return t
}
