package api

import (
	"context"
	"errors"

	"github.com/dsnscale/dsnscale/controlplane/model"
)

// ErrUnknownDSN is returned by a Fleet for a DSN it does not know.
var ErrUnknownDSN = errors.New("unknown DSN")

// Fleet is the southbound side's view of the DSNs, as the northbound API serves it. The
// distribution layer (package distrib) implements it.
type Fleet interface {
	// DSN returns the DSN object (kind DSN, spec model.DSNSpec, status model.DSNStatus) or
	// ErrUnknownDSN.
	DSN(ctx context.Context, id string) (*model.Object, error)
	// DSNs lists DSNs whose labels match selector, in id order, paged like store lists: at most
	// limit items (0 for all) after the id in continueAfter.
	DSNs(ctx context.Context, selector map[string]string, limit int, continueAfter string) (items []*model.Object, next string, err error)
	// Decommission forgets a DSN and refuses it until it is admitted again.
	Decommission(ctx context.Context, id string) error
	// Convergence reports how many DSNs have applied revision rev.
	Convergence(ctx context.Context, rev uint64) (model.Convergence, error)
}

// Relabeler is a Fleet whose DSNs' labels the API may change (PUT /api/v1/dsns/{id}). With
// security on, a DSN's labels are fixed at admission and change only this way.
type Relabeler interface {
	// SetLabels replaces the DSN's labels and returns the DSN as it now is, or an error
	// wrapping ErrUnknownDSN.
	SetLabels(ctx context.Context, id string, labels map[string]string) (*model.Object, error)
}

// DSNLabels is the body of PUT /api/v1/dsns/{id}: the DSN's new labels.
type DSNLabels struct {
	Labels map[string]string `json:"labels"`
}
