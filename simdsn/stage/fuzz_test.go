package stage

import (
	"errors"
	"io/fs"
	"testing"
)

func FuzzAddFile(f *testing.F) {
	files, _ := fs.Glob(defaultFiles, "defaults/*.yaml")
	for _, name := range files {
		data, _ := fs.ReadFile(defaultFiles, name)
		f.Add(data)
	}
	f.Add([]byte(validSet))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := Default()
		err := r.AddFile("fuzz.yaml", data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrDuplicate) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		// Whatever was added compiles (sets) or is checked against the sets (misbehaviours)
		// without panicking.
		_ = r.Check()
	})
}
