package dataplane

import (
	"math"
	"math/rand/v2"
)

// RuleCount is the number of flows one decision took.
type RuleCount struct {
	Decision *Decision
	N        uint64
}

// Counters are one DSN's cumulative flow counters. The zero value counts nothing until a table
// is set.
type Counters struct {
	Allowed uint64
	Denied  uint64
	Rules   []RuleCount
	table   *Table
}

// Table returns the table in use.
func (c *Counters) Table() *Table { return c.table }

// SetTable switches to a new table; counts of decisions that are in both tables carry over.
func (c *Counters) SetTable(t *Table) {
	if t == c.table {
		return
	}
	rules := make([]RuleCount, len(t.Buckets))
	for i := range t.Buckets {
		rules[i].Decision = &t.Buckets[i].Decision
		for _, old := range c.Rules {
			if *old.Decision == t.Buckets[i].Decision {
				rules[i].N = old.N
				break
			}
		}
	}
	c.Rules, c.table = rules, t
}

// Reset zeroes the counters (a process restart) and drops the table.
func (c *Counters) Reset() { *c = Counters{} }

// Add counts n new flows, spread over the table's decisions by a multinomial draw.
func (c *Counters) Add(n uint64, r *rand.Rand) {
	if c.table == nil || n == 0 {
		return
	}
	left, mass := n, 1.0
	for i, b := range c.table.Buckets {
		if left == 0 {
			break
		}
		var k uint64
		if i == len(c.table.Buckets)-1 || mass <= b.Probability {
			k = left
			// Classes with no bucket (probability mass not covered) cannot exist: the table
			// holds every class, so the last bucket takes what is left.
		} else {
			k = Binomial(r, left, b.Probability/mass)
		}
		mass -= b.Probability
		left -= k
		c.Rules[i].N += k
		if b.Decision.Allow {
			c.Allowed += k
		} else {
			c.Denied += k
		}
	}
}

// Poisson draws from a Poisson distribution with mean lambda (normal approximation above 30).
func Poisson(r *rand.Rand, lambda float64) uint64 {
	switch {
	case lambda <= 0:
		return 0
	case lambda < 30:
		l, k, p := math.Exp(-lambda), uint64(0), 1.0
		for {
			p *= r.Float64()
			if p <= l {
				return k
			}
			k++
		}
	default:
		v := math.Round(lambda + math.Sqrt(lambda)*r.NormFloat64())
		return uint64(max(v, 0))
	}
}

// Binomial draws the number of successes in n trials of probability p (normal approximation
// when n is large).
func Binomial(r *rand.Rand, n uint64, p float64) uint64 {
	switch {
	case p <= 0 || n == 0:
		return 0
	case p >= 1:
		return n
	case n < 40:
		var k uint64
		for range n {
			if r.Float64() < p {
				k++
			}
		}
		return k
	default:
		mean := float64(n) * p
		sd := math.Sqrt(mean * (1 - p))
		v := math.Round(mean + sd*r.NormFloat64())
		return uint64(min(max(v, 0), float64(n)))
	}
}
