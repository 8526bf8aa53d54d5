// Package testclock is a clock that tests set and move by hand, so that
// timing logic is tested without sleeping: pass Clock.Now where a
// Config takes a func() time.Time.
package testclock

import (
	"sync"
	"time"
)

// Start is the time New clocks show unless told otherwise.
var Start = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

// Clock is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a clock showing t.
func New(t time.Time) *Clock { return &Clock{t: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock d on.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
