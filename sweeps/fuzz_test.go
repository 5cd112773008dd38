package sweeps

import (
	"errors"
	"testing"
)

// The sweep decoder takes files from users: whatever the input, it returns a sweep or errors
// that match ErrInvalid, and never panics.
func FuzzParse(f *testing.F) {
	lib, err := LibraryFile("capacity")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(lib)
	f.Add([]byte(head("scenario: smoke\naxes: {dsns: [10, 20]}\nrepeat: 2\n")))
	f.Add([]byte(head("scenario: smoke\naxes: {dsns: [10]}\nuntilFail: {max: \"40\", resolution: 5%}\n")))
	f.Add([]byte(head("scenario: smoke\naxes: {rate: [1/s, 2/s], dsns: [3]}\nbudget: 1h\n")))
	f.Add([]byte("kind: Sweep\naxes: [1, 2]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sw, err := Parse("f.yaml", data, "")
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse: %v does not match ErrInvalid", err)
			}
			return
		}
		if _, err := Check(sw); err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("Check: %v does not match ErrInvalid", err)
		}
	})
}
