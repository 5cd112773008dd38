package trafficmap

import (
	"errors"
	"testing"

	"github.com/dsnscale/dsnscale/simdsn/stage"
)

func FuzzParse(f *testing.F) {
	f.Add(defaultMap)
	f.Add([]byte(small))
	f.Add([]byte("apiVersion: dsnscale/v1\nkind: TrafficMap\n"))
	f.Add([]byte("- [\n"))
	reg := stage.Default()
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse("fuzz.yaml", data, reg)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		if err := m.Validate(reg); err != nil {
			t.Fatalf("a parsed map does not validate: %v", err)
		}
		if m.DSNs() > 100000 {
			return
		}
		ps, err := m.Place(0, "f")
		if err != nil {
			t.Fatalf("a valid map does not place: %v", err)
		}
		if len(ps) != m.DSNs() {
			t.Fatalf("placed %d DSNs, want %d", len(ps), m.DSNs())
		}
	})
}
