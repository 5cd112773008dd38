// Package mix describes what northbound load is made of: a weighted mix of operations (get,
// list, create, update, delete, watch, transaction, search) on the control plane's kinds, and
// the population of objects they work on (tenants, networks per tenant, policies and rules per
// policy), generated deterministically from a seed.
//
// Mixes are data: strict YAML files (kind LoadMix; unknown fields rejected, every error with its
// file:line) or one of the built-in mixes embedded in the binary (see Builtins):
//
//	apiVersion: dsnscale/v1
//	kind: LoadMix
//	name: policy-churn
//	population:            # set up before the load, adopted if already there
//	  tenants: 10
//	  networksPerTenant: 20
//	  policiesPerTenant: 10
//	  rulesPerPolicy: 16
//	  seed: 1
//	setup: create          # or skip: the population exists already
//	teardown: false        # delete what the run set up and created, afterwards
//	timeout: 10s           # per request
//	operations:
//	  - {op: get, kind: Network, weight: 50}
//	  - {op: list, kind: Policy, weight: 10, size: 50}
//	  - {op: update, kind: Policy, weight: 20}        # PUT with the last resourceVersion
//	  - {op: create, kind: Network, weight: 5}
//	  - {op: delete, kind: Network, weight: 5}        # only objects the run created
//	  - {op: transaction, kind: Policy, size: 3, weight: 5}
//	  - {op: watch, weight: 2}                        # time to the first event
//	  - {op: search, index: audit, query: "tenant:{tenant}", weight: 3}
package mix

import (
	"errors"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/internal/strictyaml"
)

// Kind is the kind of a mix document.
const Kind = "LoadMix"

// ErrInvalid marks every problem with a mix (each an *Error).
var ErrInvalid = errors.New("invalid mix")

// ErrUnknown is returned by Load for a name that is neither a built-in mix nor a file.
var ErrUnknown = errors.New("unknown mix")

// Mix is a weighted set of operations and the population they work on.
type Mix struct {
	APIVersion  string `yaml:"apiVersion" json:"apiVersion"`
	Kind        string `yaml:"kind" json:"kind"`
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// Population is the set of objects set up before the load and used by it.
	Population Population `yaml:"population" json:"population"`
	// Setup says how the population comes to exist: "create" (the default) creates what is
	// missing and adopts what is already there; "skip" assumes it exists.
	Setup string `yaml:"setup,omitempty" json:"setup,omitempty"`
	// Teardown deletes, after the load, every object the run created or set up.
	Teardown bool `yaml:"teardown,omitempty" json:"teardown,omitempty"`
	// Timeout bounds each request (default 10s).
	Timeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// Operations are chosen at random in proportion to their weights.
	Operations []Operation `yaml:"operations" json:"operations"`
}

// Setup modes.
const (
	SetupCreate = "create"
	SetupSkip   = "skip"
)

// DefaultTimeout bounds a request when the mix does not say.
const DefaultTimeout = 10 * time.Second

// Population describes the objects a mix works on, like a traffic-pattern map's groups do.
type Population struct {
	Tenants           int `yaml:"tenants" json:"tenants"`
	NetworksPerTenant int `yaml:"networksPerTenant,omitempty" json:"networksPerTenant,omitempty"`
	PoliciesPerTenant int `yaml:"policiesPerTenant,omitempty" json:"policiesPerTenant,omitempty"`
	RulesPerPolicy    int `yaml:"rulesPerPolicy,omitempty" json:"rulesPerPolicy,omitempty"`
	// Seed makes the generated objects reproducible.
	Seed uint64 `yaml:"seed,omitempty" json:"seed,omitempty"`
	// Prefix starts every generated name (default "lg"), so load objects are easy to find.
	Prefix string `yaml:"prefix,omitempty" json:"prefix,omitempty"`
}

// OpType is what an operation does.
type OpType string

// Operation types.
const (
	OpGet         OpType = "get"
	OpList        OpType = "list"
	OpCreate      OpType = "create"
	OpUpdate      OpType = "update"
	OpDelete      OpType = "delete"
	OpWatch       OpType = "watch"
	OpTransaction OpType = "transaction"
	OpSearch      OpType = "search"
)

// OpTypes lists the operation types.
var OpTypes = []OpType{OpGet, OpList, OpCreate, OpUpdate, OpDelete, OpWatch, OpTransaction, OpSearch}

// Search indexes.
const (
	IndexEvents = "events"
	IndexAudit  = "audit"
)

// Operation is one entry of a mix.
type Operation struct {
	Op OpType `yaml:"op" json:"op"`
	// Kind is the kind operated on (get, list, create, update, delete, transaction).
	Kind model.Kind `yaml:"kind,omitempty" json:"kind,omitempty"`
	// Weight is the operation's share of iterations, relative to the others.
	Weight float64 `yaml:"weight" json:"weight"`
	// Size is the page size of a list (default 50) or the number of updates in a transaction
	// (default 2).
	Size int `yaml:"size,omitempty" json:"size,omitempty"`
	// Index and Query describe a search: index events or audit, and the query, in which
	// "{tenant}" stands for a random tenant of the population (default "tenant:{tenant}").
	Index string `yaml:"index,omitempty" json:"index,omitempty"`
	Query string `yaml:"query,omitempty" json:"query,omitempty"`
}

// Name is how results name the operation: "get/Network", "watch", "search/audit".
func (o Operation) Name() string {
	switch o.Op {
	case OpWatch:
		return string(o.Op)
	case OpSearch:
		return string(o.Op) + "/" + o.Index
	}
	return string(o.Op) + "/" + string(o.Kind)
}

// Limits on a population and a mix.
const (
	MaxTenants           = 10_000
	MaxNetworksPerTenant = 4094 // one VLAN each
	MaxNetworks          = 65_536
	MaxPoliciesPerTenant = 10_000
	MaxObjects           = 1_000_000
	MaxOperations        = 100
	MaxTransactionSize   = 100
	MaxListSize          = 1000
	MaxTimeout           = 5 * time.Minute
	MaxPrefixLength      = 20
)

// Error is one problem with a mix, located in its file: the one error of every dsnscale file
// kind. Those of a mix also match ErrInvalid.
type Error = strictyaml.Error

// WithDefaults returns a copy with empty optional fields filled.
func (m Mix) WithDefaults() Mix {
	if m.Setup == "" {
		m.Setup = SetupCreate
	}
	if m.Timeout == 0 {
		m.Timeout = DefaultTimeout
	}
	if m.Population.Prefix == "" {
		m.Population.Prefix = "lg"
	}
	ops := make([]Operation, len(m.Operations))
	for i, o := range m.Operations {
		switch o.Op {
		case OpList:
			if o.Size == 0 {
				o.Size = 50
			}
		case OpTransaction:
			if o.Size == 0 {
				o.Size = 2
			}
		case OpSearch:
			if o.Query == "" {
				o.Query = "tenant:{tenant}"
			}
		}
		ops[i] = o
	}
	m.Operations = ops
	return m
}
