// Package ratelimit protects the northbound API from callers that ask too much: token buckets
// per key (user or source address) under a global budget that is shared fairly among the keys
// active when the server is busy, so that one noisy client cannot starve the others; and limits
// on request body and header sizes.
//
// The sharing works on three buckets. A global bucket holds the server's budget. Each key has
// its own cap (PerKeyRate) and a fair-share bucket refilled at Rate divided by the number of
// active keys. While the global bucket is more than BusyFraction full every key may use spare
// capacity up to its cap; once it falls below, a key is served only from its fair share. A
// flood therefore drains the global bucket only down to the busy mark, and what is left over
// serves the quiet keys.
//
// A Limiter with no global budget (Rate 0) holds each key to its own cap alone.
package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Defaults.
const (
	DefaultBusyFraction = 0.5
	DefaultActiveWindow = 10 * time.Second
	DefaultIdleTTL      = 5 * time.Minute
	DefaultMaxKeys      = 100000
)

// ErrConfig marks an invalid Config.
var ErrConfig = errors.New("ratelimit: invalid config")

// Config configures a Limiter. It is pure data but for the clock.
type Config struct {
	// Rate is the global budget in requests per second, Burst its bucket size. A Rate of 0
	// means no global budget: each key is held to its own cap alone, and PerKeyRate and
	// PerKeyBurst are then required.
	Rate  float64
	Burst int
	// PerKeyRate and PerKeyBurst cap each key even when the server is idle. 0 means Rate and
	// Burst (no cap below the global one).
	PerKeyRate  float64
	PerKeyBurst int
	// BusyFraction is the fill level of the global bucket below which keys are held to their
	// fair share; 0 means DefaultBusyFraction.
	BusyFraction float64
	// ActiveWindow is how recently a key must have asked to count as active for fair sharing;
	// 0 means DefaultActiveWindow.
	ActiveWindow time.Duration
	// IdleTTL is how long an idle key is remembered; 0 means DefaultIdleTTL. It must be at least
	// ActiveWindow.
	IdleTTL time.Duration
	// MaxKeys bounds the keys remembered; beyond it new keys share one bucket until idle keys
	// are forgotten. 0 means DefaultMaxKeys.
	MaxKeys int
	// Clock reads the time; nil means time.Now.
	Clock func() time.Time
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case !(c.Rate >= 0) || math.IsInf(c.Rate, 0):
		return fmt.Errorf("%w: Rate %v: must be 0 (no global budget) or a positive number", ErrConfig, c.Rate)
	case c.Rate > 0 && c.Burst < 1:
		return fmt.Errorf("%w: Burst %d: must be at least 1", ErrConfig, c.Burst)
	case c.PerKeyRate < 0 || math.IsInf(c.PerKeyRate, 0) || math.IsNaN(c.PerKeyRate):
		return fmt.Errorf("%w: PerKeyRate %v: must be 0 or a positive number", ErrConfig, c.PerKeyRate)
	case c.PerKeyBurst < 0:
		return fmt.Errorf("%w: PerKeyBurst %d is negative", ErrConfig, c.PerKeyBurst)
	case c.Rate == 0 && (c.PerKeyRate == 0 || c.PerKeyBurst < 1):
		return fmt.Errorf("%w: with no global Rate, PerKeyRate and PerKeyBurst are required", ErrConfig)
	case c.BusyFraction < 0 || c.BusyFraction >= 1 || math.IsNaN(c.BusyFraction):
		return fmt.Errorf("%w: BusyFraction %v: want 0 to 1 (excluded)", ErrConfig, c.BusyFraction)
	case c.ActiveWindow < 0 || c.IdleTTL < 0:
		return fmt.Errorf("%w: ActiveWindow and IdleTTL must not be negative", ErrConfig)
	case c.MaxKeys < 0:
		return fmt.Errorf("%w: MaxKeys %d is negative", ErrConfig, c.MaxKeys)
	}
	window := c.ActiveWindow
	if window == 0 {
		window = DefaultActiveWindow
	}
	if c.IdleTTL != 0 && c.IdleTTL < window {
		return fmt.Errorf("%w: IdleTTL %s is shorter than the active window %s", ErrConfig, c.IdleTTL, window)
	}
	return nil
}

// Result is the answer for one request.
type Result struct {
	Allowed bool
	// RetryAfter is when a refused request may be tried again.
	RetryAfter time.Duration
	// Reason says which limit refused it.
	Reason string
}

// Reasons of refusals.
const (
	ReasonKeyLimit  = "per-key limit"
	ReasonFairShare = "fair share while the server is busy"
	ReasonGlobal    = "server budget exhausted"
)

// Stats describe a Limiter's state.
type Stats struct {
	Keys, Active     int
	Allowed, Limited uint64
}

// Limiter decides requests. It is safe for concurrent use.
type Limiter struct {
	cfg    Config
	now    func() time.Time
	global *rate.Limiter

	mu        sync.Mutex
	keys      map[string]*entry
	active    int
	nextSweep time.Time
	allowed   uint64
	limited   uint64
}

type entry struct {
	cap      *rate.Limiter // the key's absolute cap
	fair     *rate.Limiter // the key's fair share of the global budget
	shareOf  int           // the number of active keys fair was sized for
	lastSeen time.Time
}

// overflowKey is the key new keys share once MaxKeys are remembered.
const overflowKey = "\x00overflow"

// New builds a Limiter.
func New(cfg Config) (*Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.PerKeyRate == 0 {
		cfg.PerKeyRate = cfg.Rate
	}
	if cfg.PerKeyBurst == 0 {
		cfg.PerKeyBurst = cfg.Burst
	}
	if cfg.BusyFraction == 0 {
		cfg.BusyFraction = DefaultBusyFraction
	}
	if cfg.ActiveWindow == 0 {
		cfg.ActiveWindow = DefaultActiveWindow
	}
	if cfg.IdleTTL == 0 {
		cfg.IdleTTL = max(DefaultIdleTTL, cfg.ActiveWindow)
	}
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	l := &Limiter{cfg: cfg, now: cfg.Clock, keys: map[string]*entry{}, active: 1}
	if l.now == nil {
		l.now = time.Now
	}
	if cfg.Rate > 0 {
		l.global = rate.NewLimiter(rate.Limit(cfg.Rate), cfg.Burst)
	}
	return l, nil
}

// fairLimit is each key's share when n keys are active. One share more than there are active
// keys is counted, and left to keys that have not asked yet: the fair shares of a flood then
// never empty the global bucket, and a newcomer's first request finds it holding tokens.
func (l *Limiter) fairLimit(n int) (rate.Limit, int) {
	shares := max(n, 1) + 1
	return rate.Limit(l.cfg.Rate / float64(shares)), max(1, l.cfg.Burst/shares)
}

// Allow decides one request for key.
func (l *Limiter) Allow(key string) Result {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !now.Before(l.nextSweep) {
		l.sweep(now)
	}
	e := l.entry(key, now)
	e.lastSeen = now
	if e.shareOf != l.active {
		fr, fb := l.fairLimit(l.active)
		e.fair.SetLimitAt(now, fr)
		e.fair.SetBurstAt(now, fb)
		e.shareOf = l.active
	}

	capRes := e.cap.ReserveN(now, 1)
	if d := capRes.DelayFrom(now); d > 0 {
		capRes.CancelAt(now)
		return l.refuse(ReasonKeyLimit, d)
	}
	if l.global == nil {
		l.allowed++
		return Result{Allowed: true}
	}
	busy := l.global.TokensAt(now) < l.cfg.BusyFraction*float64(l.cfg.Burst)
	// Every request the key makes counts against its fair share, even one refused below, so that
	// a flooding key's share is spent and the global bucket refills for the others. No debt is
	// kept beyond an empty bucket.
	fairRes := e.fair.ReserveN(now, 1)
	fairDelay := fairRes.DelayFrom(now)
	if fairDelay > 0 {
		fairRes.CancelAt(now)
		if busy {
			capRes.CancelAt(now)
			return l.refuse(ReasonFairShare, fairDelay)
		}
	}
	globalRes := l.global.ReserveN(now, 1)
	if d := globalRes.DelayFrom(now); d > 0 {
		globalRes.CancelAt(now)
		capRes.CancelAt(now)
		return l.refuse(ReasonGlobal, d)
	}
	l.allowed++
	return Result{Allowed: true}
}

func (l *Limiter) refuse(reason string, d time.Duration) Result {
	l.limited++
	return Result{RetryAfter: d, Reason: reason}
}

// entry returns the key's entry, making one (or using the overflow entry) if needed. A new key
// is active from its first request: counting it at once shrinks the others' shares before the
// next sweep.
func (l *Limiter) entry(key string, now time.Time) *entry {
	if e, ok := l.keys[key]; ok {
		return e
	}
	if len(l.keys) >= l.cfg.MaxKeys {
		l.sweep(now)
		if len(l.keys) >= l.cfg.MaxKeys {
			key = overflowKey
			if e, ok := l.keys[key]; ok {
				return e
			}
		}
	}
	if len(l.keys) > 0 {
		l.active++
	}
	fr, fb := l.fairLimit(l.active)
	e := &entry{
		cap:     rate.NewLimiter(rate.Limit(l.cfg.PerKeyRate), l.cfg.PerKeyBurst),
		fair:    rate.NewLimiter(fr, fb),
		shareOf: l.active,
	}
	l.keys[key] = e
	return e
}

// sweep forgets idle keys and counts the active ones; shares are resized as keys are used.
func (l *Limiter) sweep(now time.Time) {
	active := 0
	for k, e := range l.keys {
		idle := now.Sub(e.lastSeen)
		if idle > l.cfg.IdleTTL {
			delete(l.keys, k)
			continue
		}
		if idle <= l.cfg.ActiveWindow {
			active++
		}
	}
	l.active = max(active, 1)
	l.nextSweep = now.Add(min(time.Second, l.cfg.ActiveWindow/4))
}

// Stats returns the limiter's counters and sizes.
func (l *Limiter) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Stats{Keys: len(l.keys), Active: l.active, Allowed: l.allowed, Limited: l.limited}
}
