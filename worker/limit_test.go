package worker

import (
	"testing"
	"time"
)

// feed gives l calls of rtt each for d of (fake) time, a call per ms.
func feed(l *stepLimit, start time.Time, d, rtt time.Duration) time.Time {
	now := start
	for end := start.Add(d); now.Before(end); now = now.Add(time.Millisecond) {
		l.observe(rtt, now)
	}
	return now
}

func TestStepLimitFollowsProviderLatency(t *testing.T) {
	t.Parallel()
	t.Run("calls that keep their latency let the limit grow to its maximum", func(t *testing.T) {
		l := newStepLimit(64, 2048)
		feed(l, t0, 3*time.Second, 50*time.Millisecond)
		if got := l.capacity(); got != 2048 {
			t.Fatalf("limit %d after 3 s of steady 50 ms calls, want the maximum 2048", got)
		}
	})
	t.Run("calls that slow down well past the lowest latency shrink it", func(t *testing.T) {
		l := newStepLimit(64, 2048)
		now := feed(l, t0, 3*time.Second, 50*time.Millisecond)
		feed(l, now, time.Second, 500*time.Millisecond)
		if got := l.capacity(); got >= 2048/2 {
			t.Fatalf("limit %d after a second of calls ten times slower, want it well below 2048", got)
		}
	})
	t.Run("it never goes below the minimum", func(t *testing.T) {
		l := newStepLimit(64, 2048)
		now := feed(l, t0, time.Second, time.Millisecond)
		feed(l, now, 5*time.Second, 100*time.Millisecond)
		if got := l.capacity(); got != 64 {
			t.Fatalf("limit %d, want the minimum 64", got)
		}
	})
	t.Run("places are taken up to the limit and given back", func(t *testing.T) {
		l := newStepLimit(2, 4)
		if !l.tryAcquire() || !l.tryAcquire() || l.tryAcquire() {
			t.Fatal("want exactly two places")
		}
		l.release()
		if l.free() != 1 || !l.tryAcquire() {
			t.Fatal("a released place is not free again")
		}
	})
}
