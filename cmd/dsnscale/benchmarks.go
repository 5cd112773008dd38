package main

// Packages that register benchmarks with benchfig for `dsnscale bench`.
import (
	_ "github.com/dsnscale/dsnscale/controlplane/api"
	_ "github.com/dsnscale/dsnscale/controlplane/audit"
	_ "github.com/dsnscale/dsnscale/controlplane/authn"
	_ "github.com/dsnscale/dsnscale/controlplane/cpbench"
	_ "github.com/dsnscale/dsnscale/controlplane/distrib"
	_ "github.com/dsnscale/dsnscale/controlplane/ingest"
	_ "github.com/dsnscale/dsnscale/controlplane/pki"
	_ "github.com/dsnscale/dsnscale/controlplane/pki/admission"
	_ "github.com/dsnscale/dsnscale/controlplane/ratelimit"
	_ "github.com/dsnscale/dsnscale/controlplane/rbac"
	_ "github.com/dsnscale/dsnscale/controlplane/store"
	_ "github.com/dsnscale/dsnscale/inventory"
	_ "github.com/dsnscale/dsnscale/loadgen/loadbench"
	_ "github.com/dsnscale/dsnscale/search"
	_ "github.com/dsnscale/dsnscale/simdsn/simbench"
	_ "github.com/dsnscale/dsnscale/tsdb"
)
