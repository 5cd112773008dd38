// Package store keeps the control plane's declarative intent in JetStream KV.
//
// Every accepted change gets a revision: the sequence number of the KV bucket's stream, strictly
// increasing across the whole store. An object's metadata.resourceVersion is the revision of its
// last write; writes that carry a resourceVersion are compare-and-swap. A batch of operations is
// committed all or nothing (JetStream atomic batch publish) and its operations get consecutive
// revisions.
package store

import (
	"context"
	"errors"

	"github.com/dsnscale/dsnscale/controlplane/model"
)

// Revision is a control-plane revision.
type Revision = uint64

// Sentinel errors; callers test them with errors.Is.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	ErrConflict      = errors.New("resourceVersion conflict")
	ErrCompacted     = errors.New("revision compacted")
	ErrClosed        = errors.New("store closed")
)

// OpType is what an Op does.
type OpType string

// Operation types.
const (
	OpCreate OpType = "create" // fails with ErrAlreadyExists if the key exists
	OpUpdate OpType = "update" // fails with ErrNotFound if it does not
	OpDelete OpType = "delete" // fails with ErrNotFound if it does not
)

// Op is one write. For update and delete, a non-empty Object.Metadata.ResourceVersion (or
// ExpectedRevision for delete) makes it conditional: ErrConflict unless it is the stored one.
type Op struct {
	Type   OpType
	Object *model.Object // for create and update: the new object; for delete: only Kind/Tenant/Name matter
	// ExpectedRevision, if non-zero, must equal the object's stored revision (delete and update).
	ExpectedRevision Revision
}

// Event is one committed change, as a watch delivers it.
type Event struct {
	Revision Revision
	Type     OpType        // create, update or delete
	Key      model.Key     //
	Object   *model.Object // the object after the change; for delete, the last state before it
}

// View is a consistent read-only view of current state, used to validate relations.
type View interface {
	Get(key model.Key) (*model.Object, bool)
	// List returns the objects of kind in tenant ("" for all tenants), in key order.
	List(kind model.Kind, tenant string) []*model.Object
}

// CheckFunc validates the state a batch would produce, before it is committed. It gets a view
// of current state with the batch applied; an error aborts the batch and is returned as is.
type CheckFunc func(after View) error

// ListOptions select and page a list.
type ListOptions struct {
	Tenant   string            // "" for all tenants (or for cluster-scoped kinds)
	Selector map[string]string // label equality; empty matches all
	Limit    int               // 0 for no limit
	Continue string            // opaque token from a previous page
}

// ListResult is one page of a list.
type ListResult struct {
	Items    []*model.Object
	Revision Revision // the store revision the page was read at
	Continue string   // non-empty when there are more items
}

// Store is the intent store.
type Store interface {
	// Get returns the current object at key, or ErrNotFound.
	Get(ctx context.Context, key model.Key) (*model.Object, error)
	// List returns a page of objects of a kind.
	List(ctx context.Context, kind model.Kind, opts ListOptions) (ListResult, error)
	// Commit validates and commits ops all or nothing. check (may be nil) sees the state after the
	// ops. It returns the stored objects (with resourceVersion set; for deletes the last state)
	// and the revision of the last op. With dryRun, everything is checked and nothing is written.
	Commit(ctx context.Context, ops []Op, check CheckFunc, dryRun bool) ([]*model.Object, Revision, error)
	// Revision returns the revision of the last committed change (0 for an empty store).
	Revision() Revision
	// Watch delivers every change with revision > from, once and in order, until ctx ends or the
	// watcher falls too far behind (then the channel closes and Err tells why). from below the
	// compaction horizon gives ErrCompacted.
	Watch(ctx context.Context, from Revision) (Watcher, error)
	// Changes returns the changes with revision in (from, to], oldest first, coalesced to the
	// latest per key, or ErrCompacted when from is below the compaction horizon.
	Changes(from, to Revision) ([]Event, error)
	// Snapshot returns a consistent view of all current objects and the revision it was taken at.
	Snapshot() (View, Revision)
	// Compact drops history at or below rev (never current state): later Watch/Changes calls from
	// below it give ErrCompacted.
	Compact(ctx context.Context, rev Revision) error
	// CompactedRevision is the revision at or below which history is gone.
	CompactedRevision() Revision
	// Close stops the store; it does not close the NATS connection it was given.
	Close() error
}

// Watcher is a running watch.
type Watcher interface {
	Events() <-chan Event
	// Err is why Events closed: nil after the context ended, otherwise the cause.
	Err() error
}
