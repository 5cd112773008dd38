package controlplane

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/ratelimit"
)

// apiLimits passes requests through the two limiters the API puts in front of its handlers, in
// the server's order: by source address, then by user. Time is a fake clock's.
type apiLimits struct {
	now              time.Time
	sources, users   *ratelimit.Limiter
	allowed, refused map[string]int
	reasons          map[string]int
}

func newAPILimits(t *testing.T, l RateLimits) *apiLimits {
	t.Helper()
	a := &apiLimits{now: time.Unix(1_700_000_000, 0), allowed: map[string]int{}, refused: map[string]int{}, reasons: map[string]int{}}
	clock := func() time.Time { return a.now }
	uc, sc := l.limiters(clock)
	var err error
	a.users, err = ratelimit.New(uc)
	require.NoError(t, err)
	a.sources, err = ratelimit.New(sc)
	require.NoError(t, err)
	return a
}

func (a *apiLimits) call(source, user string) {
	res := a.sources.Allow(source)
	by := "source: "
	if res.Allowed {
		res, by = a.users.Allow(user), "user: "
	}
	if res.Allowed {
		a.allowed[user]++
		return
	}
	a.refused[user]++
	a.reasons[by+res.Reason]++
}

// run has each user ask at its rate (requests per second), evenly over the seconds, all from
// one source address, as the users of one load generator do.
func (a *apiLimits) run(seconds int, rates map[string]float64) {
	owed := map[string]float64{}
	for range seconds * 1000 {
		for user, r := range rates {
			owed[user] += r / 1000
			for owed[user] >= 1 {
				owed[user]--
				a.call("127.0.0.1", user)
			}
		}
		a.now = a.now.Add(time.Millisecond)
	}
}

func (a *apiLimits) total() int {
	n := 0
	for _, v := range a.allowed {
		n += v
	}
	return n
}

func users(n int, rate float64) map[string]float64 {
	m := map[string]float64{}
	for i := range n {
		m[fmt.Sprintf("user%02d", i)] = rate
	}
	return m
}

// TestDefaultLimitsArePerUser: sixteen users, each well under its own limit and together far
// above the old shared 1,000/s, are all served at the defaults.
func TestDefaultLimitsArePerUser(t *testing.T) {
	a := newAPILimits(t, RateLimits{})
	const seconds = 10
	rates := users(16, 120) // 1,920/s together
	a.run(seconds, rates)
	for u := range rates {
		assert.Zero(t, a.refused[u], "%s: refused %d", u, a.refused[u])
		assert.Equal(t, 120*seconds, a.allowed[u], u)
	}
}

// TestOneUserOverItsLimit: the user over its own limit gets 429s and is held near that limit;
// the others, under theirs, get every request through.
func TestOneUserOverItsLimit(t *testing.T) {
	a := newAPILimits(t, RateLimits{})
	const seconds = 10
	rates := users(15, 50)
	rates["flooder"] = 1500
	a.run(seconds, rates)
	for u := range rates {
		if u == "flooder" {
			continue
		}
		assert.Zero(t, a.refused[u], "%s is under its limit", u)
	}
	assert.Positive(t, a.refused["flooder"])
	assert.Equal(t, a.refused["flooder"], a.reasons["user: "+ratelimit.ReasonKeyLimit], "refused by its own limit alone")
	assert.InDelta(t, DefaultUserRate*seconds+DefaultUserBurst, a.allowed["flooder"], 2, "held to its rate and bucket")
}

// TestTotalLimitHolds: users each under their own limit but together over the total are held
// to it, and share it fairly.
func TestTotalLimitHolds(t *testing.T) {
	const seconds, total = 10, 2000
	a := newAPILimits(t, RateLimits{TotalRate: total})
	rates := users(16, 400) // 6,400/s together
	a.run(seconds, rates)
	burst := 2 * total
	assert.LessOrEqual(t, a.total(), total*seconds+burst, "the total holds")
	assert.GreaterOrEqual(t, a.total(), total*seconds*8/10, "and is used")
	assert.Zero(t, a.reasons["user: "+ratelimit.ReasonKeyLimit], "no user reached its own limit")
	assert.Positive(t, a.reasons["user: "+ratelimit.ReasonFairShare], "users were held to their fair shares")
	share := float64(a.total()) / 16
	for u := range rates {
		assert.InDelta(t, share, a.allowed[u], share*0.25, "%s gets its fair share", u)
	}
}

func TestRateLimitDefaults(t *testing.T) {
	l := RateLimits{}.withDefaults()
	assert.Equal(t, RateLimits{UserRate: DefaultUserRate, UserBurst: DefaultUserBurst, SourceRate: 2 * DefaultTotalRate,
		SourceBurst: 4 * DefaultTotalRate, TotalRate: DefaultTotalRate, TotalBurst: 2 * DefaultTotalRate}, l)
	l = RateLimits{TotalRate: 100, UserRate: 5000}.withDefaults()
	assert.Equal(t, 200.0, l.SourceRate, "a source defaults to twice the total")
	assert.Equal(t, 10000, l.UserBurst, "two seconds of the user's rate")
	for _, bad := range []RateLimits{{TotalRate: -1}, {SourceRate: -1}, {TotalBurst: -1}} {
		require.ErrorIs(t, bad.validate(), ErrConfig, "%+v", bad)
	}
}
