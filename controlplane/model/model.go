// Package model defines the control plane's declarative objects: the envelope every object travels
// in on the northbound API, the kinds, their specs and statuses.
//
// The same types travel southbound inside snapshots and deltas (see package wire), so a DSN agent
// and the control plane agree on one definition of a Network or a Policy.
package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// APIVersion is the only apiVersion the control plane accepts and emits.
const APIVersion = "dsnscale/v1"

// Kind names a type of object.
type Kind string

// The kinds of object the control plane stores.
const (
	KindTenant  Kind = "Tenant"
	KindNetwork Kind = "Network"
	KindPolicy  Kind = "Policy"
	KindDSN     Kind = "DSN"
)

// Kinds lists the kinds, in dependency order (a kind only refers to kinds before it).
var Kinds = []Kind{KindTenant, KindNetwork, KindPolicy, KindDSN}

// Namespaced reports whether objects of kind k live inside a tenant.
func (k Kind) Namespaced() bool { return k == KindNetwork || k == KindPolicy }

// Plural is the path segment of the kind's collection ("networks").
func (k Kind) Plural() string {
	if k == KindPolicy {
		return "policies"
	}
	return strings.ToLower(string(k)) + "s"
}

// Object is the envelope of every object: Kubernetes-like apiVersion, kind, metadata, spec and
// status. Spec and Status stay raw here; Decode* helpers give the typed forms.
type Object struct {
	APIVersion string          `json:"apiVersion"`
	Kind       Kind            `json:"kind"`
	Metadata   Metadata        `json:"metadata"`
	Spec       json.RawMessage `json:"spec,omitempty"`
	Status     json.RawMessage `json:"status,omitempty"`
}

// Metadata identifies an object and carries its labels and version.
type Metadata struct {
	Name   string            `json:"name"`
	Tenant string            `json:"tenant,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
	// ResourceVersion is the control-plane revision at which the object was last written, as a
	// decimal string. A write that carries it must match the stored one (optimistic concurrency).
	ResourceVersion string `json:"resourceVersion,omitempty"`
	// CreationRevision is the revision that created the object; it is set by the store.
	CreationRevision uint64 `json:"creationRevision,omitempty"`
}

// Key is an object's identity within the store.
type Key struct {
	Kind   Kind
	Tenant string // empty for cluster-scoped kinds
	Name   string
}

// Key returns the object's identity.
func (o *Object) Key() Key {
	return Key{Kind: o.Kind, Tenant: o.Metadata.Tenant, Name: o.Metadata.Name}
}

// String renders the key as "Kind/tenant/name" or "Kind/name".
func (k Key) String() string {
	if k.Tenant == "" {
		return fmt.Sprintf("%s/%s", k.Kind, k.Name)
	}
	return fmt.Sprintf("%s/%s/%s", k.Kind, k.Tenant, k.Name)
}

// TenantSpec describes a tenant.
type TenantSpec struct {
	DisplayName string `json:"displayName,omitempty"`
}

// NetworkSpec describes a tenant network.
type NetworkSpec struct {
	CIDR string `json:"cidr"`
	VLAN int    `json:"vlan"`
}

// PolicySpec selects DSNs by label and lists ordered rules; the first rule that matches a flow
// decides it, and a flow no rule matches is denied.
type PolicySpec struct {
	Selector Selector `json:"selector"`
	Rules    []Rule   `json:"rules"`
}

// Selector chooses DSNs (or endpoints) by label equality.
type Selector struct {
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

// Matches reports whether labels carry every key/value of the selector. An empty selector
// matches everything.
func (s Selector) Matches(labels map[string]string) bool {
	for k, v := range s.MatchLabels {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// Action is what a rule does to a flow it matches.
type Action string

// Rule actions.
const (
	ActionAllow Action = "allow"
	ActionDeny  Action = "deny"
)

// Rule is one ordered entry of a policy.
type Rule struct {
	Action   Action `json:"action"`
	From     Peer   `json:"from"`
	To       Peer   `json:"to"`
	Protocol string `json:"protocol,omitempty"` // tcp, udp, icmp or any (empty means any)
	Ports    Ports  `json:"ports,omitempty"`    // "443" or "8000-8080" (or 443); empty means any
}

// Ports are a rule's ports. Each entry is a port or a range, given like Kubernetes'
// int-or-string: an integer (443) or a string ("443", "8000-8080"). They are kept, and
// written back, as strings.
type Ports []string

// UnmarshalJSON takes integers as well as strings.
func (p *Ports) UnmarshalJSON(data []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	if raw == nil {
		*p = nil
		return nil
	}
	out := make(Ports, len(raw))
	for i, r := range raw {
		r = bytes.TrimSpace(r)
		if len(r) > 0 && r[0] == '"' {
			if err := json.Unmarshal(r, &out[i]); err != nil {
				return err
			}
			continue
		}
		n, err := strconv.ParseInt(string(r), 10, 64)
		if err != nil {
			return fmt.Errorf("ports[%d]: %s is not an integer or a string", i, r)
		}
		out[i] = strconv.FormatInt(n, 10)
	}
	*p = out
	return nil
}

// Peer is one side of a rule: a network of the policy's tenant, or endpoints chosen by labels.
// Exactly one of Network and Labels is set; neither means any.
type Peer struct {
	Network string            `json:"network,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// DSNSpec is what a DSN says of itself at admission.
type DSNSpec struct {
	SoftwareVersion string `json:"softwareVersion,omitempty"`
	Site            string `json:"site,omitempty"`
	Rack            string `json:"rack,omitempty"`
}

// DSN states as the control plane sees them.
const (
	DSNStateAdmitted    = "admitted"
	DSNStateSyncing     = "syncing"
	DSNStateInSync      = "in-sync"
	DSNStateLagging     = "lagging"
	DSNStateQuarantined = "quarantined"
	DSNStateOffline     = "offline"
)

// DSNStatus is the control plane's closed-loop view of one DSN.
type DSNStatus struct {
	State            string          `json:"state"`
	DesiredRevision  uint64          `json:"desiredRevision"`
	AppliedRevision  uint64          `json:"appliedRevision"`
	LastHeartbeat    string          `json:"lastHeartbeat,omitempty"` // RFC 3339 with nanoseconds
	AdmittedAt       string          `json:"admittedAt,omitempty"`
	SessionID        string          `json:"sessionID,omitempty"`
	AckTimes         []RevisionAck   `json:"ackTimes,omitempty"` // most recent acks, newest last
	Corrective       CorrectiveCount `json:"corrective"`
	LastCorrective   string          `json:"lastCorrective,omitempty"` // resend, resync or quarantine
	ConnectedSeconds float64         `json:"connectedSeconds,omitempty"`
	// LastError is the error of the DSN's last Ack that reported one (it failed to apply
	// LastErrorRevision's config and kept AppliedRevision's), until an Ack without error or a
	// new session clears it; LastErrorAt is when it arrived (RFC 3339 with nanoseconds).
	LastError         string `json:"lastError,omitempty"`
	LastErrorRevision uint64 `json:"lastErrorRevision,omitempty"`
	LastErrorAt       string `json:"lastErrorAt,omitempty"`
}

// RevisionAck records when a DSN acknowledged a revision.
type RevisionAck struct {
	Revision uint64 `json:"revision"`
	At       string `json:"at"` // RFC 3339 with nanoseconds
}

// CorrectiveCount counts the corrective actions taken against a straggling DSN.
type CorrectiveCount struct {
	Resends     int `json:"resends"`
	Resyncs     int `json:"resyncs"`
	Quarantines int `json:"quarantines"`
}

// DecodeSpec unmarshals the object's spec into v, rejecting unknown fields.
func (o *Object) DecodeSpec(v any) error {
	if len(o.Spec) == 0 {
		return nil
	}
	return decodeStrict(o.Spec, v)
}

// EncodeSpec stores v as the object's spec.
func (o *Object) EncodeSpec(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	o.Spec = b
	return nil
}

// SortedLabels renders labels as "k=v,k=v" in key order; used for grouping and display.
func SortedLabels(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(labels[k])
	}
	return b.String()
}

func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("unexpected data after the JSON value")
	}
	return nil
}

// Convergence says how far the fleet has come towards a revision.
type Convergence struct {
	Revision uint64 `json:"revision"`
	// Total counts the DSNs the control plane knows (quarantined and offline included).
	Total int `json:"total"`
	// AtOrPast counts DSNs whose applied revision is at or past Revision.
	AtOrPast int `json:"atOrPast"`
	// Behind counts the others; BehindDSNs names them (at most the first 1,000, sorted).
	Behind     int      `json:"behind"`
	BehindDSNs []string `json:"behindDSNs"`
	// AckedAt gives, for DSNs that acked a revision at or past Revision, the quantiles of the
	// time from the revision's commit to the ack, in milliseconds (p50, p90, p99, max).
	AckLatencyMs map[string]float64 `json:"ackLatencyMs,omitempty"`
}

// ClusterStatus is what GET /api/v1/cluster answers: the bus this control-plane replica runs
// on, as this replica sees it.
type ClusterStatus struct {
	// Mode is "single" (one embedded NATS server), "cluster" (this replica's embedded server is
	// one node of a NATS cluster) or "external" (an operator's NATS).
	Mode string `json:"mode"`
	// Replicas is the replica count of the buckets, object stores and streams the control plane
	// creates.
	Replicas int `json:"replicas"`
	// Node is the NATS server this replica is connected to: its embedded one, or the external
	// server its connection is on.
	Node ClusterNode `json:"node"`
	// MetaLeader is the server name of the JetStream meta leader ("" while there is none, or
	// when the bus is external and this replica cannot see it).
	MetaLeader string `json:"metaLeader"`
	// Peers are the JetStream peers of the meta group this node knows of, itself included
	// (embedded cluster only).
	Peers []ClusterPeer `json:"peers"`
	// Owners maps a DSN group or partition to the replica that owns its distribution; empty
	// while ownership is not reported.
	Owners map[string]string `json:"owners"`
}

// ClusterNode is one NATS server of the control plane's bus.
type ClusterNode struct {
	ServerName  string `json:"serverName"`
	ClusterName string `json:"clusterName,omitempty"`
	// RoutesUp counts the route connections to other nodes that are up; Remotes names the
	// nodes they lead to.
	RoutesUp int      `json:"routesUp"`
	Remotes  []string `json:"remotes,omitempty"`
}

// ClusterPeer is one JetStream peer of the meta group.
type ClusterPeer struct {
	Name string `json:"name"`
	// Current: seen recently and caught up; Offline: not seen recently.
	Current bool `json:"current"`
	Offline bool `json:"offline"`
	// ActiveMillis is how long ago it was last heard from (0 for this node itself).
	ActiveMillis int64 `json:"activeMillis"`
	Leader       bool  `json:"leader,omitempty"`
}
