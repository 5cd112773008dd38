package runner

import (
	"github.com/dsnscale/dsnscale/simdsn/netproxy"

	"context"
	"errors"
	"time"

	"github.com/dsnscale/dsnscale/faults"
	"github.com/dsnscale/dsnscale/reports"
	"github.com/dsnscale/dsnscale/scenarios/measure"
	"github.com/dsnscale/dsnscale/simdsn/bus"
)

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
	// Security is how the DSNs get their bus identities from the control plane (nil: none).
	Security *bus.Security
	// UnitProxies puts a proxy before each fleet unit's bus link, for network faults.
	UnitProxies bool
	// HarnessListen and HarnessAdvertise place the harness link for units outside the harness
	// process (empty: loopback).
	HarnessListen, HarnessAdvertise string
}

// LinkedFleet is implemented by fleets whose units reach the bus through proxies: network
// faults on the fleet path impair those links.
type LinkedFleet interface {
	// Links lists the units' links, with the DSNs behind each.
	Links() []faults.Link
	// UnitProxy returns the proxy of a unit's link.
	UnitProxy(unit string) (*netproxy.Proxy, error)
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

// UnitReporter is implemented by fleets whose units report their own host and resource use
// (drivers that run units outside the harness process).
type UnitReporter interface {
	UnitReports() []reports.Unit
}

// Clock is the time source of the engine; faults pace themselves with the same one.
type Clock = faults.Clock

// ErrAborted is returned by Run when its context ended before the scenario completed.
var ErrAborted = errors.New("run aborted")
