package runner

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/dsnscale/dsnscale/simdsn/record"
	"github.com/dsnscale/dsnscale/simdsn/stage"
)

// DefaultAdmissionDeadline is how long a DSN may stay admitting before the step it is in fails
// (Options.AdmissionDeadline; a scenario's fleet.admissionDeadline overrides it).
const DefaultAdmissionDeadline = time.Minute

// ErrAdmission marks a step failed because DSNs stayed admitting past the deadline.
var ErrAdmission = errors.New("DSNs not admitted")

// noReason counts the DSNs stuck admitting that reported no reason: their attempts neither
// failed nor were answered.
const noReason = "no reason reported (no answer yet)"

// admissionReporter is a fleet that can say which of its DSNs are admitting, since when, and
// why they say they are not admitted.
type admissionReporter interface {
	Admitting() []admittingDSN
}

// admittingDSN is a DSN in the admitting state: since when, and the last reason it gave in
// that time ("" for none).
type admittingDSN struct {
	Since  time.Time
	Reason string
}

// Admitting lists the DSNs in the admitting state.
func (s *simFleet) Admitting() []admittingDSN {
	admitting := stage.Admitting.String()
	var out []admittingDSN
	s.f.Reports().Select(func(r record.DSNReport) bool {
		if r.State != admitting {
			return false
		}
		a := admittingDSN{Since: admittingSince(r)}
		if r.Admission.Reason != "" && !r.Admission.At.Before(a.Since) {
			a.Reason = r.Admission.Reason
		}
		out = append(out, a)
		return false
	})
	return out
}

// admittingSince is when r entered the admitting state it is in: each retry is a stage change
// within it, so it is the first of the trailing transitions into admitting.
func admittingSince(r record.DSNReport) time.Time {
	admitting := stage.Admitting.String()
	since := r.StateSince
	for i := len(r.Transitions) - 1; i >= 0; i-- {
		t := r.Transitions[i]
		if t.To != admitting {
			break
		}
		since = t.At
		if t.From != admitting {
			break
		}
	}
	return since
}

// checkAdmission fails when DSNs have stayed admitting longer than the deadline, with the
// reasons they gave, counted.
func (e *engine) checkAdmission() error {
	ar, ok := e.fleet.(admissionReporter)
	deadline := e.opts.AdmissionDeadline
	if d := e.s.Fleet.AdmissionDeadline; d > 0 {
		deadline = d
	}
	if !ok || deadline < 0 {
		return nil
	}
	cutoff := e.clock.Now().Add(-deadline)
	all := ar.Admitting()
	stuck, refused := 0, false
	reasons := map[string]int{}
	for _, a := range all {
		r := a.Reason
		if r == "" {
			r = noReason
		}
		reasons[r]++
		if a.Since.Before(cutoff) {
			stuck++
			// DSNs the control plane keeps asking to retry are being paced, not refused:
			// recovery measurements judge how long that takes.
			refused = refused || !strings.HasPrefix(r, record.AdmissionRetry)
		}
	}
	if !refused {
		return nil
	}
	return fmt.Errorf("%w: %d DSNs admitting, %d of them for longer than %s; why: %s", ErrAdmission, len(all), stuck, deadline, FormatReasons(reasons))
}

// FormatReasons renders counts by reason, the most frequent first: "18 × a; 2 × b".
func FormatReasons(reasons map[string]int) string {
	keys := make([]string, 0, len(reasons))
	for k := range reasons {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if reasons[keys[i]] != reasons[keys[j]] {
			return reasons[keys[i]] > reasons[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d × %s", reasons[k], k)
	}
	return strings.Join(parts, "; ")
}

// errAdmissionStuck ends a step's wait early when DSNs have stayed admitting past the
// deadline: waiting out the timeout would only hide why.
var errAdmissionStuck = errors.New("DSNs stuck admitting")
