package record

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An admission record keeps the DSN's last reason, with its time, and needs a DSN id.
func TestAdmissionRecords(t *testing.T) {
	c := NewCollector(nil)
	t0 := time.Unix(100, 0)
	c.Add(Record{At: t0.UnixNano(), Type: TypeState, DSN: "d1", State: "admitting"})
	c.Add(Record{At: t0.Add(time.Second).UnixNano(), Type: TypeAdmission, DSN: "d1", Detail: "connect: refused"})
	c.Add(Record{At: t0.Add(2 * time.Second).UnixNano(), Type: TypeAdmission, DSN: "d1", Detail: AdmissionRetry + ": busy"})
	reps := c.Reports()
	require.Len(t, reps, 1)
	assert.Equal(t, AdmissionProblem{At: t0.Add(2 * time.Second), Reason: AdmissionRetry + ": busy"}, reps[0].Admission)
	assert.Equal(t, "admitting", reps[0].State, "a reason is no state change")

	bad := Record{At: 1, Type: TypeAdmission, Detail: "x"}
	require.ErrorIs(t, bad.Validate(), ErrInvalid)
}
