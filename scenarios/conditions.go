package scenarios

import (
	"maps"
	"slices"

	"github.com/dsnscale/dsnscale/scenarios/measure"
)

// Condition is a wait condition a step can name in until.
type Condition struct {
	Name        string
	Description string
	// TakesShare says whether the condition takes a share of the fleet ({acked: 99%}); others
	// are written bare.
	TakesShare bool
	// Holds reports whether the condition holds for the fleet census c (taken against the
	// control plane's current revision) of a fleet of size DSNs, with share asked.
	Holds func(c measure.Counts, size int, share float64) bool
}

func atLeast(n, size int, share float64) bool {
	return size > 0 && float64(n) >= share*float64(size)-1e-9
}

var conditions = map[string]Condition{
	"converged": {
		Name:        "converged",
		Description: "every DSN is in session and has applied the control plane's current revision",
		Holds: func(c measure.Counts, size int, _ float64) bool {
			return size > 0 && c.AtOrPast >= size
		},
	},
	"acked": {
		Name:        "acked",
		Description: "this share of the fleet is in session at the current revision",
		TakesShare:  true,
		Holds:       func(c measure.Counts, size int, share float64) bool { return atLeast(c.AtOrPast, size, share) },
	},
	"connected": {
		Name:        "connected",
		Description: "this share of the fleet is in session with the control plane",
		TakesShare:  true,
		Holds:       func(c measure.Counts, size int, share float64) bool { return atLeast(c.Session, size, share) },
	},
	"serving": {
		Name:        "serving",
		Description: "this share of the fleet forwards traffic",
		TakesShare:  true,
		Holds:       func(c measure.Counts, size int, share float64) bool { return atLeast(c.DataPlane, size, share) },
	},
}

// LookupCondition returns the wait condition called name.
func LookupCondition(name string) (Condition, bool) {
	c, ok := conditions[name]
	return c, ok
}

// ConditionNames lists the wait conditions, sorted.
func ConditionNames() []string { return slices.Sorted(maps.Keys(conditions)) }
