package strictyaml

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type demo struct {
	APIVersion string           `yaml:"apiVersion"`
	Kind       string           `yaml:"kind"`
	Axis       map[string][]int `yaml:"axis"`
	Repeat     int              `yaml:"repeat"`
}

func TestDecodeFileAndHeader(t *testing.T) {
	data := []byte("apiVersion: dsnscale/v2\nkind: Sweep\nrepeat: x\naxis:\n  dsns: [1, 2]\nextra: 1\n")
	var v demo
	d, err := DecodeFile("s.yaml", data, &v)
	require.ErrorIs(t, err, ErrInvalid)
	assert.Equal(t, "s.yaml:3: repeat: \"x\" is not an integer\ns.yaml:6: extra: unknown field (known: apiVersion, kind, axis, repeat)", err.Error())
	d.CheckHeader(Header{APIVersion: v.APIVersion, Kind: v.Kind}, "Gate")
	assert.Equal(t, strings.Join([]string{
		`s.yaml:1: apiVersion: must be "dsnscale/v1", got "dsnscale/v2"`,
		`s.yaml:2: kind: must be "Gate", got "Sweep"`,
		`s.yaml:3: repeat: "x" is not an integer`,
		`s.yaml:6: extra: unknown field (known: apiVersion, kind, axis, repeat)`,
	}, "\n"), d.Err().Error())
	assert.Equal(t, []int{1, 2}, v.Axis["dsns"])
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	require.NoError(t, os.WriteFile(big, make([]byte, MaxFileBytes+1), 0o644))
	_, err := ReadFile(big)
	assert.ErrorIs(t, err, ErrInvalid)
	_, err = ReadFile(filepath.Join(dir, "missing.yaml"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	small := filepath.Join(dir, "ok.yaml")
	require.NoError(t, os.WriteFile(small, []byte("a: 1\n"), 0o644))
	b, err := ReadFile(small)
	require.NoError(t, err)
	assert.Equal(t, "a: 1\n", string(b))
}

func TestKindOf(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ data, want string }{
		"plain":   {"apiVersion: dsnscale/v1\nkind: Sweep\n", "Sweep"},
		"quoted":  {"apiVersion: dsnscale/v1\r\nkind: \"Target\" \r\n", "Target"},
		"no kind": {"apiVersion: dsnscale/v1\nmetadata: {}\n", ""},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".yaml")
		require.NoError(t, os.WriteFile(path, []byte(tc.data), 0o644))
		assert.Equal(t, tc.want, KindOf(path), name)
	}
	assert.Equal(t, "", KindOf(filepath.Join(dir, "absent.yaml")))
}
