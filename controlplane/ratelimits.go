package controlplane

import (
	"fmt"
	"math"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/ratelimit"
)

// RateLimits are the northbound API's request rate limits (package ratelimit): each user and
// each source address has a bucket of its own, and the authenticated requests of all users
// together are held to a total that is shared fairly among the users asking for it while it
// runs short, as Kubernetes' API priority and fairness shares a server's seats. A refused
// request gets 429 with Retry-After.
type RateLimits struct {
	// Off disables rate limiting.
	Off bool
	// UserRate and UserBurst are the requests per second (and bucket) of each authenticated
	// user (defaults 1000/s and 2000).
	UserRate  float64
	UserBurst int
	// SourceRate and SourceBurst are the requests per second (and bucket) of each source
	// address, authenticated or not (defaults: twice the total, so that many users behind one
	// address are held by their own limits and their fair share of the total, not by their
	// address's).
	SourceRate  float64
	SourceBurst int
	// TotalRate and TotalBurst are the requests per second (and bucket) of all users together
	// (defaults DefaultTotalRate and twice it).
	TotalRate  float64
	TotalBurst int
}

// Default rate limits. DefaultTotalRate is sized from the capacity the reference control plane
// measures with its security on (`dsnscale bench --run cp-api`: cp_api_get_per_s_secure_limits_raised held
// 3,097 single-object GETs a second and failed at 3,269, on two cores shared with the load
// generator): the total sheds what the server could not serve anyway, with 429s and
// Retry-After rather than queues and timeouts, and no lower. (Writes cost more: the same run
// held 722 a second.)
const (
	DefaultUserRate  = 1000
	DefaultUserBurst = 2000
	DefaultTotalRate = 3000
)

func (l RateLimits) validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"UserRate", l.UserRate}, {"SourceRate", l.SourceRate}, {"TotalRate", l.TotalRate}} {
		if f.v < 0 || math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return fmt.Errorf("%w: RateLimits.%s %v: want 0 (the default) or a positive number", ErrConfig, f.name, f.v)
		}
	}
	if l.SourceBurst < 0 || l.UserBurst < 0 || l.TotalBurst < 0 {
		return fmt.Errorf("%w: RateLimits bursts must not be negative", ErrConfig)
	}
	return nil
}

// burstFor is the default bucket of a rate: two seconds of it.
func burstFor(rate float64) int { return int(math.Min(math.MaxInt32, math.Max(1, math.Ceil(2*rate)))) }

func (l RateLimits) withDefaults() RateLimits {
	if l.TotalRate == 0 {
		l.TotalRate = DefaultTotalRate
	}
	if l.TotalBurst == 0 {
		l.TotalBurst = burstFor(l.TotalRate)
	}
	if l.UserRate == 0 {
		l.UserRate = DefaultUserRate
	}
	if l.UserBurst == 0 {
		l.UserBurst = max(DefaultUserBurst, burstFor(l.UserRate))
	}
	if l.SourceRate == 0 {
		l.SourceRate = 2 * l.TotalRate
	}
	if l.SourceBurst == 0 {
		l.SourceBurst = burstFor(l.SourceRate)
	}
	return l
}

// limiters are the configurations of the two limiters a request passes: by source address
// before authentication, each address to its own limit; by user after, each user to its own
// limit and all of them to the total, shared fairly. (A total on the sources too would hold one
// address with many users behind it to a share of the total meant for one user.)
func (l RateLimits) limiters(clock func() time.Time) (users, sources ratelimit.Config) {
	l = l.withDefaults()
	users = ratelimit.Config{Rate: l.TotalRate, Burst: l.TotalBurst, PerKeyRate: l.UserRate, PerKeyBurst: l.UserBurst, Clock: clock}
	sources = ratelimit.Config{PerKeyRate: l.SourceRate, PerKeyBurst: l.SourceBurst, Clock: clock}
	return users, sources
}
