package reports

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGroupRoundTrip(t *testing.T) {
	dir := t.TempDir()
	g := &Group{SchemaVersion: GroupSchemaVersion, ID: "g1", Scenario: "smoke", Params: map[string]string{"dsns": "20"}, Repeat: 3,
		Status: GroupInterrupted, Start: synthStart, End: synthStart.Add(1e9),
		Runs: []GroupRun{{Dir: "run-1", ID: "a", Result: ResultPass}, {Dir: "run-2", ID: "b", Broken: true, Error: "interrupted"}}}
	require.NoError(t, WriteGroup(dir, g))
	back, err := LoadGroup(dir)
	require.NoError(t, err)
	assert.Equal(t, g.Runs, back.Runs)
	assert.True(t, g.Start.Equal(back.Start))
	entries, _ := os.ReadDir(dir)
	require.Len(t, entries, 1, "no temporary file left behind")
}

func TestGroupValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		json string
		want string
	}{
		{"unknown field", `{"schemaVersion": 1, "id": "g", "scenario": "s", "repeat": 1, "status": "complete", "start": "2026-01-01T00:00:00Z", "runs": [],
 "extra": 1}`, "group.json:2:2: extra: unknown field"},
		{"escapes", `{"schemaVersion": 1, "id": "g", "scenario": "s", "repeat": 2, "status": "complete", "start": "2026-01-01T00:00:00Z",
 "runs": [{"dir": "../other", "result": "pass"}, {"dir": "/abs", "result": "pass"}]}`, `runs[0].dir: "../other": want a directory inside the group's`},
		{"absolute", `{"schemaVersion": 1, "id": "g", "scenario": "s", "repeat": 2, "status": "complete", "start": "2026-01-01T00:00:00Z",
 "runs": [{"dir": "/abs", "result": "pass"}]}`, `runs[0].dir: "/abs": want a directory inside the group's`},
		{"twice", `{"schemaVersion": 1, "id": "g", "scenario": "s", "repeat": 2, "status": "complete", "start": "2026-01-01T00:00:00Z",
 "runs": [{"dir": "a", "result": "pass"}, {"dir": "a/", "result": "pass"}]}`, `runs[1].dir: "a/": listed twice`},
		{"status", `{"schemaVersion": 1, "id": "g", "scenario": "s", "repeat": 1, "status": "done", "start": "2026-01-01T00:00:00Z", "runs": []}`, `status: "done": want running, complete or interrupted`},
		{"version", `{"schemaVersion": 2, "id": "g", "scenario": "s", "repeat": 1, "status": "complete", "start": "2026-01-01T00:00:00Z", "runs": []}`, "schemaVersion: 2 is not supported"},
		{"too many", `{"schemaVersion": 1, "id": "g", "scenario": "s", "repeat": 1, "status": "complete", "start": "2026-01-01T00:00:00Z",
 "runs": [{"dir": "a", "result": "pass"}, {"dir": "b", "result": "pass"}]}`, "runs: 2 runs in a group of 1"},
		{"result", `{"schemaVersion": 1, "id": "g", "scenario": "s", "repeat": 1, "status": "complete", "start": "2026-01-01T00:00:00Z",
 "runs": [{"dir": "a", "result": "aborted"}]}`, `runs[0].result: "aborted" for a run that did not break`},
		{"truncated", `{"schemaVersion": 1, "id": "g"`, "truncated JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, GroupFile), []byte(tc.json), 0o644))
			_, err := LoadGroup(dir)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalid)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestLoadSet(t *testing.T) {
	rec := loadRecorded(t)
	tmp := t.TempDir()
	group := writeGroup(t, tmp, "g", recordedSet(rec, "g", "aaa", 3, nil))
	// The group's third run broke: group.json says so, and what it left is kept for reference.
	g, err := LoadGroup(group)
	require.NoError(t, err)
	aborted := synthRun(9, "g-broken", "aaa", rec.nth(0), rec.units())
	aborted.Result, aborted.Error = ResultAborted, "interrupted"
	require.NoError(t, Write(filepath.Join(group, "run-4"), aborted))
	g.Repeat, g.Status = 5, GroupInterrupted
	g.Runs = append(g.Runs, GroupRun{Dir: "run-4", ID: aborted.ID, Broken: true, Error: "interrupted"}, GroupRun{Dir: "run-5", Broken: true, Error: "no record"})
	require.NoError(t, WriteGroup(group, g))

	s, err := LoadSet(group)
	require.NoError(t, err)
	assert.Equal(t, SetGroup, s.Kind)
	assert.Len(t, s.Runs, 3)
	require.Len(t, s.Broken, 2)
	assert.NotNil(t, s.Broken[0].Run)
	assert.Nil(t, s.Broken[1].Run)
	assert.Equal(t, 5, s.Size())
	assert.Contains(t, s.Notes[0], "is interrupted: 5 of 5 runs made")

	one, err := LoadSet(filepath.Join(group, "run-1"))
	require.NoError(t, err)
	assert.Equal(t, SetRun, one.Kind)
	assert.Len(t, one.Runs, 1)
	file, err := LoadSet(filepath.Join(group, "run-1", RunFile))
	require.NoError(t, err)
	assert.Equal(t, SetRun, file.Kind)

	// A directory of runs: a plain run, an aborted run, the group, and a stray directory.
	require.NoError(t, Write(filepath.Join(tmp, "plain"), synthRun(7, "plain", "aaa", rec.nth(1), rec.units())))
	require.NoError(t, Write(filepath.Join(tmp, "aborted"), aborted))
	require.NoError(t, os.Mkdir(filepath.Join(tmp, "notes"), 0o755))
	require.NoError(t, os.Mkdir(filepath.Join(tmp, ".hidden"), 0o755))
	all, err := LoadSet(tmp)
	require.NoError(t, err)
	assert.Equal(t, SetDirectory, all.Kind)
	assert.Len(t, all.Runs, 4)
	assert.Len(t, all.Broken, 3)
	assert.Contains(t, all.Notes, filepath.Join(tmp, "notes")+" holds no run.json or group.json: skipped")

	_, err = LoadSet(t.TempDir())
	assert.ErrorIs(t, err, ErrInvalid)
	// A listed run whose record is gone is bad input, not a broken run.
	require.NoError(t, os.RemoveAll(filepath.Join(group, "run-2")))
	_, err = LoadSet(group)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "run-2")
}
