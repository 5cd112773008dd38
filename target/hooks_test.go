package target

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHooks(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pause.sh"), []byte("#!/bin/sh\necho paused\n"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "plain.sh"), []byte("#!/bin/sh\n"), 0o644))
	path := filepath.Join(dir, "t.yaml")

	f, err := Parse(path, []byte(good+`hooks:
  pause: {command: [./pause.sh, cp-0], timeout: 5s}
  resume: {command: [sh, -c, "exit 0"], timeout: 5s}
`))
	require.NoError(t, err)
	assert.Equal(t, []string{filepath.Join(dir, "pause.sh"), "cp-0"}, f.Hooks.Pause.Command, "relative to the target file")
	require.NoError(t, f.Hooks.Pause.Run(context.Background(), "pause"))

	_, err = Parse(path, []byte(good+`hooks:
  kill: {command: [./missing.sh], timeout: 5s}
  pause: {command: [./plain.sh]}
  resume: {command: [no-such-program-anywhere], timeout: 5s}
`))
	require.ErrorIs(t, err, ErrInvalid)
	for _, want := range []string{
		"hooks.kill.command: " + filepath.Join(dir, "missing.sh") + ": stat",
		"hooks.pause.command: " + filepath.Join(dir, "plain.sh") + " is not executable",
		"hooks.pause.timeout: is required",
		"hooks.resume.command: no-such-program-anywhere is not in PATH",
		"hooks: kill and start go together",
	} {
		assert.Contains(t, err.Error(), want)
	}

	failing := &Hook{Command: []string{"sh", "-c", "echo no such replica >&2; exit 3"}, Timeout: 5 * time.Second}
	err = failing.Run(context.Background(), "kill")
	require.ErrorIs(t, err, ErrHook)
	assert.Contains(t, err.Error(), "kill (sh -c echo no such replica >&2; exit 3): exit status 3: no such replica")
	slow := &Hook{Command: []string{"sleep", "30"}, Timeout: 100 * time.Millisecond}
	err = slow.Run(context.Background(), "pause")
	require.ErrorIs(t, err, ErrHook)
	assert.Contains(t, err.Error(), "timed out after 100ms")
}
