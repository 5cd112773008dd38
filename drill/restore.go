package drill

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/faults"
	"github.com/dsnscale/dsnscale/reports"
)

// DefaultRestoreTimeout is how long the restore check waits for the target to be back to its
// pre-drill convergence when the drill does not say.
const DefaultRestoreTimeout = time.Minute

// restorePoll is how often the restore check asks the target again.
const restorePoll = time.Second

// ConvergenceAPI is the part of a control plane's API the restore check reads.
type ConvergenceAPI interface {
	Revision(ctx context.Context) (uint64, error)
	Convergence(ctx context.Context, rev uint64) (model.Convergence, error)
}

// Baseline is the target's convergence before the drill, for the revision current then.
type Baseline struct {
	Revision    uint64
	Convergence model.Convergence
}

// TakeBaseline reads the target's revision and its convergence for it.
func TakeBaseline(ctx context.Context, api ConvergenceAPI) (Baseline, error) {
	rev, err := api.Revision(ctx)
	if err != nil {
		return Baseline{}, fmt.Errorf("revision: %w", err)
	}
	c, err := api.Convergence(ctx, rev)
	if err != nil {
		return Baseline{}, fmt.Errorf("convergence for revision %d: %w", rev, err)
	}
	return Baseline{Revision: rev, Convergence: c}, nil
}

// String says the baseline as the journal records it.
func (b Baseline) String() string {
	return fmt.Sprintf("revision %d: %d of %d DSNs at or past it", b.Revision, b.Convergence.AtOrPast, b.Convergence.Total)
}

// Unrecovered names the faults of a run that were injected and never recovered.
func Unrecovered(run *reports.Run) []string {
	var left []string
	for _, f := range run.Faults {
		if f.Start.IsZero() || !f.End.IsZero() {
			continue
		}
		s := fmt.Sprintf("fault %s on %s (step %s) injected at %s: never recovered", f.Kind, f.Target, f.Step, f.Start.UTC().Format(time.RFC3339))
		if f.Error != "" {
			s += ": " + f.Error
		}
		left = append(left, s)
	}
	return left
}

// CheckConvergence waits up to timeout for the target to be back to the baseline's convergence:
// at least as many DSNs at or past the baseline's revision, and none behind it that was not
// behind before. It returns what is left when the time is up (nil when restored).
func CheckConvergence(ctx context.Context, api ConvergenceAPI, base Baseline, timeout time.Duration, clock faults.Clock) []string {
	deadline := clock.Now().Add(timeout)
	for {
		left := convergenceLeft(ctx, api, base)
		if len(left) == 0 || !clock.Now().Before(deadline) {
			return left
		}
		if faults.Sleep(ctx, clock, restorePoll) != nil {
			return append(left, fmt.Sprintf("restore check interrupted: %v", context.Cause(ctx)))
		}
	}
}

func convergenceLeft(ctx context.Context, api ConvergenceAPI, base Baseline) []string {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := api.Convergence(rctx, base.Revision)
	if err != nil {
		return []string{fmt.Sprintf("the target's convergence for revision %d could not be read: %v", base.Revision, err)}
	}
	var left []string
	if c.AtOrPast < base.Convergence.AtOrPast {
		left = append(left, fmt.Sprintf("%d DSNs at or past revision %d, %d before the drill", c.AtOrPast, base.Revision, base.Convergence.AtOrPast))
	}
	var behind []string
	for _, name := range c.BehindDSNs {
		if !slices.Contains(base.Convergence.BehindDSNs, name) {
			behind = append(behind, name)
		}
	}
	if len(behind) > 0 {
		const show = 20
		more := ""
		if len(behind) > show {
			more = fmt.Sprintf(" and %d more", len(behind)-show)
			behind = behind[:show]
		}
		left = append(left, fmt.Sprintf("behind revision %d and not before the drill: %s%s", base.Revision, strings.Join(behind, ", "), more))
	}
	return left
}
