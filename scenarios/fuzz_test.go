package scenarios

import (
	"errors"
	"testing"
)

// FuzzParse feeds arbitrary text to the scenario decoder: it must never panic, and every
// rejection must be an ErrInvalid with a place.
func FuzzParse(f *testing.F) {
	f.Add([]byte(valid))
	for _, name := range []string{"smoke", "storm-restart", "cp-restart", "steady-state"} {
		if data, err := LibraryFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("params: {a: ${a}}\nfleet: {size: ${a}}"))
	f.Add([]byte("slos: [\"x <= ${\"]"))
	f.Add([]byte("- [a, &x b, *x]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz.yaml", data, map[string]string{}, "")
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not match ErrInvalid: %v", err)
			}
			return
		}
		if s.Fleet.Size < 1 || len(s.Steps) == 0 {
			t.Fatalf("accepted a scenario without a fleet or steps")
		}
	})
}
