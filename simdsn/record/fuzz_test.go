package record

import (
	"encoding/json"
	"errors"
	"testing"
)

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"at":1,"type":"state","dsn":"d1","state":"serving","stage":"serve"}`))
	f.Add([]byte(`{"at":1,"type":"watch","dsn":"d1","watch":"gap","rev":9,"prev":7}`))
	f.Add([]byte(`{"at":1,"type":"unit","unit":"r1","state":"down"}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		b, err := json.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := Decode(b)
		if err != nil || r2 != r {
			t.Fatalf("round trip: %+v -> %+v (%v)", r, r2, err)
		}
		c := NewCollector(nil)
		c.Add(r)
	})
}
