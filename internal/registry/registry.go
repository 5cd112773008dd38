// Package registry is the one name -> value registry behind every extension point (fault kinds,
// measurements, executors, fleet drivers, benchmarks, sweep models, gate figures, target hooks).
//
// Names are unique: registering a name twice is an error (MustRegister panics, since
// registrations happen in init functions where a duplicate is a programming error). Lookups of
// unknown names say which names exist and which one was probably meant.
package registry

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
)

// Sentinel errors.
var (
	// ErrDuplicate is returned when a name is registered twice.
	ErrDuplicate = errors.New("registered twice")
	// ErrUnknown is returned by Get for a name that is not registered.
	ErrUnknown = errors.New("unknown")
)

// Registry maps names to values of type T. The zero value is empty and ready to use; it is safe
// for concurrent use.
type Registry[T any] struct {
	// What names the things registered ("fault kind", "measurement"), for error messages.
	What string

	mu     sync.RWMutex
	values map[string]T
}

// New returns an empty registry of what ("fault kind").
func New[T any](what string) *Registry[T] { return &Registry[T]{What: what} }

// Register adds v under name.
func (r *Registry[T]) Register(name string, v T) error {
	if name == "" {
		return fmt.Errorf("%s without a name", r.what())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.values == nil {
		r.values = map[string]T{}
	}
	if _, dup := r.values[name]; dup {
		return fmt.Errorf("%s %q: %w", r.what(), name, ErrDuplicate)
	}
	r.values[name] = v
	return nil
}

// MustRegister is Register for init functions: it panics on an error.
func (r *Registry[T]) MustRegister(name string, v T) {
	if err := r.Register(name, v); err != nil {
		panic(err)
	}
}

// Unregister removes name, if registered. It is for tests that register a value of their own
// for a while; production code registers once, from init functions.
func (r *Registry[T]) Unregister(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.values, name)
}

// Lookup returns the value registered under name.
func (r *Registry[T]) Lookup(name string) (T, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := r.values[name]
	return v, ok
}

// Get returns the value registered under name, or an error wrapping ErrUnknown that lists the
// known names and suggests the closest one.
func (r *Registry[T]) Get(name string) (T, error) {
	if v, ok := r.Lookup(name); ok {
		return v, nil
	}
	var zero T
	return zero, fmt.Errorf("%w %s %q%s", ErrUnknown, r.what(), name, r.Hint(name))
}

// Hint is the tail of an "unknown name" message: "; did you mean X? (known: A, B, C)".
func (r *Registry[T]) Hint(name string) string {
	names := r.Names()
	if len(names) == 0 {
		return fmt.Sprintf(" (no %s is registered)", r.what())
	}
	return Suggest(name, names)
}

// Suggest is the tail of a message about an unknown name among known (kept in known's order):
// "; did you mean X? (known: A, B, C)", or " (known: A, B, C)" when nothing is close. Every
// "unknown ..." message (registered names, file fields) ends this way.
func Suggest(name string, known []string) string {
	var b strings.Builder
	if s := Closest(name, known); s != "" {
		fmt.Fprintf(&b, "; did you mean %q?", s)
	}
	fmt.Fprintf(&b, " (known: %s)", strings.Join(known, ", "))
	return b.String()
}

// Names returns the registered names, sorted.
func (r *Registry[T]) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.values))
}

// All returns the registered values in name order.
func (r *Registry[T]) All() []T {
	names := r.Names()
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]T, len(names))
	for i, n := range names {
		out[i] = r.values[n]
	}
	return out
}

func (r *Registry[T]) what() string {
	if r.What == "" {
		return "name"
	}
	return r.What
}

// Closest returns the candidate nearest to name by edit distance, if it is near enough to be a
// likely typo (at most a third of the longer name's length, and at least one edit); "" otherwise.
func Closest(name string, candidates []string) string {
	best, bestDist := "", -1
	for _, c := range candidates {
		d := distance(strings.ToLower(name), strings.ToLower(c))
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	limit := max(len(name), len(best))/3 + 1
	if best == "" || bestDist > limit {
		return ""
	}
	return best
}

// distance is the Levenshtein distance between a and b, by bytes.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
