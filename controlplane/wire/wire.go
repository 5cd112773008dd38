// Package wire is the southbound protocol between the control plane and DSN agents: the NATS
// subjects, the message types and the rules for using them. docs/PROTOCOL.md is its prose form.
//
// Every message is one JSON object in one NATS message. Fields unknown to a receiver are
// ignored, so either side may add optional fields within the same protocol version.
package wire

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/model"
)

// Version is the protocol version carried in Hello; the control plane rejects others.
const Version = 1

// Subjects. A DSN talks only on subjects that carry its own id, so that per-identity
// permissions confine it to them and a message on them is known to come from that DSN.
const (
	// SnapshotBucket is the JetStream object store bucket holding group snapshots.
	SnapshotBucket = "dsn-snapshots"
	// QueueGroup is the queue group control-plane replicas subscribe with.
	QueueGroup = "cp"
)

// HelloSubject takes a DSN's Hello requests; the control plane answers with an Admission
// (request/reply). The Hello's dsn must be the subject's id.
func HelloSubject(dsn string) string { return "dsn.v1.dsn." + dsn + ".hello" }

// RenewSubject takes a DSN's RenewRequest; the control plane answers with a RenewResponse
// (request/reply).
func RenewSubject(dsn string) string { return "dsn.v1.dsn." + dsn + ".renew" }

// PushSubject is where the control plane sends Push messages for one DSN.
func PushSubject(dsn string) string { return "dsn.v1.dsn." + dsn + ".push" }

// AckSubject is where a DSN publishes Ack messages.
func AckSubject(dsn string) string { return "dsn.v1.dsn." + dsn + ".ack" }

// HeartbeatSubject is where a DSN publishes Heartbeat messages.
func HeartbeatSubject(dsn string) string { return "dsn.v1.dsn." + dsn + ".heartbeat" }

// TelemetrySubject is where a DSN publishes TelemetryBatch messages.
func TelemetrySubject(dsn string) string { return "dsn.v1.dsn." + dsn + ".telemetry" }

// EventSubject is where a DSN publishes Event messages.
func EventSubject(dsn string) string { return "dsn.v1.dsn." + dsn + ".events" }

// Wildcards the control plane subscribes to.
const (
	AllAcks       = "dsn.v1.dsn.*.ack"
	AllHeartbeats = "dsn.v1.dsn.*.heartbeat"
	AllTelemetry  = "dsn.v1.dsn.*.telemetry"
	AllEvents     = "dsn.v1.dsn.*.events"
	AllHellos     = "dsn.v1.dsn.*.hello"
	AllRenewals   = "dsn.v1.dsn.*.renew"
	AllPushes     = "dsn.v1.dsn.*.push"
)

// ErrInvalid marks a message that breaks the protocol's rules.
var ErrInvalid = errors.New("invalid message")

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// ValidID reports whether id can name a DSN: 1-128 of [A-Za-z0-9_-], so it is one NATS token.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// Hello is a DSN's first message after it connects (or reconnects): who it is and what it has.
type Hello struct {
	Protocol        int               `json:"protocol"`
	DSN             string            `json:"dsn"`
	Labels          map[string]string `json:"labels,omitempty"`
	SoftwareVersion string            `json:"softwareVersion,omitempty"`
	// AppliedRevision is the revision of the config the DSN has applied (from its local cache
	// after a restart); 0 when it has none.
	AppliedRevision uint64 `json:"appliedRevision"`
	// BootID changes on every DSN start, so the control plane can tell a restart from a reconnect.
	BootID string `json:"bootID,omitempty"`
}

// Limits on the sizes of fields a DSN sends.
const (
	MaxLabels         = 64
	MaxLabelKeyLen    = 128
	MaxLabelValueLen  = 256
	MaxShortStringLen = 128      // software version, boot id, session id, state
	MaxCSRLen         = 16 << 10 // PEM certificate signing request
	MaxErrorLen       = 4096     // Ack.Error
	MaxMessageBytes   = 64 << 20 // any single decoded message
)

// Validate checks a Hello received from a DSN.
func (h *Hello) Validate() error {
	switch {
	case h.Protocol != Version:
		return fmt.Errorf("%w: protocol: got %d, want %d", ErrInvalid, h.Protocol, Version)
	case !ValidID(h.DSN):
		return fmt.Errorf("%w: dsn: %q is not 1-128 characters of [A-Za-z0-9_-]", ErrInvalid, h.DSN)
	case len(h.Labels) > MaxLabels:
		return fmt.Errorf("%w: labels: %d labels, at most %d", ErrInvalid, len(h.Labels), MaxLabels)
	case len(h.SoftwareVersion) > MaxShortStringLen:
		return fmt.Errorf("%w: softwareVersion: %d bytes, at most %d", ErrInvalid, len(h.SoftwareVersion), MaxShortStringLen)
	case len(h.BootID) > MaxShortStringLen:
		return fmt.Errorf("%w: bootID: %d bytes, at most %d", ErrInvalid, len(h.BootID), MaxShortStringLen)
	}
	for k, v := range h.Labels {
		switch {
		case k == "" || len(k) > MaxLabelKeyLen:
			return fmt.Errorf("%w: labels: key %q is not 1-%d bytes", ErrInvalid, k, MaxLabelKeyLen)
		case strings.ContainsAny(k, "=,"):
			// GroupID renders labels as k=v,k=v: these characters would let two label sets collide.
			return fmt.Errorf("%w: labels: key %q contains '=' or ','", ErrInvalid, k)
		case len(v) > MaxLabelValueLen:
			return fmt.Errorf("%w: labels.%s: value is %d bytes, at most %d", ErrInvalid, k, len(v), MaxLabelValueLen)
		case strings.Contains(v, ","):
			return fmt.Errorf("%w: labels.%s: value %q contains ','", ErrInvalid, k, v)
		}
	}
	return nil
}

// Admission statuses.
const (
	Admitted = "admitted" // proceed as the Admission says
	Retry    = "retry"    // the control plane is busy: send Hello again after RetryAfterMs
	Rejected = "rejected" // not admitted; Reason says why; do not retry without a change
)

// Admission answers a Hello. An admitted DSN is told what it is missing in exactly one of three
// ways: UpToDate (a version check: nothing to fetch), Delta (the changes after its applied
// revision, inline) or Snapshot (fetch the object from the object store, then apply pushed deltas
// after it).
type Admission struct {
	Status       string `json:"status"`
	Reason       string `json:"reason,omitempty"`
	RetryAfterMs int    `json:"retryAfterMs,omitempty"`
	SessionID    string `json:"sessionID,omitempty"`
	// Revision is the control plane's current revision, the DSN's desired revision.
	Revision            uint64       `json:"revision"`
	UpToDate            bool         `json:"upToDate,omitempty"`
	Delta               *Push        `json:"delta,omitempty"`
	Snapshot            *SnapshotRef `json:"snapshot,omitempty"`
	HeartbeatIntervalMs int          `json:"heartbeatIntervalMs"`
}

// RenewRequest asks for a new certificate for the DSN's identity before its current one
// expires: CSR is a PEM certificate signing request for a key of the DSN's (a new one, or the
// same), naming the DSN exactly as admission did.
type RenewRequest struct {
	DSN string `json:"dsn"`
	CSR string `json:"csr"`
}

// Validate checks a RenewRequest received from a DSN.
func (r *RenewRequest) Validate() error {
	switch {
	case !ValidID(r.DSN):
		return fmt.Errorf("%w: dsn: %q is not 1-128 characters of [A-Za-z0-9_-]", ErrInvalid, r.DSN)
	case r.CSR == "":
		return fmt.Errorf("%w: csr: required", ErrInvalid)
	case len(r.CSR) > MaxCSRLen:
		return fmt.Errorf("%w: csr: %d bytes, at most %d", ErrInvalid, len(r.CSR), MaxCSRLen)
	}
	return nil
}

// RenewResponse answers a RenewRequest: the new PEM certificate and its expiry, or Error.
type RenewResponse struct {
	Certificate string    `json:"certificate,omitempty"`
	NotAfter    time.Time `json:"notAfter,omitempty"`
	Error       string    `json:"error,omitempty"`
}

// Validate checks a RenewResponse received from the control plane.
func (r *RenewResponse) Validate() error {
	if (r.Certificate == "") == (r.Error == "") {
		return fmt.Errorf("%w: exactly one of certificate and error must be set", ErrInvalid)
	}
	return nil
}

// SnapshotRef names a snapshot object in the object store.
type SnapshotRef struct {
	Bucket   string `json:"bucket"`
	Object   string `json:"object"`
	Revision uint64 `json:"revision"`
	Size     int    `json:"size"`
	SHA256   string `json:"sha256"`
}

// Snapshot is the content of a snapshot object: the complete config of one label group at
// Revision.
type Snapshot struct {
	Group    string         `json:"group"`
	Revision uint64         `json:"revision"`
	Objects  []model.Object `json:"objects"`
}

// Push types.
const (
	PushDelta      = "delta"      // apply Changes; the DSN then has revision To
	PushCurrent    = "current"    // a version check: nothing changed for this DSN up to To
	PushResync     = "resync"     // drop incremental state: fetch Snapshot, then continue
	PushQuarantine = "quarantine" // the control plane stops pushing; keep serving, send Hello to rejoin
	// PushRehello says the control plane has no session for the DSN (it restarted, or the DSN
	// was decommissioned): send Hello again, keeping the applied config.
	PushRehello = "rehello"
)

// Push is a message from the control plane to one DSN.
//
// A DSN at applied revision A may apply a delta or current push iff From <= A; it then has
// revision max(A, To). A push with From > A means the DSN missed something: it sends Hello with
// its AppliedRevision to resynchronise. Pushes with To <= A are duplicates and are ignored.
//
// The Changes of a delta are the latest state, as of To, of every object of the DSN's view that
// changed in (From, To]; applying them to the config at any revision in [From, To] gives the
// config at To. A resync replaces the DSN's whole config with the snapshot's, whatever its
// applied revision; quarantine and rehello carry no revision (From and To are 0).
type Push struct {
	Type     string       `json:"type"`
	From     uint64       `json:"from"`
	To       uint64       `json:"to"`
	Changes  []Change     `json:"changes,omitempty"`
	Snapshot *SnapshotRef `json:"snapshot,omitempty"`
	Reason   string       `json:"reason,omitempty"`
}

// Change operations.
const (
	OpPut    = "put"
	OpDelete = "delete"
)

// Change is one object's new state: the whole object for a put, only its identity for a delete.
// Applying a change whose Revision is not above the object's current one is a no-op, so changes
// may be applied more than once. A DSN that does not hold the object applies a put and ignores a
// delete. Revision is the object's revision for a put (an object that enters a DSN's view
// without changing keeps its revision) and the revision of the push for a delete.
type Change struct {
	Op       string        `json:"op"`
	Kind     model.Kind    `json:"kind"`
	Tenant   string        `json:"tenant,omitempty"`
	Name     string        `json:"name"`
	Revision uint64        `json:"revision"`
	Object   *model.Object `json:"object,omitempty"`
}

// Ack tells the control plane which revision a DSN has applied.
type Ack struct {
	DSN       string `json:"dsn"`
	SessionID string `json:"sessionID"`
	Revision  uint64 `json:"revision"`
	// Error is set when the DSN failed to apply; Revision is then what it still has.
	Error string `json:"error,omitempty"`
}

// States a DSN reports in Heartbeat.State.
const (
	StateServing     = "serving"     // applied config is in force and the DSN follows pushes
	StateSyncing     = "syncing"     // fetching or applying a snapshot or a delta
	StateQuarantined = "quarantined" // quarantined: serving its last config, waiting to rejoin
)

// Heartbeat says a DSN is alive, what it has applied and what state it is in.
type Heartbeat struct {
	DSN             string `json:"dsn"`
	SessionID       string `json:"sessionID"`
	AppliedRevision uint64 `json:"appliedRevision"`
	State           string `json:"state"`
	SentUnixNano    int64  `json:"sentUnixNano"`
}

// Sample is one metric value.
type Sample struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	Value  float64           `json:"value"`
}

// TelemetryBatch carries a DSN's metric samples taken at one time.
type TelemetryBatch struct {
	DSN          string   `json:"dsn"`
	TimeUnixNano int64    `json:"timeUnixNano"`
	Samples      []Sample `json:"samples"`
}

// Event is something that happened on a DSN: admission, config applied, an error, a fault, a
// log line.
type Event struct {
	DSN          string            `json:"dsn"`
	TimeUnixNano int64             `json:"timeUnixNano"`
	Type         string            `json:"type"`
	Severity     string            `json:"severity"` // debug, info, warning, error
	Message      string            `json:"message"`
	Fields       map[string]string `json:"fields,omitempty"`
}

// GroupID names the label group of a DSN with the given labels: DSNs with equal label sets share
// a group and its snapshot.
func GroupID(labels map[string]string) string {
	sum := sha256.Sum256([]byte(model.SortedLabels(labels)))
	return hex.EncodeToString(sum[:8])
}

// GroupIDFor names the group of a DSN of tenant with the given labels. DSNs of different
// tenants never share a group, even with equal labels; a DSN with no tenant (one with no
// admission record: security off, or spoken for by a fleet gateway) is in the group GroupID
// names.
func GroupIDFor(tenant string, labels map[string]string) string {
	if tenant == "" {
		return GroupID(labels)
	}
	sum := sha256.Sum256([]byte("tenant=" + tenant + ";" + model.SortedLabels(labels)))
	return hex.EncodeToString(sum[:8])
}

// SnapshotBucketFor is the object store bucket holding the group snapshots of tenant's DSNs:
// SnapshotBucket for no tenant, SnapshotBucket + "_" + tenant otherwise. A DSN's bus
// permissions let it read its own tenant's bucket only.
func SnapshotBucketFor(tenant string) string {
	if tenant == "" {
		return SnapshotBucket
	}
	return SnapshotBucket + "_" + tenant
}

// SnapshotObject is the object-store name of a group's snapshot.
func SnapshotObject(group string) string { return "group-" + group }

// DSNFromSubject returns the DSN id of a per-DSN subject ("dsn.v1.dsn.<id>.<kind>"), or false
// if subject is not one.
func DSNFromSubject(subject string) (string, bool) {
	const prefix = "dsn.v1.dsn."
	if !strings.HasPrefix(subject, prefix) {
		return "", false
	}
	rest := subject[len(prefix):]
	i := strings.IndexByte(rest, '.')
	if i <= 0 || strings.IndexByte(rest[i+1:], '.') >= 0 || !ValidID(rest[:i]) {
		return "", false
	}
	return rest[:i], true
}

// Validator is a message that can check itself.
type Validator interface {
	Validate() error
}

// Unmarshal decodes one JSON message into v and validates it. Every error wraps ErrInvalid.
func Unmarshal(data []byte, v Validator) error {
	if len(data) > MaxMessageBytes {
		return fmt.Errorf("%w: message of %d bytes, at most %d", ErrInvalid, len(data), MaxMessageBytes)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return v.Validate()
}

// Validate checks an Admission received from the control plane.
func (a *Admission) Validate() error {
	switch a.Status {
	case Admitted:
		if a.SessionID == "" || len(a.SessionID) > MaxShortStringLen {
			return fmt.Errorf("%w: sessionID: must be 1-%d bytes when admitted", ErrInvalid, MaxShortStringLen)
		}
		if a.HeartbeatIntervalMs <= 0 {
			return fmt.Errorf("%w: heartbeatIntervalMs: %d, must be positive when admitted", ErrInvalid, a.HeartbeatIntervalMs)
		}
		n := 0
		if a.UpToDate {
			n++
		}
		if a.Delta != nil {
			n++
			if err := a.Delta.Validate(); err != nil {
				return fmt.Errorf("delta: %w", err)
			}
			if a.Delta.Type != PushDelta && a.Delta.Type != PushCurrent {
				return fmt.Errorf("%w: delta.type: %q, want %q or %q", ErrInvalid, a.Delta.Type, PushDelta, PushCurrent)
			}
			if a.Delta.To != a.Revision {
				return fmt.Errorf("%w: delta.to: %d, want the admission revision %d", ErrInvalid, a.Delta.To, a.Revision)
			}
		}
		if a.Snapshot != nil {
			n++
			if err := a.Snapshot.Validate(); err != nil {
				return fmt.Errorf("snapshot: %w", err)
			}
			if a.Snapshot.Revision > a.Revision {
				return fmt.Errorf("%w: snapshot.revision: %d is past the admission revision %d", ErrInvalid, a.Snapshot.Revision, a.Revision)
			}
		}
		if n != 1 {
			return fmt.Errorf("%w: exactly one of upToDate, delta and snapshot must be set, got %d", ErrInvalid, n)
		}
	case Retry:
		if a.RetryAfterMs < 0 {
			return fmt.Errorf("%w: retryAfterMs: %d, must not be negative", ErrInvalid, a.RetryAfterMs)
		}
	case Rejected:
	default:
		return fmt.Errorf("%w: status: %q, want %q, %q or %q", ErrInvalid, a.Status, Admitted, Retry, Rejected)
	}
	return nil
}

// Validate checks a snapshot reference.
func (r *SnapshotRef) Validate() error {
	switch {
	case r.Bucket == "":
		return fmt.Errorf("%w: bucket: empty", ErrInvalid)
	case r.Object == "":
		return fmt.Errorf("%w: object: empty", ErrInvalid)
	case r.Size < 0:
		return fmt.Errorf("%w: size: %d, must not be negative", ErrInvalid, r.Size)
	case r.SHA256 != "" && !isHex(r.SHA256, 64):
		return fmt.Errorf("%w: sha256: %q is not 64 hex digits", ErrInvalid, r.SHA256)
	}
	return nil
}

// Validate checks the content of a snapshot object.
func (s *Snapshot) Validate() error {
	if s.Group == "" {
		return fmt.Errorf("%w: group: empty", ErrInvalid)
	}
	for i := range s.Objects {
		o := &s.Objects[i]
		if o.Kind == "" || o.Metadata.Name == "" {
			return fmt.Errorf("%w: objects[%d]: kind and metadata.name are required", ErrInvalid, i)
		}
	}
	return nil
}

// Validate checks a Push received from the control plane.
func (p *Push) Validate() error {
	switch p.Type {
	case PushDelta, PushCurrent:
		if p.From > p.To {
			return fmt.Errorf("%w: from %d is past to %d", ErrInvalid, p.From, p.To)
		}
		if p.Type == PushCurrent && len(p.Changes) > 0 {
			return fmt.Errorf("%w: changes: a current push carries none, got %d", ErrInvalid, len(p.Changes))
		}
		for i := range p.Changes {
			if err := p.Changes[i].Validate(); err != nil {
				return fmt.Errorf("changes[%d]: %w", i, err)
			}
		}
	case PushResync:
		if p.Snapshot == nil {
			return fmt.Errorf("%w: snapshot: required in a resync push", ErrInvalid)
		}
		if err := p.Snapshot.Validate(); err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
	case PushQuarantine, PushRehello:
	default:
		return fmt.Errorf("%w: type: %q is not a push type", ErrInvalid, p.Type)
	}
	return nil
}

// Validate checks one change of a delta.
func (c *Change) Validate() error {
	switch {
	case c.Op != OpPut && c.Op != OpDelete:
		return fmt.Errorf("%w: op: %q, want %q or %q", ErrInvalid, c.Op, OpPut, OpDelete)
	case c.Kind == "" || c.Name == "":
		return fmt.Errorf("%w: kind and name are required", ErrInvalid)
	case c.Op == OpPut && c.Object == nil:
		return fmt.Errorf("%w: object: required for a put", ErrInvalid)
	case c.Object != nil && (c.Object.Kind != c.Kind || c.Object.Metadata.Name != c.Name || c.Object.Metadata.Tenant != c.Tenant):
		return fmt.Errorf("%w: object: %s/%s/%s does not match the change's %s/%s/%s", ErrInvalid,
			c.Object.Kind, c.Object.Metadata.Tenant, c.Object.Metadata.Name, c.Kind, c.Tenant, c.Name)
	}
	return nil
}

// Key is the identity of the object a change is about.
func (c *Change) Key() model.Key { return model.Key{Kind: c.Kind, Tenant: c.Tenant, Name: c.Name} }

// Validate checks an Ack received from a DSN.
func (a *Ack) Validate() error {
	switch {
	case !ValidID(a.DSN):
		return fmt.Errorf("%w: dsn: %q is not 1-128 characters of [A-Za-z0-9_-]", ErrInvalid, a.DSN)
	case a.SessionID == "" || len(a.SessionID) > MaxShortStringLen:
		return fmt.Errorf("%w: sessionID: must be 1-%d bytes", ErrInvalid, MaxShortStringLen)
	case len(a.Error) > MaxErrorLen:
		return fmt.Errorf("%w: error: %d bytes, at most %d", ErrInvalid, len(a.Error), MaxErrorLen)
	}
	return nil
}

// Validate checks a Heartbeat received from a DSN.
func (h *Heartbeat) Validate() error {
	switch {
	case !ValidID(h.DSN):
		return fmt.Errorf("%w: dsn: %q is not 1-128 characters of [A-Za-z0-9_-]", ErrInvalid, h.DSN)
	case h.SessionID == "" || len(h.SessionID) > MaxShortStringLen:
		return fmt.Errorf("%w: sessionID: must be 1-%d bytes", ErrInvalid, MaxShortStringLen)
	case len(h.State) > MaxShortStringLen:
		return fmt.Errorf("%w: state: %d bytes, at most %d", ErrInvalid, len(h.State), MaxShortStringLen)
	}
	return nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
