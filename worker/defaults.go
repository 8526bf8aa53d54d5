package worker

import "time"

// The defaults of Config, written once: New fills a zero field with them,
// and `coinsaga serve` registers its flags with them.
const (
	DefaultConcurrency       = 64
	DefaultMaxStepsPerSlot   = 32 // MaxSteps is this many times Concurrency
	DefaultMaxSteps          = DefaultMaxStepsPerSlot * DefaultConcurrency
	DefaultConfirmInterval   = 15 * time.Second
	DefaultConfirmTimeout    = 2 * time.Minute
	DefaultSUDExecuteTimeout = 2 * time.Minute
	DefaultOutageHold        = 30 * time.Minute
	DefaultMaxAttempts       = 6 // RetryPolicy.MaxAttempts
	DefaultStepTimeout       = 10 * time.Second
)
