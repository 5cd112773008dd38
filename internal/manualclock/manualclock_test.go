package manualclock

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestAfterFiresWhenTheClockPassesIt(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := New(start)
	now := c.After(0)
	assert.Equal(t, start, <-now, "a timer of no duration fires at once")
	a, b := c.After(time.Second), c.After(3*time.Second)
	assert.Equal(t, 2, c.Pending())

	c.Advance(time.Second)
	assert.Equal(t, start.Add(time.Second), <-a)
	assert.Equal(t, 1, c.Pending())
	select {
	case <-b:
		t.Fatal("a timer fired before its time")
	default:
	}

	c.Set(start.Add(time.Hour))
	assert.Equal(t, start.Add(time.Hour), <-b)
	assert.Equal(t, 0, c.Pending())
	assert.Equal(t, start.Add(time.Hour), c.Now())
}
