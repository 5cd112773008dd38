package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func fuzzSeeds(f *testing.F) {
	for _, s := range []string{
		goodTenant, goodNetwork, goodPolicy, goodDSN,
		``, `null`, `{}`, `[]`, `"x"`, `{"kind":1}`, `{"metadata":{"labels":{"a":"b","a":"c"}}}`,
		`{"apiVersion":"dsnscale/v1","kind":"Network","metadata":{"name":"n","tenant":"t"},"spec":{"cidr":"::/0","vlan":4094}}`,
		`{"apiVersion":"dsnscale/v1","kind":"Policy","metadata":{"name":"p","tenant":"t"},"spec":{"rules":[{"action":"allow","ports":["1-65535"]}]}}`,
		`{"apiVersion":"dsnscale/v1","kind":"Network","metadata":{"name":"n","tenant":"t"},"spec":{"cidr":"10.0.0.0/8","vlan":1e2}}`,
		`{"spec":[[[[[[[[]]]]]]]]}`, `{"metadata":{"name":"\ud800"}}`, `{"a":`, `{} {}`,
	} {
		f.Add([]byte(s))
	}
}

// FuzzDecodeObject checks that the strict decoder never panics, only ever fails with a malformed
// *FieldErrors, and that what it accepts survives an encode/decode round trip.
func FuzzDecodeObject(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		// The shape walker agrees with encoding/json on what is JSON at all, and accepts only
		// what encoding/json can decode.
		shapeOK := checkShape(data, reflect.TypeFor[Object](), "").Len() == 0
		if shapeOK && !json.Valid(data) {
			t.Fatalf("shape check accepted invalid JSON %q", data)
		}
		if shapeOK {
			var o Object
			if err := json.Unmarshal(data, &o); err != nil {
				t.Fatalf("shape check accepted %q, which encoding/json refuses: %v", data, err)
			}
		}
		if !json.Valid(data) {
			if checkShape(data, reflect.TypeFor[json.RawMessage](), "").Len() == 0 {
				t.Fatalf("shape check of any value accepted invalid JSON %q", data)
			}
		} else if checkShape(data, reflect.TypeFor[json.RawMessage](), "").Len() != 0 {
			t.Fatalf("shape check of any value refused valid JSON %q", data)
		}
		obj, err := DecodeObject(data)
		if err != nil {
			var fe *FieldErrors
			if !errors.As(err, &fe) || !fe.Malformed() || fe.Len() == 0 || fe.Len() > maxFieldErrors {
				t.Fatalf("DecodeObject error %T %v is not a bounded malformed *FieldErrors", err, err)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("DecodeObject accepted invalid JSON %q", data)
		}
		enc, err := json.Marshal(obj)
		if err != nil {
			t.Fatalf("re-encoding an accepted object: %v", err)
		}
		again, err := DecodeObject(enc)
		if err != nil {
			t.Fatalf("decoding a re-encoded object %s: %v", enc, err)
		}
		enc2, _ := json.Marshal(again)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip changed the object:\n%s\n%s", enc, enc2)
		}
	})
}

// FuzzValidate checks that validation never panics, is deterministic, reports only
// *FieldErrors with bounded length, and that an accepted object has a spec of its kind's shape
// and values within their bounds.
func FuzzValidate(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		// The shape walker agrees with encoding/json on what is JSON at all, and accepts only
		// what encoding/json can decode.
		shapeOK := checkShape(data, reflect.TypeFor[Object](), "").Len() == 0
		if shapeOK && !json.Valid(data) {
			t.Fatalf("shape check accepted invalid JSON %q", data)
		}
		if shapeOK {
			var o Object
			if err := json.Unmarshal(data, &o); err != nil {
				t.Fatalf("shape check accepted %q, which encoding/json refuses: %v", data, err)
			}
		}
		if !json.Valid(data) {
			if checkShape(data, reflect.TypeFor[json.RawMessage](), "").Len() == 0 {
				t.Fatalf("shape check of any value accepted invalid JSON %q", data)
			}
		} else if checkShape(data, reflect.TypeFor[json.RawMessage](), "").Len() != 0 {
			t.Fatalf("shape check of any value refused valid JSON %q", data)
		}
		obj, err := DecodeObject(data)
		if err != nil {
			return
		}
		err = Validate(obj)
		err2 := Validate(obj)
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("Validate is not deterministic: %v vs %v", err, err2)
		}
		if err != nil {
			var fe *FieldErrors
			if !errors.As(err, &fe) || fe.Len() == 0 || fe.Len() > maxFieldErrors || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate error %T %v is not a bounded *FieldErrors", err, err)
			}
			return
		}
		if CheckName(obj.Metadata.Name) != "" && CheckDSNID(obj.Metadata.Name) != "" {
			t.Fatalf("accepted bad name %q", obj.Metadata.Name)
		}
		switch obj.Kind {
		case KindNetwork:
			var spec NetworkSpec
			if err := obj.DecodeSpec(&spec); err != nil {
				t.Fatalf("accepted network spec does not decode: %v", err)
			}
			if spec.VLAN < 1 || spec.VLAN > 4094 || CheckCIDR(spec.CIDR) != "" {
				t.Fatalf("accepted bad network spec %+v", spec)
			}
		case KindPolicy:
			var spec PolicySpec
			if err := obj.DecodeSpec(&spec); err != nil {
				t.Fatalf("accepted policy spec does not decode: %v", err)
			}
			for _, r := range spec.Rules {
				if r.Action != ActionAllow && r.Action != ActionDeny {
					t.Fatalf("accepted bad action %q", r.Action)
				}
				for _, p := range r.Ports {
					if _, _, err := ParsePortRange(p); err != nil {
						t.Fatalf("accepted bad port %q", p)
					}
				}
			}
		case KindTenant, KindDSN:
		default:
			t.Fatalf("accepted unknown kind %q", obj.Kind)
		}
	})
}
