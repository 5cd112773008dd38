package search_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/scripts/testservers"
	"github.com/dsnscale/dsnscale/search"
	"github.com/dsnscale/dsnscale/search/searchtest"
)

func TestBleveConformance(t *testing.T) {
	searchtest.Run(t, func(t *testing.T, dir string) search.Index {
		idx, err := search.Open("", dir, search.Options{})
		require.NoError(t, err)
		return idx
	})
}

func TestElasticsearchConformance(t *testing.T) {
	url := testservers.Optional(t, testservers.ESURL)
	searchtest.Run(t, func(t *testing.T, dir string) search.Index {
		idx, err := search.Open(url, dir, search.Options{})
		require.NoError(t, err)
		return idx
	})
}
