package cliargs

import (
	"errors"
	"strings"
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

func TestRefuse(t *testing.T) {
	var out, errb strings.Builder
	assert.Equal(t, 0, Refuse(ErrHelp, "run", "usage: run", &out, &errb))
	assert.Equal(t, "usage: run\n", out.String())
	assert.Empty(t, errb.String())

	out.Reset()
	assert.Equal(t, 2, Refuse(errors.New("unknown flag --x"), "run", "usage: run", &out, &errb))
	assert.Empty(t, out.String())
	assert.Equal(t, "dsnscale run: unknown flag --x\n\nusage: run\n", errb.String())
}

func TestScannerOne(t *testing.T) {
	s := New([]string{"a.yaml", "b.yaml"})
	var target string
	require.True(t, s.Next())
	require.NoError(t, s.One(&target, "scenario"))
	require.True(t, s.Next())
	assert.EqualError(t, s.One(&target, "scenario"), `unexpected argument "b.yaml": one scenario at a time`)
	assert.Equal(t, "a.yaml", target)
}
