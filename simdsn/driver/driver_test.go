package driver

import (
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/simdsn/engine"
)

type nopDriver struct{}

func (nopDriver) Launch(context.Context, *Plan, io.Writer) (Deployment, error) { return nil, nil }

func TestRegistry(t *testing.T) {
	require.NoError(t, Register("test-nop", nopDriver{}))
	assert.ErrorIs(t, Register("test-nop", nopDriver{}), ErrDuplicate)
	assert.Panics(t, func() { MustRegister("test-nop", nopDriver{}) })
	d, err := Lookup("test-nop")
	require.NoError(t, err)
	assert.Equal(t, nopDriver{}, d)
	_, err = Lookup("nope")
	assert.ErrorIs(t, err, ErrUnknown)
	assert.Contains(t, Names(), "test-nop")
}

func TestSplit(t *testing.T) {
	units := []Unit{
		{Name: "u1", DSNs: []engine.DSNSpec{{ID: "a"}, {ID: "b"}}},
		{Name: "u2", DSNs: []engine.DSNSpec{{ID: "c"}}},
	}
	parts, err := Split(units, engine.Command{Op: engine.OpStop, DSNs: []string{"a", "c"}})
	require.NoError(t, err)
	assert.Equal(t, map[string]engine.Command{
		"u1": {Op: engine.OpStop, DSNs: []string{"a"}},
		"u2": {Op: engine.OpStop, DSNs: []string{"c"}},
	}, parts)
	parts, err = Split(units, engine.Command{Op: engine.OpStart})
	require.NoError(t, err)
	assert.Len(t, parts, 2)
	_, err = Split(units, engine.Command{Op: engine.OpStop, DSNs: []string{"z"}})
	assert.ErrorIs(t, err, engine.ErrUnknownDSN)
}

func TestHostPort(t *testing.T) {
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222": "127.0.0.1:4222",
		"127.0.0.1:5000":        "127.0.0.1:5000",
		"nats://localhost":      "localhost:4222",
	} {
		got, err := HostPort(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got)
	}
	_, err := HostPort("nats://")
	assert.Error(t, err)
}
