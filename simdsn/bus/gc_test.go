package bus

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
)

func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func TestDensityGCIsHeldWhileAPerDSNBusLives(t *testing.T) {
	t.Setenv("GOGC", "")
	defer debug.SetGCPercent(debug.SetGCPercent(150))
	first := holdDensityGC()
	assert.Equal(t, DensityGCPercent, gcPercent())
	second := holdDensityGC()
	first()
	first() // releasing twice is releasing once
	assert.Equal(t, DensityGCPercent, gcPercent(), "still held by the second bus")
	second()
	assert.Equal(t, 150, gcPercent(), "the previous target is back")
}

func TestDensityGCLeavesGOGCAlone(t *testing.T) {
	t.Setenv("GOGC", "150")
	defer debug.SetGCPercent(debug.SetGCPercent(150))
	release := holdDensityGC()
	assert.Equal(t, 150, gcPercent())
	release()
	assert.Equal(t, 150, gcPercent())
}
