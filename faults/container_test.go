package faults

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// unitFleet records the unit faults asked of it; it is the collaborator under control here.
type unitFleet struct {
	*recFleet
	kind   string
	units  []string
	undone int
}

func (f *unitFleet) Units() []Link {
	var out []Link
	for i := range 4 {
		name := fmt.Sprintf("r%d", i)
		out = append(out, Link{Name: name, Labels: map[string]string{"unit": name, "site": fmt.Sprint("s", i%2)},
			DSNs: []string{name + "-a", name + "-b"}})
	}
	return out
}

func (f *unitFleet) FaultUnits(_ context.Context, kind string, units []string) (func(context.Context) error, error) {
	f.kind, f.units = kind, units
	return func(context.Context) error { f.undone++; return nil }, nil
}

func TestContainerKinds(t *testing.T) {
	for kind, unitFault := range map[string]string{"container-pause": "unit-pause", "container-kill": "unit-kill", "container-stop": "unit-stop",
		"container-restart": "unit-restart", "container-disconnect": "unit-disconnect"} {
		t.Run(kind, func(t *testing.T) {
			fl := &unitFleet{recFleet: newRecFleet(&stepClock{}, 8)}
			f, err := Default.New(Spec{Kind: kind, Target: Target{Labels: map[string]string{"site": "s1"}}}, Env{Fleet: fl})
			require.NoError(t, err)
			require.NoError(t, f.Inject(context.Background()))
			assert.Equal(t, unitFault, fl.kind)
			assert.Equal(t, []string{"r1", "r3"}, fl.units)
			assert.Equal(t, []string{"r1-a", "r1-b", "r3-a", "r3-b"}, f.(Targeted).Affected())
			require.NoError(t, f.Recover(context.Background()))
			require.NoError(t, f.Recover(context.Background()))
			assert.Equal(t, 1, fl.undone)
			assert.Equal(t, kind == "container-restart", f.(Momentary).Momentary())
		})
	}
	_, err := Default.New(Spec{Kind: "container-pause"}, Env{Fleet: newRecFleet(&stepClock{}, 2)})
	assert.ErrorIs(t, err, ErrUnsupported, "a fleet without units")
	err = Default.Validate(Spec{Kind: "container-kill", Target: Target{DSNs: []string{"d"}}})
	var se *SpecError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "target.dsns", se.Field)
}
