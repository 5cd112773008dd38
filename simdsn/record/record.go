// Package record is how simulated DSNs report to the harness, whatever driver runs them: each
// DSN emits Records (state transitions, applied revisions, watch anomalies, faults) in one
// encoding, JSON lines, and a Collector turns the stream into per-DSN measurements. The
// in-process driver writes the lines straight into the Collector; the process and container
// drivers carry the same lines over a harness connection.
package record

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/dsnscale/dsnscale/controlplane/wire"
)

// ErrInvalid marks a record that cannot be decoded or breaks the rules.
var ErrInvalid = errors.New("invalid record")

// Record types.
const (
	// TypeState is a state transition: State (and Stage) entered at At.
	TypeState = "state"
	// TypeApplied is a change of applied revision (0 when the DSN lost its config).
	TypeApplied = "applied"
	// TypeWatch is an anomaly in what the DSN was sent: Watch says which.
	TypeWatch = "watch"
	// TypeFault is a fault starting (Detail "start") or ending ("end") on a DSN.
	TypeFault = "fault"
	// TypeUnit is about a unit (process or container) rather than one DSN.
	TypeUnit = "unit"
	// TypeUsage is a unit's own resource use, reported by the unit (wherever it runs): Host,
	// CPU (seconds since the unit's process started) and RSS (bytes).
	TypeUsage = "usage"
	// TypeAckDropped is an ack of Revision the DSN did not send (a misbehaviour dropped it).
	TypeAckDropped = "ack-dropped"
	// TypeAdmission is why the DSN is not admitted yet: Detail is the reason (a connection or
	// identity refused, the control plane's rejection or retry), with the DSN's own id
	// replaced by "<dsn>" so that reasons count across DSNs. It is emitted when the reason
	// changes.
	TypeAdmission = "admission"
)

// AdmissionRetry starts the reason of a DSN the control plane asked to retry later (admission
// control pacing a storm, not a refusal).
const AdmissionRetry = "the control plane asked to retry later"

// Watch anomalies.
const (
	// WatchGap: a push started past the applied revision (something was missed).
	WatchGap = "gap"
	// WatchDuplicate: a push of this session at or below the applied revision.
	WatchDuplicate = "duplicate"
	// WatchOvertaken: a push at or below the revision of the DSN's admission, which the
	// control plane decided before it answered the DSN's Hello (sent to the session the DSN had
	// left): a leftover the admission overtook, not a duplicate.
	WatchOvertaken = "overtaken"
	// WatchRegression: the control plane announced a revision below one it announced before.
	WatchRegression = "regression"
)

// Record is one report. At is Unix nanoseconds on the reporter's clock (never skewed by a
// clock-skew fault).
type Record struct {
	At       int64  `json:"at"`
	Type     string `json:"type"`
	DSN      string `json:"dsn,omitempty"`
	Unit     string `json:"unit,omitempty"`
	State    string `json:"state,omitempty"`
	Stage    string `json:"stage,omitempty"`
	Revision uint64 `json:"rev,omitempty"`
	// Prev is the applied revision before an anomaly (watch records).
	Prev   uint64 `json:"prev,omitempty"`
	Watch  string `json:"watch,omitempty"`
	Detail string `json:"detail,omitempty"`
	// Host, CPU and RSS are a unit's usage (usage records).
	Host string  `json:"host,omitempty"`
	CPU  float64 `json:"cpu,omitempty"`
	RSS  int64   `json:"rss,omitempty"`
}

// Validate checks a decoded record.
func (r *Record) Validate() error {
	switch r.Type {
	case TypeState, TypeApplied, TypeWatch, TypeFault, TypeAckDropped, TypeAdmission:
		if !wire.ValidID(r.DSN) {
			return fmt.Errorf("%w: %s record: dsn %q is not a DSN id", ErrInvalid, r.Type, r.DSN)
		}
	case TypeUnit, TypeUsage:
		if r.Unit == "" {
			return fmt.Errorf("%w: %s record without a unit", ErrInvalid, r.Type)
		}
		if r.CPU < 0 || r.RSS < 0 {
			return fmt.Errorf("%w: usage of unit %s is negative", ErrInvalid, r.Unit)
		}
	default:
		return fmt.Errorf("%w: unknown type %q", ErrInvalid, r.Type)
	}
	if r.Type == TypeState && r.State == "" {
		return fmt.Errorf("%w: state record for %s without a state", ErrInvalid, r.DSN)
	}
	if r.Type == TypeWatch && r.Watch != WatchGap && r.Watch != WatchDuplicate && r.Watch != WatchOvertaken && r.Watch != WatchRegression {
		return fmt.Errorf("%w: watch record for %s: unknown anomaly %q", ErrInvalid, r.DSN, r.Watch)
	}
	return nil
}

// Encoder writes records as JSON lines. It is safe for concurrent use; each record is one
// Write call.
type Encoder struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

// NewEncoder writes to w.
func NewEncoder(w io.Writer) *Encoder { return &Encoder{w: w} }

// Emit writes one record.
func (e *Encoder) Emit(r Record) error {
	b, err := json.Marshal(&r)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.buf = append(append(e.buf[:0], b...), '\n')
	_, err = e.w.Write(e.buf)
	return err
}

// Decode reads one line.
func Decode(line []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(line, &r); err != nil {
		return r, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return r, r.Validate()
}

// MaxLine bounds one encoded record.
const MaxLine = 64 << 10

// ReadAll decodes lines from rd and hands each record to fn until EOF (nil) or a read error.
// A line that does not decode is an error: the stream comes from our own code, so it is broken.
func ReadAll(rd io.Reader, fn func(Record)) error {
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 0, 4096), MaxLine)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		r, err := Decode(sc.Bytes())
		if err != nil {
			return err
		}
		fn(r)
	}
	return sc.Err()
}
