package scenarios

import (
	"context"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/faults"
	"github.com/dsnscale/dsnscale/scenarios/measure"
)

// API is the control plane's northbound API as the engine uses it: only its public endpoints.
type API interface {
	measure.API
	// Revision returns the control plane's current revision.
	Revision(ctx context.Context) (uint64, error)
	// Create creates an object and returns it as stored (with its resourceVersion).
	Create(ctx context.Context, obj *model.Object) (*model.Object, error)
	// Update replaces an object and returns it as stored.
	Update(ctx context.Context, obj *model.Object) (*model.Object, error)
	// List lists the objects of a kind (in tenant, for namespaced kinds; "" for all) whose
	// labels carry every key/value of selector.
	List(ctx context.Context, kind model.Kind, tenant string, selector map[string]string) ([]*model.Object, error)
}

// ControlPlane is the control plane a run drives.
type ControlPlane interface {
	// APIURL is the base URL of the northbound API; NATSURL is where DSNs connect.
	APIURL() string
	NATSURL() string
	// API is a client of the northbound API.
	API() API
	// Mode is CPInProcess, CPProcess or CPExternal.
	Mode() string
	// PID is the control plane's process (the harness's own in process; 0 when external).
	PID() int
	// Faults is what control-plane faults act on; nil when the harness does not run it.
	Faults() faults.ControlPlane
	// Stop stops a control plane the harness runs (nothing for an external one).
	Stop(ctx context.Context) error
}

// FleetConfig says what fleet to start.
type FleetConfig struct {
	Size    int
	Driver  string
	Traffic string // traffic-map file, or "" for the default
	NATSURL string
	// Dir holds the DSNs' local state (config caches) under the run directory.
	Dir  string
	Seed int64
	// Binary is the dsnscale executable, for drivers that start processes.
	Binary string
}

// Fleet is a running simulated fleet.
type Fleet interface {
	faults.Fleet
	// Launch starts every DSN; they connect to the control plane in the background.
	Launch(ctx context.Context) error
	// Shutdown stops every DSN.
	Shutdown(ctx context.Context) error
	// InHarness reports whether the DSNs run inside the harness process (their resource use is
	// then the harness's).
	InHarness() bool
	// Usage is the CPU seconds and resident memory of whatever runs the DSNs outside the
	// harness (an error when the driver cannot tell).
	Usage(ctx context.Context) (cpuSeconds float64, rssBytes int64, err error)
	// Telemetry says how many samples and events the DSNs sent.
	Telemetry() measure.TelemetryCounts
	// Census counts the DSNs as they are now, AtOrPast against rev.
	Census(rev uint64) measure.Counts
	// StateSince is when a DSN last changed state (zero if it never reported).
	StateSince(id string) time.Time
	// Timeline returns what every DSN reported so far: state changes, applied revisions and
	// watch problems.
	Timeline() *measure.Timeline
}

// Clock is the time source of the engine; faults pace themselves with the same one.
type Clock = faults.Clock
