// Package inventory keeps the control plane's SQL inventory of DSNs: identity, labels, software
// version and its history, site and rack, state, applied revision, last contact, and the history
// of admissions.
//
// Two implementations share one SQL code path and pass the conformance suite inventorytest.Run:
// embedded SQLite (modernc.org/sqlite, pure Go) and PostgreSQL (pgx). The schema is created and
// upgraded by versioned migrations embedded in the binary, one set per SQL dialect.
package inventory

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/wire"
)

// Sentinel errors. Errors returned by this package wrap one of them.
var (
	ErrBadURL      = errors.New("inventory: bad database URL")
	ErrUnreachable = errors.New("inventory: database unreachable")
	ErrInvalid     = errors.New("inventory: invalid input")
	ErrNotFound    = errors.New("inventory: not found")
	ErrBackend     = errors.New("inventory: database error")
	// ErrSchema marks a database whose schema this binary cannot use (a newer binary migrated it,
	// or a migration failed).
	ErrSchema = errors.New("inventory: schema error")
	ErrClosed = errors.New("inventory: closed")
)

// States a DSN may be in (model.DSNState*).
var States = []string{
	model.DSNStateAdmitted, model.DSNStateSyncing, model.DSNStateInSync,
	model.DSNStateLagging, model.DSNStateQuarantined, model.DSNStateOffline,
}

// Admission outcomes the control plane records; others matching [a-z][a-z0-9_-]{0,31} are
// accepted too.
const (
	OutcomeAdmitted = "admitted" // identity issued, DSN joined
	OutcomeRejected = "rejected" // bad token or identity
	OutcomeShed     = "shed"     // refused under load, told to retry later
)

// Limits shared by every implementation.
const (
	MaxLabels        = 64
	MaxLabelKeyLen   = 128
	MaxLabelValueLen = 256
	MaxShortLen      = 256 // software version, site, rack
	DefaultPageSize  = 100
	MaxPageSize      = 10000
	DefaultHistory   = 1000
)

var (
	labelKeyPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_./-]{0,127}$`)
	outcomePattern  = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)
)

// DSNRecord is one DSN in the inventory.
type DSNRecord struct {
	ID              string            `json:"id"`
	Labels          map[string]string `json:"labels,omitempty"`
	SoftwareVersion string            `json:"softwareVersion,omitempty"`
	Site            string            `json:"site,omitempty"`
	Rack            string            `json:"rack,omitempty"`
	State           string            `json:"state"`
	AppliedRevision uint64            `json:"appliedRevision"`
	// LastSeen is the last contact; zero when never seen. Nanosecond precision, UTC.
	LastSeen time.Time `json:"lastSeen,omitzero"`
	// CreatedAt and UpdatedAt are set by the inventory; values passed to UpsertDSN are ignored.
	CreatedAt time.Time `json:"createdAt,omitzero"`
	UpdatedAt time.Time `json:"updatedAt,omitzero"`
}

// Validate checks a record: a DSN ID as the southbound protocol defines it (wire.ValidID), a known
// state, labels and text fields within the limits, a revision that fits a signed 64-bit column.
func (r DSNRecord) Validate() error {
	if !wire.ValidID(r.ID) {
		return fmt.Errorf("%w: dsn id %q: want 1-128 of [A-Za-z0-9_-]", ErrInvalid, r.ID)
	}
	if err := validState(r.State); err != nil {
		return fmt.Errorf("%w: dsn %s: %w", ErrInvalid, r.ID, err)
	}
	if err := validLabels(r.Labels); err != nil {
		return fmt.Errorf("%w: dsn %s: %w", ErrInvalid, r.ID, err)
	}
	for _, f := range []struct{ name, v string }{{"softwareVersion", r.SoftwareVersion}, {"site", r.Site}, {"rack", r.Rack}} {
		if len(f.v) > MaxShortLen || !utf8.ValidString(f.v) {
			return fmt.Errorf("%w: dsn %s: %s must be valid UTF-8 of at most %d bytes", ErrInvalid, r.ID, f.name, MaxShortLen)
		}
	}
	if r.AppliedRevision > math.MaxInt64 {
		return fmt.Errorf("%w: dsn %s: appliedRevision %d exceeds %d", ErrInvalid, r.ID, r.AppliedRevision, int64(math.MaxInt64))
	}
	if !r.LastSeen.IsZero() && r.LastSeen.Before(time.Unix(0, 0)) {
		return fmt.Errorf("%w: dsn %s: lastSeen %v is before 1970", ErrInvalid, r.ID, r.LastSeen)
	}
	return nil
}

func validState(s string) error {
	for _, v := range States {
		if s == v {
			return nil
		}
	}
	return fmt.Errorf("state %q: want one of %v", s, States)
}

func validLabels(ls map[string]string) error {
	if len(ls) > MaxLabels {
		return fmt.Errorf("%d labels: at most %d", len(ls), MaxLabels)
	}
	for k, v := range ls {
		if !labelKeyPattern.MatchString(k) {
			return fmt.Errorf("label key %q: want 1-128 of [A-Za-z0-9_./-], starting with a letter or digit", k)
		}
		if len(v) > MaxLabelValueLen || !utf8.ValidString(v) {
			return fmt.Errorf("labels.%s: value must be valid UTF-8 of at most %d bytes", k, MaxLabelValueLen)
		}
	}
	return nil
}

// Admission is one admission attempt of a DSN.
type Admission struct {
	DSN     string    `json:"dsn"`
	At      time.Time `json:"at"`
	Outcome string    `json:"outcome"`
}

// VersionChange records that a DSN reported a software version, first or changed.
type VersionChange struct {
	DSN             string    `json:"dsn"`
	SoftwareVersion string    `json:"softwareVersion"`
	At              time.Time `json:"at"`
}

// Filter selects DSNs. Every set criterion must hold.
type Filter struct {
	Labels          map[string]string // each label must have exactly this value
	State           string
	Site            string
	SoftwareVersion string
	// After is the paging cursor: only DSNs whose ID sorts after it (byte order). Pass the
	// previous Page's Next.
	After string
	// Limit is the page size; 0 means DefaultPageSize.
	Limit int
}

// Validate checks the filter.
func (f Filter) Validate() error {
	if f.State != "" {
		if err := validState(f.State); err != nil {
			return fmt.Errorf("%w: filter %w", ErrInvalid, err)
		}
	}
	if err := validLabels(f.Labels); err != nil {
		return fmt.Errorf("%w: filter %w", ErrInvalid, err)
	}
	if f.After != "" && !wire.ValidID(f.After) {
		return fmt.Errorf("%w: filter after %q: not a DSN id", ErrInvalid, f.After)
	}
	if f.Limit < 0 || f.Limit > MaxPageSize {
		return fmt.Errorf("%w: filter limit %d: want 0..%d", ErrInvalid, f.Limit, MaxPageSize)
	}
	return nil
}

// Page is one page of DSNs in ID order.
type Page struct {
	DSNs []DSNRecord
	// Next is the cursor for the following page; empty on the last page.
	Next string
}

// Summary counts the DSNs.
type Summary struct {
	Total             int            `json:"total"`
	ByState           map[string]int `json:"byState"`
	BySoftwareVersion map[string]int `json:"bySoftwareVersion"`
}

// Inventory is the DSN inventory. It is safe for concurrent use.
type Inventory interface {
	// UpsertDSN inserts or replaces a DSN (labels included). A new or changed software version
	// is appended to the version history, at LastSeen (or now when LastSeen is zero).
	UpsertDSN(ctx context.Context, rec DSNRecord) error
	// UpsertDSNs upserts records in one transaction: all or none. An ID may appear once.
	UpsertDSNs(ctx context.Context, recs ...DSNRecord) error
	// GetDSN returns one DSN, or an error wrapping ErrNotFound.
	GetDSN(ctx context.Context, id string) (DSNRecord, error)
	// ListDSNs returns a page of the DSNs matching f, in ID order.
	ListDSNs(ctx context.Context, f Filter) (Page, error)
	// Summarize counts DSNs by state and software version.
	Summarize(ctx context.Context) (Summary, error)
	// DeleteDSN removes a DSN, its labels, version history and admission history; an unknown ID
	// gets an error wrapping ErrNotFound.
	DeleteDSN(ctx context.Context, id string) error
	// RecordAdmission appends an admission attempt. The DSN need not be in the inventory
	// (rejected DSNs never are).
	RecordAdmission(ctx context.Context, id string, at time.Time, outcome string) error
	// AdmissionHistory returns a DSN's most recent admissions, at most limit (0 means
	// DefaultHistory), oldest first.
	AdmissionHistory(ctx context.Context, id string, limit int) ([]Admission, error)
	// VersionHistory returns a DSN's software versions, oldest first.
	VersionHistory(ctx context.Context, id string) ([]VersionChange, error)
	// PruneAdmissions deletes admissions before t and returns how many.
	PruneAdmissions(ctx context.Context, before time.Time) (int64, error)
	// Close releases the database.
	Close() error
}
