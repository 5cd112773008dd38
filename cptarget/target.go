// Package cptarget holds the control planes a run can drive: the reference control plane inside
// the harness process, the reference control plane as a child process (`dsnscale cp serve`), and
// someone else's control plane reached by URL. Each is a Target: where its API and bus are, a
// client of its API, and, for one the harness runs, what control-plane faults act on.
package cptarget

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/faults"
	"github.com/dsnscale/dsnscale/loadgen/northbound"
	"github.com/dsnscale/dsnscale/scenarios/measure"
	"github.com/dsnscale/dsnscale/simdsn/bus"
	"github.com/dsnscale/dsnscale/target"
)

// Modes of a target.
const (
	// InProcess is the reference control plane inside the harness process.
	InProcess = "inprocess"
	// Process is the reference control plane as a child process.
	Process = "process"
	// External is someone else's control plane, reached by URL.
	External = "external"
)

// readyTimeout bounds how long a starting control plane may take to become ready.
const readyTimeout = 60 * time.Second

// API is the control plane's northbound API as the harness uses it: only its public endpoints.
type API interface {
	// Get answers a GET of path (for endpoints the client does not wrap, such as telemetry
	// queries).
	Get(ctx context.Context, path string) (status int, body []byte, err error)
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

// Target is a control plane a run drives.
type Target interface {
	// Mode is InProcess, Process or External.
	Mode() string
	// APIURL is the base URL of the northbound API; NATSURL is where DSNs connect.
	APIURL() string
	NATSURL() string
	// API is a client of the northbound API.
	API() API
	// Token is a bearer token for the API, for clients of their own (a load generator).
	Token(ctx context.Context) (string, error)
	// FleetSecurity is how DSNs get their bus identities from it; nil when the harness does not
	// run it.
	FleetSecurity() *bus.Security
	// PID is the control plane's process (the harness's own in process; 0 when external).
	PID() int
	// Faults is what control-plane faults act on; nil when the harness does not run it.
	Faults() faults.ControlPlane
	// Stop stops a control plane the harness runs (nothing for an external one).
	Stop(ctx context.Context) error
}

// Settler is a Target that can wait a little, when it stopped answering, to be seen either to
// answer again or to have exited, so that a crash that broke a run is counted before the run is
// measured.
type Settler interface {
	Settle(ctx context.Context)
}

// Config says which control plane to drive. It is pure data.
type Config struct {
	// Mode is InProcess (the default), Process or External.
	Mode string
	// Dir holds the data directory (cp) and the log (cp.log) of a control plane the harness
	// runs.
	Dir string
	// Binary is the dsnscale binary that runs a Process target.
	Binary string
	// HeartbeatInterval is what the reference control plane tells DSNs (0: its default).
	HeartbeatInterval time.Duration
	// Replicas, above 1, runs a Process target as that many replicas of one cluster behind a
	// load balancer (see clusterTarget).
	Replicas int
	// TSDB, Search and Inventory are the reference control plane's backend URLs; empty keeps
	// the embedded ones under its data directory.
	TSDB, Search, Inventory string
	// URL and NATSURL locate an External target; Token (or the file TokenFile) is the bearer
	// token for its API.
	URL, NATSURL     string
	Token, TokenFile string
	// Target, when set, describes an External target in full (its file paths absolute): it
	// replaces URL, NATSURL, Token and TokenFile.
	Target *target.Target
}

// Env is what a target reports to.
type Env struct {
	Clock  faults.Clock
	Logger *slog.Logger
	// Events records when a control plane the harness runs starts, is killed or exits on its
	// own.
	Events *measure.CPEvents
}

// Open starts (or, for External, reaches) the control plane cfg describes and returns once its
// API answers.
func Open(ctx context.Context, cfg Config, env Env) (Target, error) {
	if env.Clock == nil {
		env.Clock = faults.SystemClock{}
	}
	if env.Logger == nil {
		env.Logger = slog.New(slog.DiscardHandler)
	}
	if env.Events == nil {
		env.Events = &measure.CPEvents{}
	}
	// Each case returns an untyped nil on failure: a nil *processTarget in the interface would
	// not be nil.
	switch cfg.Mode {
	case Process:
		if cfg.Replicas > 1 {
			t, err := startCluster(ctx, cfg, env)
			if err != nil {
				return nil, err
			}
			return t, nil
		}
		t, err := startProcess(ctx, cfg, env)
		if err != nil {
			return nil, err
		}
		return t, nil
	case External:
		if cfg.Target != nil {
			t, err := openSecureExternal(ctx, *cfg.Target)
			if err != nil {
				return nil, err
			}
			return t, nil
		}
		t, err := openExternal(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return t, nil
	case InProcess, "":
		t, err := startInProcess(ctx, cfg, env)
		if err != nil {
			return nil, err
		}
		return t, nil
	}
	return nil, fmt.Errorf("cptarget: unknown mode %q (known: %s, %s, %s)", cfg.Mode, InProcess, Process, External)
}

// harnessTokenTTL is the lifetime of the API tokens of the control planes the harness runs:
// a load step takes one token for its whole run, and runs may be long.
const harnessTokenTTL = 4 * time.Hour

// trust sets up the credential flow for a control plane the harness started with its security
// on: the loads trust its CA, and the fleet gets a gateway bootstrap token (the simulator's
// shared connections are one fleet gateway identity, see docs/PROTOCOL.md).
func trust(ctx context.Context, api *clientAPI, apiURL string, caPEM []byte) (*bus.Security, error) {
	northbound.TrustTarget(apiURL, caPEM)
	tok, err := api.c.CreateBootstrapToken(ctx, client.BootstrapTokenSpec{Role: client.RoleGateway, Uses: 16,
		Description: "dsnscale harness fleet gateway"})
	if err != nil {
		return nil, fmt.Errorf("gateway bootstrap token: %w", err)
	}
	return &bus.Security{CA: string(caPEM), APIURL: apiURL, GatewayToken: tok.Secret}, nil
}

// copySecurity hands out a copy, so a fleet that fills in its identity does not change the
// target's.
func copySecurity(s *bus.Security) *bus.Security {
	if s == nil {
		return nil
	}
	c := *s
	return &c
}
