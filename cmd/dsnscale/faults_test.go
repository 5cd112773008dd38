package main

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/faults"
)

func TestFaultsCommandListsEveryKind(t *testing.T) {
	var out, errb strings.Builder
	require.Equal(t, exitOK, dispatch(context.Background(), []string{"faults"}, &out, &errb), errb.String())
	for _, name := range faults.Default.Names() {
		assert.Contains(t, out.String(), name+"\n  ")
	}
	assert.Contains(t, out.String(), "toxicity")
	assert.Equal(t, exitUsage, dispatch(context.Background(), []string{"faults", "net-latency"}, &out, &errb))
}
