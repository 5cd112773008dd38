package tsdb_test

import (
	"strings"
	"testing"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/promutils"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/tsdb"
)

func TestValidateLabels(t *testing.T) {
	raw := func(pairs ...string) *promutils.Labels {
		ls := promutils.NewLabels(len(pairs) / 2)
		for i := 0; i+1 < len(pairs); i += 2 {
			ls.Add(pairs[i], pairs[i+1])
		}
		return ls
	}
	tests := []struct {
		name string
		ls   *promutils.Labels
		want string
	}{
		{"ok", tsdb.Labels("dsn_cpu_seconds", "dsn", "a", "Site_2", "x"), ""},
		{"ok unsorted", raw("dsn", "a", "__name__", "up:rate5m"), ""},
		{"empty", raw(), "empty label set"},
		{"nil", nil, "empty label set"},
		{"no name", raw("dsn", "a"), "no __name__"},
		{"duplicate sorted", raw("__name__", "x", "a", "1", "a", "2"), `"a" appears twice`},
		{"duplicate unsorted", raw("b", "1", "__name__", "x", "b", "2"), `"b" appears twice`},
		{"bad metric name", raw("__name__", "9lives"), "metric name"},
		{"bad label name", raw("__name__", "x", "a-b", "1"), `label name "a-b"`},
		{"reserved", raw("__name__", "x", "__meta", "1"), "reserved"},
		{"empty value", raw("__name__", "x", "a", ""), "empty value"},
		{"long value", raw("__name__", "x", "a", strings.Repeat("v", tsdb.MaxLabelValueBytes+1)), "at most"},
		{"bad utf-8", raw("__name__", "x", "a", "\xff"), "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tsdb.ValidateLabels(tt.ls)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tsdb.ErrInvalid)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
