package tsdb_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/scripts/testservers"
	"github.com/dsnscale/dsnscale/tsdb"
	"github.com/dsnscale/dsnscale/tsdb/tsdbtest"
)

func TestEmbeddedConformance(t *testing.T) {
	tsdbtest.Run(t, func(t *testing.T, dir string) tsdb.Storage {
		st, err := tsdb.Open("", dir, tsdb.Options{Logger: quietLogger()})
		require.NoError(t, err)
		return st
	})
}

func TestVictoriaMetricsConformance(t *testing.T) {
	url := testservers.Require(t, testservers.VMURL)
	tsdbtest.Run(t, func(t *testing.T, dir string) tsdb.Storage {
		st, err := tsdb.Open(url, dir, tsdb.Options{Logger: quietLogger()})
		require.NoError(t, err)
		return st
	})
}

func TestInfluxDBConformance(t *testing.T) {
	url := testservers.Optional(t, testservers.InfluxURL)
	tsdbtest.Run(t, func(t *testing.T, dir string) tsdb.Storage {
		st, err := tsdb.Open(url, dir, tsdb.Options{Logger: quietLogger()})
		require.NoError(t, err)
		return st
	})
}
