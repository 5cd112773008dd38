package stage

import (
	"fmt"
	"time"

	"github.com/dsnscale/dsnscale/internal/registry"
	"github.com/dsnscale/dsnscale/internal/strictyaml"
)

// Behaviour is a StageSet compiled (with any overlays laid over it) into the tables the DSN
// runtime reads. It is immutable and shared by every DSN that behaves the same way.
type Behaviour struct {
	// Key names the set and overlays it was compiled from.
	Key       string
	Stages    []Compiled
	Initial   int
	Off       int
	ClockSkew time.Duration
	Apply     ApplyParams
	Telemetry TelemetryParams
	Health    HealthParams
	index     map[string]int
}

// Compiled is one stage with names resolved to indexes; -1 means none.
type Compiled struct {
	Name        string
	State       State
	Action      Action
	Delay       Delay
	Timeout     time.Duration
	Backoff     Backoff
	Next        int
	Transitions []CompiledTransition
	On          [NumOutcomes]int
}

// CompiledTransition is a Transition with its target resolved.
type CompiledTransition struct {
	To          int
	Probability float64
}

// Index returns the index of the stage named name.
func (b *Behaviour) Index(name string) (int, bool) {
	i, ok := b.index[name]
	return i, ok
}

// compile validates s (decoded by dec, which places the problems) and builds its Behaviour.
func compile(key string, s *Set, dec *strictyaml.Decoder) (*Behaviour, error) {
	dec.CheckHeader(strictyaml.Header{APIVersion: s.APIVersion, Kind: s.Kind}, KindStageSet)
	if s.Name == "" {
		dec.ErrorAt("name", "a stage set needs a name")
	}
	if len(s.Stages) == 0 {
		dec.ErrorAt("stages", "a stage set needs stages")
		return nil, dec.Err()
	}
	b := &Behaviour{Key: key, ClockSkew: s.ClockSkew, Apply: s.Apply, Telemetry: s.Telemetry, Health: s.Health, index: map[string]int{}}
	names := sortedKeys(s.Stages)
	for i, n := range names {
		b.index[n] = i
	}
	ref := func(path, name string) int {
		if name == "" {
			return -1
		}
		i, ok := b.index[name]
		if !ok {
			dec.ErrorAt(path, "unknown stage %q%s", name, registry.Suggest(name, names))
			return -1
		}
		return i
	}
	initial, off := s.Initial, s.Off
	if initial == "" {
		initial = "boot"
	}
	if off == "" {
		off = "off"
	}
	b.Initial, b.Off = ref("initial", initial), ref("off", off)
	for _, name := range names {
		b.Stages = append(b.Stages, compileStage(name, s.Stages[name], dec, ref))
	}
	if b.Off >= 0 && b.Stages[b.Off].State != Off {
		dec.ErrorAt("off", "stage %q must have state off", off)
	}
	checkProb(dec, "apply.errorProbability", s.Apply.ErrorProbability)
	checkProb(dec, "apply.dropAckProbability", s.Apply.DropAckProbability)
	checkProb(dec, "apply.wrongRevisionProbability", s.Apply.WrongRevisionProbability)
	checkProb(dec, "telemetry.corruptProbability", s.Telemetry.CorruptProbability)
	checkDelay(dec, "apply.delay", s.Apply.Delay)
	switch s.Telemetry.CorruptMode {
	case "":
		b.Telemetry.CorruptMode = CorruptGarbage
	case CorruptGarbage, CorruptImpossible, CorruptWrongDSN:
	default:
		dec.ErrorAt("telemetry.corruptMode", "unknown mode %q (want %s, %s or %s)", s.Telemetry.CorruptMode, CorruptGarbage, CorruptImpossible, CorruptWrongDSN)
	}
	if s.Health.TemperatureRisePerMinute < 0 {
		dec.ErrorAt("health.temperatureRisePerMinute", "must not be negative, got %v", s.Health.TemperatureRisePerMinute)
	}
	if s.Health.DiskHealthLossPerHour < 0 {
		dec.ErrorAt("health.diskHealthLossPerHour", "must not be negative, got %v", s.Health.DiskHealthLossPerHour)
	}
	if err := dec.Err(); err != nil {
		return nil, err
	}
	return b, nil
}

func compileStage(name string, st *Stage, dec *strictyaml.Decoder, ref func(path, name string) int) Compiled {
	p := "stages." + name
	c := Compiled{Name: name, Next: -1}
	for i := range c.On {
		c.On[i] = -1
	}
	if st == nil {
		dec.ErrorAt(p, "empty stage")
		return c
	}
	state, ok := ParseState(st.State)
	if !ok {
		dec.ErrorAt(p+".state", "unknown state %q (want one of %s)", st.State, joinNames(StateNames()))
	}
	c.State = state
	act, ok := parseAction(st.Action)
	if !ok {
		dec.ErrorAt(p+".action", "unknown action %q (want one of %s)", st.Action, joinNames(actionNames[1:]))
	}
	c.Action = act
	c.Delay = st.Delay
	checkDelay(dec, p+".delay", st.Delay)
	c.Timeout = st.Timeout
	if st.Timeout < 0 {
		dec.ErrorAt(p+".timeout", "must not be negative, got %v", st.Timeout)
	}
	if (act == ActConnect || act == ActHello || act == ActFetchSnapshot) && st.Timeout <= 0 {
		dec.ErrorAt(p+".timeout", "action %s needs a positive timeout", act)
	}
	if act == ActBackoff {
		if st.Backoff == nil {
			dec.ErrorAt(p+".backoff", "action backoff needs a backoff {initial, max, factor, jitter}")
		} else {
			checkBackoff(dec, p+".backoff", *st.Backoff)
		}
	}
	if st.Backoff != nil {
		c.Backoff = *st.Backoff
	}
	c.Next = ref(p+".next", st.Next)
	sum := 0.0
	for i, t := range st.Transitions {
		tp := fmt.Sprintf("%s.transitions[%d]", p, i)
		to := ref(tp+".to", t.To)
		if t.To == "" {
			dec.ErrorAt(tp+".to", "a transition needs a target stage")
		}
		checkProb(dec, tp+".probability", t.Probability)
		sum += t.Probability
		c.Transitions = append(c.Transitions, CompiledTransition{To: to, Probability: t.Probability})
	}
	if sum > 1+1e-9 {
		dec.ErrorAt(p+".transitions", "probabilities add up to %v, more than 1", sum)
	}
	if (c.Next >= 0 || len(c.Transitions) > 0) && st.Delay == (Delay{}) && act != ActNone {
		dec.ErrorAt(p+".delay", "next/transitions alongside action %s need a delay, or the action never runs", act)
	}
	allowed := map[Outcome]bool{}
	for _, o := range actionOutcomes[act] {
		allowed[o] = true
	}
	for _, k := range sortedKeys(st.On) {
		o, ok := parseOutcome(k)
		op := p + ".on." + k
		if !ok {
			dec.ErrorAt(op, "unknown outcome %q", k)
			continue
		}
		if !allowed[o] && !o.Signal() {
			dec.ErrorAt(op, "action %s has no outcome %q (it has: %s)", act, k, outcomeList(actionOutcomes[act]))
			continue
		}
		c.On[o] = ref(op, st.On[k])
	}
	for _, o := range actionOutcomes[act] {
		if _, ok := st.On[o.String()]; !ok {
			dec.ErrorAt(p+".on", "action %s can end with %q but on does not say where to go", act, o)
		}
	}
	return c
}

func parseAction(s string) (Action, bool) {
	if s == "" || s == "none" {
		return ActNone, true
	}
	for i, n := range actionNames {
		if i > 0 && n == s {
			return Action(i), true
		}
	}
	return 0, false
}

func parseOutcome(s string) (Outcome, bool) {
	for i, n := range outcomeNames {
		if n == s {
			return Outcome(i), true
		}
	}
	return 0, false
}

func checkProb(dec *strictyaml.Decoder, path string, p float64) {
	if !(p >= 0 && p <= 1) {
		dec.ErrorAt(path, "probability %v is outside [0,1]", p)
	}
}

func checkDelay(dec *strictyaml.Decoder, path string, d Delay) {
	if d.Base < 0 || d.Jitter < 0 {
		dec.ErrorAt(path, "base and jitter must not be negative, got %v and %v", d.Base, d.Jitter)
	}
}

func checkBackoff(dec *strictyaml.Decoder, path string, b Backoff) {
	switch {
	case b.Initial <= 0:
		dec.ErrorAt(path+".initial", "must be positive, got %v", b.Initial)
	case b.Max < b.Initial:
		dec.ErrorAt(path+".max", "must be at least initial (%v), got %v", b.Initial, b.Max)
	}
	if b.Factor < 1 {
		dec.ErrorAt(path+".factor", "must be at least 1, got %v", b.Factor)
	}
	checkProb(dec, path+".jitter", b.Jitter)
}

func outcomeList(os []Outcome) string {
	if len(os) == 0 {
		return "none"
	}
	names := make([]string, len(os))
	for i, o := range os {
		names[i] = o.String()
	}
	return joinNames(names)
}
