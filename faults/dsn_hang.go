package faults

import "context"

func init() { MustRegister(dsnHang{}) }

// dsnHang freezes DSNs: alive and holding their connection, but silent (no heartbeats, acks or
// applies) until the fault is recovered. The control plane should see them as stragglers.
type dsnHang struct{}

func (dsnHang) Name() string { return "dsn-hang" }

func (dsnHang) Description() string {
	return "hang DSNs: connected but silent (no heartbeats, acks or applies) until recovered"
}

func (dsnHang) Scope() Scope { return ScopeDSNs }

func (dsnHang) Params() []Param { return []Param{paramWindow, paramParallel} }

func (dsnHang) New(spec Spec, env Env) (Fault, error) {
	return newDSNFault(dsnAction{
		verb:    VerbHang,
		do:      func(ctx context.Context, f Fleet, id string) error { return f.Hang(ctx, id) },
		undoVrb: "resume",
		undo:    func(ctx context.Context, f Fleet, id string) error { return f.Resume(ctx, id) },
	}, spec, env)
}
