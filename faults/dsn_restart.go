package faults

import "context"

func init() { MustRegister(dsnRestart{}) }

// dsnRestart restarts DSNs: a restart storm when it hits many at once. A restarted DSN loads its
// cached config, keeps serving with it, and reconnects to the control plane.
type dsnRestart struct{}

func (dsnRestart) Name() string { return "dsn-restart" }

func (dsnRestart) Description() string {
	return "restart DSNs (a storm when many at once, or spread over a window); they keep their config cache"
}

func (dsnRestart) Scope() Scope { return ScopeDSNs }

func (dsnRestart) Params() []Param { return []Param{paramWindow, paramParallel} }

func (dsnRestart) New(spec Spec, env Env) (Fault, error) {
	return newDSNFault(dsnAction{
		verb: VerbRestart,
		do:   func(ctx context.Context, f Fleet, id string) error { return f.Restart(ctx, id) },
	}, spec, env)
}
