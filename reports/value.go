package reports

import (
	"bytes"
	"encoding/json"
	"math"
)

// valueJSON is how run.json spells a Value: a missing value has "missing" and no "value".
type valueJSON struct {
	Name    string    `json:"name"`
	Value   *float64  `json:"value,omitempty"`
	Unit    string    `json:"unit,omitempty"`
	Better  Direction `json:"better,omitempty"`
	Missing string    `json:"missing,omitempty"`
}

// MarshalJSON writes a missing value without a number, so that no reader takes it for 0.
func (v Value) MarshalJSON() ([]byte, error) {
	j := valueJSON{Name: v.Name, Unit: v.Unit, Better: v.Better, Missing: v.Missing}
	if v.Missing == "" {
		j.Value = &v.Value
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(j); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// UnmarshalJSON reads what MarshalJSON writes, rejecting unknown fields. A value with neither a
// number nor a reason for its absence reads as NaN, which validation rejects.
func (v *Value) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var j valueJSON
	if err := dec.Decode(&j); err != nil {
		return err
	}
	*v = Value{Name: j.Name, Unit: j.Unit, Better: j.Better, Missing: j.Missing}
	switch {
	case j.Value != nil:
		v.Value = *j.Value
	case j.Missing == "":
		v.Value = math.NaN()
	}
	return nil
}
