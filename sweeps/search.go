package sweeps

import "math"

// Probe is one size the limit search tried.
type Probe struct {
	// Value is the axis value as the scenario took it; N the same as a number.
	Value string  `json:"value"`
	N     float64 `json:"n"`
	// Phase is "grow" (doubling) or "bisect".
	Phase string `json:"phase"`
	Pass  bool   `json:"pass"`
	// Note says why a size counts as failed without an SLO failing (a run broke).
	Note string `json:"note,omitempty"`
}

// SearchResult is where the limit search ended.
type SearchResult struct {
	Path []Probe `json:"path"`
	// LastPass is the largest size that passed; 0 when none did.
	LastPass float64 `json:"lastPass"`
	// FirstFail is the smallest size that failed above LastPass; 0 when none did.
	FirstFail float64 `json:"firstFail"`
	// Resolved says the search narrowed the limit to within the resolution.
	Resolved bool `json:"resolved"`
	// Reason says how the search ended.
	Reason string `json:"reason"`
}

// Verdict is what probing one size gave: pass or fail, or stopped (interrupted, out of
// budget) with no verdict.
type Verdict struct {
	Pass    bool
	Stopped bool
	Note    string
}

// Search finds the largest value of the first axis at which every SLO holds: it doubles from
// spec.Start until a size fails or spec.Max passes, then bisects between the last pass and the
// first fail until the first fail is within spec.Resolution of the last pass. round maps a
// number to the nearest value the axis can take (an integer for a fleet size) and its text.
// Each size is probed once; probing several runs of it is probe's business.
func Search(spec SearchSpec, round func(float64) (float64, string), probe func(n float64, value, phase string) Verdict) SearchResult {
	var res SearchResult
	try := func(x float64, phase string) (Verdict, bool) {
		n, v := round(x)
		verdict := probe(n, v, phase)
		if verdict.Stopped {
			return verdict, false
		}
		res.Path = append(res.Path, Probe{Value: v, N: n, Phase: phase, Pass: verdict.Pass, Note: verdict.Note})
		if verdict.Pass {
			res.LastPass = n
		} else {
			res.FirstFail = n
		}
		return verdict, true
	}
	x := spec.Start
	for {
		v, ok := try(x, "grow")
		if !ok {
			res.Reason = "stopped while growing: interrupted or out of budget"
			return res
		}
		if !v.Pass {
			break
		}
		if x >= spec.Max {
			res.Reason = "every SLO held up to the largest size allowed (max)"
			return res
		}
		x = math.Min(2*x, spec.Max)
	}
	if res.LastPass == 0 {
		res.Reason = "an SLO failed at the first size: the limit is below it"
		return res
	}
	for res.FirstFail > res.LastPass*(1+spec.Resolution) {
		m, _ := round((res.LastPass + res.FirstFail) / 2)
		if m <= res.LastPass || m >= res.FirstFail {
			break // no value left between them
		}
		if _, ok := try(m, "bisect"); !ok {
			res.Reason = "stopped while bisecting: interrupted or out of budget"
			return res
		}
	}
	res.Resolved = true
	res.Reason = "the limit lies between the last pass and the first fail"
	return res
}
