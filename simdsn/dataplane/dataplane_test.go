package dataplane

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/simdsn/trafficmap"
)

func policy(t *testing.T, tenant, name string, sel map[string]string, rules ...model.Rule) *model.Object {
	t.Helper()
	o := &model.Object{APIVersion: model.APIVersion, Kind: model.KindPolicy, Metadata: model.Metadata{Name: name, Tenant: tenant}}
	require.NoError(t, o.EncodeSpec(model.PolicySpec{Selector: model.Selector{MatchLabels: sel}, Rules: rules}))
	return o
}

var flows = []trafficmap.FlowClass{
	{Probability: 0.5, From: trafficmap.Endpoint{Labels: map[string]string{"zone": "internet"}}, To: trafficmap.Endpoint{Labels: map[string]string{"app": "web"}}, Protocol: "tcp", Port: 443},
	{Probability: 0.3, From: trafficmap.Endpoint{Tenant: "t1", Network: "n1"}, To: trafficmap.Endpoint{Labels: map[string]string{"app": "db"}}, Protocol: "tcp", Port: 5432},
	{Probability: 0.2, To: trafficmap.Endpoint{Labels: map[string]string{"app": "web"}}, Protocol: "udp", Port: 53},
}

func TestEvaluate(t *testing.T) {
	objs := []*model.Object{
		policy(t, "t1", "b-db", map[string]string{"role": "web"},
			model.Rule{Action: model.ActionAllow, From: model.Peer{Network: "n1"}, To: model.Peer{Labels: map[string]string{"app": "db"}}, Protocol: "tcp", Ports: []string{"5000-6000"}}),
		policy(t, "t1", "a-web", map[string]string{"role": "web"},
			model.Rule{Action: model.ActionDeny, Protocol: "udp"},
			model.Rule{Action: model.ActionAllow, To: model.Peer{Labels: map[string]string{"app": "web"}}, Ports: []string{"80", "443"}}),
		policy(t, "t1", "other", map[string]string{"role": "db"}, model.Rule{Action: model.ActionAllow}),
		{Kind: model.KindNetwork, Metadata: model.Metadata{Name: "n1", Tenant: "t1"}},
	}
	ps, errs := PoliciesFor(objs, map[string]string{"role": "web", "rack": "r1"})
	require.Empty(t, errs)
	require.Len(t, ps, 2)
	assert.Equal(t, "t1/a-web", ps[0].Key, "policies are tried in name order")

	assert.Equal(t, Decision{Policy: "t1/a-web", Rule: 1, Allow: true}, Evaluate(ps, flows[0]))
	assert.Equal(t, Decision{Policy: "t1/b-db", Rule: 0, Allow: true}, Evaluate(ps, flows[1]))
	assert.Equal(t, Decision{Policy: "t1/a-web", Rule: 0, Allow: false}, Evaluate(ps, flows[2]))
	other := flows[1]
	other.From.Tenant = "t2"
	assert.Equal(t, Decision{Policy: DefaultDeny, Rule: -1}, Evaluate(ps, other), "a network of another tenant does not match")
	assert.Equal(t, DefaultDeny, Evaluate(nil, flows[0]).Label())

	tab := NewTable(ps, flows)
	assert.InDelta(t, 0.8, tab.Allowed, 1e-9)
	assert.Len(t, tab.Buckets, 3)

	bad := &model.Object{Kind: model.KindPolicy, Metadata: model.Metadata{Name: "bad", Tenant: "t1"}, Spec: json.RawMessage(`{"rules":[],"nope":1}`)}
	_, errs = PoliciesFor([]*model.Object{bad}, nil)
	require.Len(t, errs, 1)
}

func TestCountersFollowTheTable(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ps, _ := PoliciesFor([]*model.Object{policy(t, "t1", "p", nil,
		model.Rule{Action: model.ActionAllow, To: model.Peer{Labels: map[string]string{"app": "web"}}, Protocol: "tcp"})}, nil)
	var c Counters
	c.SetTable(NewTable(ps, flows))
	for range 1000 {
		c.Add(Poisson(r, 100), r)
	}
	total := c.Allowed + c.Denied
	assert.InDelta(t, 100000, float64(total), 2000)
	assert.InDelta(t, 0.5, float64(c.Allowed)/float64(total), 0.01)
	var sum uint64
	for _, rc := range c.Rules {
		sum += rc.N
	}
	assert.Equal(t, total, sum)

	// A new table keeps the counts of decisions it shares.
	allowedBefore := c.Rules[0].N
	ps2, _ := PoliciesFor([]*model.Object{policy(t, "t1", "p", nil,
		model.Rule{Action: model.ActionAllow, To: model.Peer{Labels: map[string]string{"app": "web"}}, Protocol: "tcp"},
		model.Rule{Action: model.ActionAllow, Protocol: "udp"})}, nil)
	c.SetTable(NewTable(ps2, flows))
	assert.Equal(t, allowedBefore, c.Rules[0].N)
	c.Add(10000, r)
	assert.InDelta(t, 0.7, float64(c.Allowed-allowedBefore)/10000, 0.03)
}

func TestBinomialAndPoisson(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		n uint64
		p float64
	}{{10, 0.3}, {1000, 0.3}, {100000, 0.01}} {
		sum := 0.0
		for range 2000 {
			k := Binomial(r, tc.n, tc.p)
			require.LessOrEqual(t, k, tc.n)
			sum += float64(k)
		}
		mean := sum / 2000
		want := float64(tc.n) * tc.p
		assert.InDelta(t, want, mean, 4*math.Sqrt(want*(1-tc.p)/2000)+0.01)
	}
	for _, l := range []float64{0.5, 5, 500} {
		sum := 0.0
		for range 4000 {
			sum += float64(Poisson(r, l))
		}
		assert.InDelta(t, l, sum/4000, 4*math.Sqrt(l/4000)+0.01)
	}
}

func TestPredict(t *testing.T) {
	m := trafficmap.Default()
	objs := []*model.Object{policy(t, "t1", "web", map[string]string{"role": "web", "site": "east"},
		model.Rule{Action: model.ActionAllow, To: model.Peer{Labels: map[string]string{"app": "web"}}, Ports: []string{"443"}})}
	s, err := Predict(m, 0, "web-east", objs)
	require.NoError(t, err)
	assert.InDelta(t, 0.70, s.Allowed, 1e-9)
	assert.InDelta(t, 0.30, s.Denied, 1e-9)
	assert.InDelta(t, 0.70, s.PerLabel["t1/web#0"], 1e-9)
	s, err = Predict(m, 0, "web-west", objs)
	require.NoError(t, err)
	assert.InDelta(t, 0.0, s.Allowed, 1e-9, "the selector picks the east site only")
	_, err = Predict(m, 0, "nope", objs)
	assert.Error(t, err)
}
