package worker

import (
	"time"

	"github.com/cenkalti/backoff/v4"
)

// RetryPolicy bounds the retries of one step. Waiting between attempts is a
// time in the store, not a sleeping goroutine, so the delay is computed from
// the attempt number alone: a restart continues the same schedule.
type RetryPolicy struct {
	// MaxAttempts is how many calls a step gets in all; zero means 6.
	MaxAttempts int
	// Initial is the delay after the first failure; zero means 200ms.
	Initial time.Duration
	// Max caps a single delay; zero means 10s.
	Max time.Duration
}

func (p RetryPolicy) attempts() int {
	if p.MaxAttempts <= 0 {
		return 6
	}
	return p.MaxAttempts
}

// Delay is the wait after the failure of attempt n (0-based): exponential
// with ±20% jitter so that orders failing together do not retry together.
func (p RetryPolicy) Delay(n int) time.Duration {
	initial, maxDelay := p.Initial, p.Max
	if initial <= 0 {
		initial = 200 * time.Millisecond
	}
	if maxDelay <= 0 {
		maxDelay = 10 * time.Second
	}
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(initial),
		backoff.WithMaxInterval(maxDelay),
		backoff.WithMultiplier(2),
		backoff.WithRandomizationFactor(0.2),
		backoff.WithMaxElapsedTime(0),
	)
	d := b.NextBackOff()
	for i := 0; i < n && d < maxDelay; i++ {
		d = b.NextBackOff()
	}
	return d
}
