package controlplane

import (
	"context"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCreationWaitsForPeersToJoin checks that a creation refused for want of peers (a cluster
// whose nodes are still joining) is asked again, and that another refusal is not.
func TestCreationWaitsForPeersToJoin(t *testing.T) {
	noPeers := fmt.Errorf("create bucket: %w", &jetstream.APIError{Code: 400, ErrorCode: 10005, Description: "no suitable peers for placement"})
	calls := 0
	v, err := retryCreate(context.Background(), func(context.Context) (int, error) {
		calls++
		if calls < 3 {
			return 0, noPeers
		}
		return 7, nil
	})
	require.NoError(t, err)
	assert.Equal(t, 7, v)
	assert.Equal(t, 3, calls)

	calls = 0
	bad := &jetstream.APIError{Code: 400, ErrorCode: 10003, Description: "bad request"}
	_, err = retryCreate(context.Background(), func(context.Context) (int, error) {
		calls++
		return 0, bad
	})
	require.ErrorIs(t, err, bad)
	assert.Equal(t, 1, calls, "a bad request is not asked again")
}
