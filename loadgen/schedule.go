package loadgen

import (
	"math"
	"time"
)

// arrivalSchedule is a piecewise-linear rate r(t). Iteration i (from 0) is due at the time t_i
// where the number of arrivals so far, N(t) = integral of r from 0 to t, reaches i; so the first
// is due at 0 and a constant rate r spaces them 1/r apart.
type arrivalSchedule struct {
	segs  []segment
	total float64 // N at the end of the schedule
	dur   time.Duration
}

type segment struct {
	start    time.Duration
	dur      time.Duration
	from, to float64 // rate per second at the segment's ends
	n0       float64 // arrivals before the segment
}

// countEpsilon absorbs float rounding when N(end) is an integer (1000/m for 60s is 1000).
const countEpsilon = 1e-9

func newArrivalSchedule(start Rate, stages []Stage) *arrivalSchedule {
	s := &arrivalSchedule{}
	prev := float64(start)
	for _, st := range stages {
		to := float64(st.Rate)
		sec := st.Duration.Seconds()
		s.segs = append(s.segs, segment{start: s.dur, dur: st.Duration, from: prev, to: to, n0: s.total})
		s.total += (prev + to) / 2 * sec
		s.dur += st.Duration
		prev = to
	}
	return s
}

// count is how many iterations the schedule starts: those due strictly before its end.
func (s *arrivalSchedule) count() int64 {
	return int64(math.Ceil(s.total - countEpsilon))
}

// cursor walks the schedule in order; it is not safe for concurrent use.
type cursor struct {
	s   *arrivalSchedule
	seg int
}

// at returns when iteration i is due, relative to the schedule's start. Calls must come with
// non-decreasing i, and i must be below count().
func (c *cursor) at(i int64) time.Duration {
	k := float64(i)
	for c.seg < len(c.s.segs)-1 {
		sg := c.s.segs[c.seg]
		if k < sg.n0+(sg.from+sg.to)/2*sg.dur.Seconds()-countEpsilon {
			break
		}
		c.seg++
	}
	sg := c.s.segs[c.seg]
	d := k - sg.n0 // arrivals into this segment
	if d <= 0 {
		return sg.start
	}
	sec := sg.dur.Seconds()
	a := (sg.to - sg.from) / (2 * sec) // N(τ) = from·τ + a·τ²
	var tau float64
	if a == 0 {
		tau = d / sg.from
	} else {
		// Solve a·τ² + from·τ - d = 0 in the form that stays accurate when a is tiny.
		disc := sg.from*sg.from + 4*a*d
		if disc < 0 {
			disc = 0
		}
		tau = 2 * d / (sg.from + math.Sqrt(disc))
	}
	t := sg.start + time.Duration(tau*float64(time.Second))
	if end := sg.start + sg.dur; t > end {
		t = end
	}
	return t
}

// points lists the schedule's corners.
func (s *arrivalSchedule) points() []PlanPoint {
	var pts []PlanPoint
	for i, sg := range s.segs {
		if i == 0 || sg.from != s.segs[i-1].to {
			pts = append(pts, PlanPoint{At: sg.start, Rate: Rate(sg.from)})
		}
		pts = append(pts, PlanPoint{At: sg.start + sg.dur, Rate: Rate(sg.to)})
	}
	return pts
}

func (s *arrivalSchedule) peak() Rate {
	var p float64
	for _, sg := range s.segs {
		p = math.Max(p, math.Max(sg.from, sg.to))
	}
	return Rate(p)
}

// vuSchedule lists when the number of active VUs changes: VUs ramp linearly in each stage and
// the active count changes by one each time the ramp reaches the next integer, so a stage from 0
// to 10 over 10s adds a VU each second and one from 10 to 0 removes one each second.
func vuSchedule(start int, stages []Stage) (pts []PlanPoint, peak int, vuSeconds float64) {
	cur := start
	pts = append(pts, PlanPoint{At: 0, VUs: start})
	peak = start
	var at time.Duration
	for _, st := range stages {
		from, to := cur, st.VUs
		if to != from {
			step, n := 1, to-from
			if to < from {
				step, n = -1, from-to
			}
			for j := 1; j <= n; j++ {
				off := time.Duration(float64(st.Duration) * float64(j) / float64(n))
				pts = append(pts, PlanPoint{At: at + off, VUs: from + step*j})
			}
		}
		peak = max(peak, to)
		at += st.Duration
		cur = to
	}
	pts = append(pts, PlanPoint{At: at, VUs: cur})
	pts = dedupe(pts)
	for i := 1; i < len(pts); i++ {
		vuSeconds += float64(pts[i-1].VUs) * (pts[i].At - pts[i-1].At).Seconds()
	}
	return pts, peak, vuSeconds
}

// dedupe keeps the last point at each time and drops points that change nothing.
func dedupe(pts []PlanPoint) []PlanPoint {
	var out []PlanPoint
	for _, p := range pts {
		if n := len(out); n > 0 && out[n-1].At == p.At {
			out[n-1] = p
			continue
		}
		out = append(out, p)
	}
	res := out[:0:0]
	for i, p := range out {
		if i > 0 && i < len(out)-1 && p.VUs == res[len(res)-1].VUs {
			continue
		}
		res = append(res, p)
	}
	return res
}
