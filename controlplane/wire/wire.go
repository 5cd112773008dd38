// Package wire is the southbound protocol between the control plane and DSN agents: the NATS
// subjects, the message types and the rules for using them. docs/PROTOCOL.md is its prose form.
//
// Every message is one JSON object in one NATS message. Fields unknown to a receiver are
// ignored, so either side may add optional fields within the same protocol version.
package wire

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"

	"github.com/dsnscale/dsnscale/controlplane/model"
)

// Version is the protocol version carried in Hello; the control plane rejects others.
const Version = 1

// Subjects. A DSN talks on subjects that carry its own id, so that per-identity permissions
// can confine it to them.
const (
	// SubjectHello takes Hello requests and answers with an Admission (request/reply).
	SubjectHello = "dsn.v1.hello"
	// SnapshotBucket is the JetStream object store bucket holding group snapshots.
	SnapshotBucket = "dsn-snapshots"
	// QueueGroup is the queue group control-plane replicas subscribe with.
	QueueGroup = "cp"
)

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
	// BootstrapToken and CSR are used by admission with identities (see PROTOCOL.md, Identity).
	BootstrapToken string `json:"bootstrapToken,omitempty"`
	CSR            string `json:"csr,omitempty"`
}

// Validate checks a Hello received from a DSN.
func (h *Hello) Validate() error {
	switch {
	case h.Protocol != Version:
		return fmt.Errorf("%w: protocol: got %d, want %d", ErrInvalid, h.Protocol, Version)
	case !ValidID(h.DSN):
		return fmt.Errorf("%w: dsn: %q is not 1-128 characters of [A-Za-z0-9_-]", ErrInvalid, h.DSN)
	case len(h.Labels) > 64:
		return fmt.Errorf("%w: labels: %d labels, at most 64", ErrInvalid, len(h.Labels))
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
	// Certificate is the PEM identity issued for the Hello's CSR, if one was sent.
	Certificate string `json:"certificate,omitempty"`
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
)

// Push is a message from the control plane to one DSN.
//
// A DSN at applied revision A may apply a delta or current push iff From <= A; it then has
// revision max(A, To). A push with From > A means the DSN missed something: it sends Hello with
// its AppliedRevision to resynchronise. Pushes with To <= A are duplicates and are ignored.
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
// may be applied more than once.
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

// SnapshotObject is the object-store name of a group's snapshot.
func SnapshotObject(group string) string { return "group-" + group }
