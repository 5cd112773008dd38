package faults

import "context"

func init() { MustRegister(dsnCrash{}) }

// dsnCrash crashes DSNs: they stop abruptly and stay down until the fault is recovered, when they
// start again from their config cache.
type dsnCrash struct{}

func (dsnCrash) Name() string { return "dsn-crash" }

func (dsnCrash) Description() string {
	return "crash DSNs; they stay down until the fault is recovered, then start from their cache"
}

func (dsnCrash) Scope() Scope { return ScopeDSNs }

func (dsnCrash) Params() []Param { return []Param{paramWindow, paramParallel} }

func (dsnCrash) New(spec Spec, env Env) (Fault, error) {
	return newDSNFault(dsnAction{
		verb:    VerbCrash,
		do:      func(ctx context.Context, f Fleet, id string) error { return f.Crash(ctx, id) },
		undoVrb: "start",
		undo:    func(ctx context.Context, f Fleet, id string) error { return f.Start(ctx, id) },
	}, spec, env)
}
