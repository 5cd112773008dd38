package faults

func init() { MustRegister(cpRestart{}) }

// cpRestart kills the control plane and starts it again on the same data after a downtime.
type cpRestart struct{}

var paramDown = Param{Name: "down", Type: TypeDuration, Default: "0s",
	Description: "how long the control plane stays down before it starts again"}

func (cpRestart) Name() string { return "cp-restart" }

func (cpRestart) Description() string {
	return "kill the control plane and start it again on the same data after a downtime"
}

func (cpRestart) Scope() Scope { return ScopeControlPlane }

func (cpRestart) Params() []Param { return []Param{paramDown} }

func (cpRestart) New(spec Spec, env Env) (Fault, error) {
	down, err := ParamValues{Decl: []Param{paramDown}, Got: spec.Params}.Duration("down")
	if err != nil {
		return nil, err
	}
	return &cpFault{env: env, restart: true, down: down}, nil
}
