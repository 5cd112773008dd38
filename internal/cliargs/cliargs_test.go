package cliargs

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestScannerWalksFlagsAndArguments(t *testing.T) {
	s := New([]string{"file.yaml", "--set", "a=1", "--out=dir", "-", "--plan"})
	var got []string
	for s.Next() {
		if !s.IsFlag() {
			got = append(got, "arg "+s.Arg())
			continue
		}
		switch s.Name() {
		case "plan":
			require.NoError(t, s.NoValue())
			got = append(got, "switch plan")
		default:
			v, err := s.Value()
			require.NoError(t, err)
			got = append(got, s.Name()+"="+v)
		}
	}
	assert.Equal(t, []string{"arg file.yaml", "set=a=1", "out=dir", "arg -", "switch plan"}, got)
}

func TestScannerErrors(t *testing.T) {
	s := New([]string{"--plan=yes", "--out"})
	require.True(t, s.Next())
	assert.EqualError(t, s.NoValue(), "--plan takes no value")
	require.True(t, s.Next())
	_, err := s.Value()
	assert.EqualError(t, err, "--out needs a value")
	assert.False(t, s.Next())
}
