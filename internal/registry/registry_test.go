package registry

import (
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRegisterAndLookup(t *testing.T) {
	r := New[int]("fault kind")
	require.NoError(t, r.Register("cp-kill", 1))
	require.NoError(t, r.Register("cp-restart", 2))
	require.NoError(t, r.Register("dsn-crash", 3))

	v, ok := r.Lookup("cp-restart")
	assert.True(t, ok)
	assert.Equal(t, 2, v)
	_, ok = r.Lookup("nope")
	assert.False(t, ok)

	assert.Equal(t, []string{"cp-kill", "cp-restart", "dsn-crash"}, r.Names())
	assert.Equal(t, []int{1, 2, 3}, r.All())
}

func TestDuplicatesAndEmptyNamesAreRefused(t *testing.T) {
	r := New[string]("measurement")
	require.NoError(t, r.Register("lost", "a"))
	err := r.Register("lost", "b")
	require.ErrorIs(t, err, ErrDuplicate)
	assert.Contains(t, err.Error(), `measurement "lost"`)
	v, _ := r.Lookup("lost")
	assert.Equal(t, "a", v, "a refused registration changes nothing")

	assert.Error(t, r.Register("", "x"))
	assert.Panics(t, func() { r.MustRegister("lost", "c") })

	r.Unregister("lost")
	_, ok := r.Lookup("lost")
	assert.False(t, ok)
	require.NoError(t, r.Register("lost", "d"), "a name unregistered can be registered again")
}

func TestSuggest(t *testing.T) {
	known := []string{"name", "count", "items"}
	assert.Equal(t, `; did you mean "count"? (known: name, count, items)`, Suggest("cont", known))
	assert.Equal(t, " (known: name, count, items)", Suggest("colour", known), "known names keep their order")
}

func TestUnknownNamesSuggestTheClosest(t *testing.T) {
	r := New[int]("fault kind")
	for i, n := range []string{"cp-kill", "cp-restart", "dsn-crash", "net-latency"} {
		r.MustRegister(n, i)
	}
	_, err := r.Get("net-latncy")
	require.ErrorIs(t, err, ErrUnknown)
	assert.Equal(t, `unknown fault kind "net-latncy"; did you mean "net-latency"? (known: cp-kill, cp-restart, dsn-crash, net-latency)`, err.Error())

	_, err = r.Get("backend-kill")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "did you mean", "nothing is close to backend-kill")

	_, err = New[int]("driver").Get("docker")
	assert.EqualError(t, err, `unknown driver "docker" (no driver is registered)`)
}

func TestClosest(t *testing.T) {
	names := []string{"storm_recovery_s", "convergence_p99_ms", "lost_dsns"}
	assert.Equal(t, "lost_dsns", Closest("lost_dsn", names))
	assert.Equal(t, "convergence_p99_ms", Closest("Convergence_P99_ms", names), "case does not count")
	assert.Equal(t, "", Closest("cpu_seconds", names))
}

func TestConcurrentUse(t *testing.T) {
	r := New[int]("x")
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- r.Register(string(rune('a'+i%26)), i)
			r.Names()
		}()
	}
	wg.Wait()
	close(errs)
	dups := 0
	for err := range errs {
		if errors.Is(err, ErrDuplicate) {
			dups++
		}
	}
	assert.Equal(t, 74, dups, "26 distinct names out of 100 registrations")
	assert.Len(t, r.Names(), 26)
}
