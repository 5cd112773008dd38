package stage

import (
	"fmt"
	"time"

	"github.com/dsnscale/dsnscale/simdsn/internal/strictyaml"
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

// compile validates s (decoded with doc) and builds its Behaviour.
func compile(key string, s *Set, doc *strictyaml.Doc) (*Behaviour, error) {
	var errs errList
	if s.APIVersion != APIVersion {
		errs.add(doc.Errorf("apiVersion", "want %q, got %q", APIVersion, s.APIVersion))
	}
	if s.Kind != KindStageSet {
		errs.add(doc.Errorf("kind", "want %q, got %q", KindStageSet, s.Kind))
	}
	if s.Name == "" {
		errs.add(doc.Errorf("name", "a stage set needs a name"))
	}
	if len(s.Stages) == 0 {
		errs.add(doc.Errorf("stages", "a stage set needs stages"))
		return nil, errs.err()
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
			errs.add(doc.Errorf(path, "unknown stage %q (stages: %s)", name, joinNames(names)))
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
		b.Stages = append(b.Stages, compileStage(name, s.Stages[name], doc, ref, &errs))
	}
	if b.Off >= 0 && b.Stages[b.Off].State != Off {
		errs.add(doc.Errorf("off", "stage %q must have state off", off))
	}
	checkProb(doc, "apply.errorProbability", s.Apply.ErrorProbability, &errs)
	checkProb(doc, "apply.dropAckProbability", s.Apply.DropAckProbability, &errs)
	checkProb(doc, "apply.wrongRevisionProbability", s.Apply.WrongRevisionProbability, &errs)
	checkProb(doc, "telemetry.corruptProbability", s.Telemetry.CorruptProbability, &errs)
	checkDelay(doc, "apply.delay", s.Apply.Delay, &errs)
	switch s.Telemetry.CorruptMode {
	case "":
		b.Telemetry.CorruptMode = CorruptGarbage
	case CorruptGarbage, CorruptImpossible, CorruptWrongDSN:
	default:
		errs.add(doc.Errorf("telemetry.corruptMode", "unknown mode %q (want %s, %s or %s)", s.Telemetry.CorruptMode, CorruptGarbage, CorruptImpossible, CorruptWrongDSN))
	}
	if s.Health.TemperatureRisePerMinute < 0 {
		errs.add(doc.Errorf("health.temperatureRisePerMinute", "must not be negative, got %v", s.Health.TemperatureRisePerMinute))
	}
	if s.Health.DiskHealthLossPerHour < 0 {
		errs.add(doc.Errorf("health.diskHealthLossPerHour", "must not be negative, got %v", s.Health.DiskHealthLossPerHour))
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return b, nil
}

func compileStage(name string, st *Stage, doc *strictyaml.Doc, ref func(path, name string) int, errs *errList) Compiled {
	p := "stages." + name
	c := Compiled{Name: name, Next: -1}
	for i := range c.On {
		c.On[i] = -1
	}
	if st == nil {
		errs.add(doc.Errorf(p, "empty stage"))
		return c
	}
	state, ok := ParseState(st.State)
	if !ok {
		errs.add(doc.Errorf(p+".state", "unknown state %q (want one of %s)", st.State, joinNames(StateNames())))
	}
	c.State = state
	act, ok := parseAction(st.Action)
	if !ok {
		errs.add(doc.Errorf(p+".action", "unknown action %q (want one of %s)", st.Action, joinNames(actionNames[1:])))
	}
	c.Action = act
	c.Delay = st.Delay
	checkDelay(doc, p+".delay", st.Delay, errs)
	c.Timeout = st.Timeout
	if st.Timeout < 0 {
		errs.add(doc.Errorf(p+".timeout", "must not be negative, got %v", st.Timeout))
	}
	if (act == ActConnect || act == ActHello || act == ActFetchSnapshot) && st.Timeout <= 0 {
		errs.add(doc.Errorf(p+".timeout", "action %s needs a positive timeout", act))
	}
	if act == ActBackoff {
		if st.Backoff == nil {
			errs.add(doc.Errorf(p+".backoff", "action backoff needs a backoff {initial, max, factor, jitter}"))
		} else {
			checkBackoff(doc, p+".backoff", *st.Backoff, errs)
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
			errs.add(doc.Errorf(tp+".to", "a transition needs a target stage"))
		}
		checkProb(doc, tp+".probability", t.Probability, errs)
		sum += t.Probability
		c.Transitions = append(c.Transitions, CompiledTransition{To: to, Probability: t.Probability})
	}
	if sum > 1+1e-9 {
		errs.add(doc.Errorf(p+".transitions", "probabilities add up to %v, more than 1", sum))
	}
	if (c.Next >= 0 || len(c.Transitions) > 0) && st.Delay == (Delay{}) && act != ActNone {
		errs.add(doc.Errorf(p+".delay", "next/transitions alongside action %s need a delay, or the action never runs", act))
	}
	allowed := map[Outcome]bool{}
	for _, o := range actionOutcomes[act] {
		allowed[o] = true
	}
	for _, k := range sortedKeys(st.On) {
		o, ok := parseOutcome(k)
		op := p + ".on." + k
		if !ok {
			errs.add(doc.Errorf(op, "unknown outcome %q", k))
			continue
		}
		if !allowed[o] && !o.Signal() {
			errs.add(doc.Errorf(op, "action %s has no outcome %q (it has: %s)", act, k, outcomeList(actionOutcomes[act])))
			continue
		}
		c.On[o] = ref(op, st.On[k])
	}
	for _, o := range actionOutcomes[act] {
		if _, ok := st.On[o.String()]; !ok {
			errs.add(doc.Errorf(p+".on", "action %s can end with %q but on does not say where to go", act, o))
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

func checkProb(doc *strictyaml.Doc, path string, p float64, errs *errList) {
	if !(p >= 0 && p <= 1) {
		errs.add(doc.Errorf(path, "probability %v is outside [0,1]", p))
	}
}

func checkDelay(doc *strictyaml.Doc, path string, d Delay, errs *errList) {
	if d.Base < 0 || d.Jitter < 0 {
		errs.add(doc.Errorf(path, "base and jitter must not be negative, got %v and %v", d.Base, d.Jitter))
	}
}

func checkBackoff(doc *strictyaml.Doc, path string, b Backoff, errs *errList) {
	switch {
	case b.Initial <= 0:
		errs.add(doc.Errorf(path+".initial", "must be positive, got %v", b.Initial))
	case b.Max < b.Initial:
		errs.add(doc.Errorf(path+".max", "must be at least initial (%v), got %v", b.Initial, b.Max))
	}
	if b.Factor < 1 {
		errs.add(doc.Errorf(path+".factor", "must be at least 1, got %v", b.Factor))
	}
	checkProb(doc, path+".jitter", b.Jitter, errs)
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
