package protect

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coinsaga/coinsaga/providers"
)

// OpenError is why a breaker refused a call: the circuit of Endpoint has
// been open since OpenedAt (the first failure run, not the latest failed
// probe), so that a caller can tell a blip from a long outage. The refused
// call was never sent.
type OpenError struct {
	Endpoint string // "mogs.pay"
	OpenedAt time.Time
}

func (e *OpenError) Error() string {
	return fmt.Sprintf("circuit of %s open since %s: call not sent", e.Endpoint, e.OpenedAt.UTC().Format(time.RFC3339))
}

// OpenSince returns when the circuit that refused err opened, and whether
// err is such a refusal.
func OpenSince(err error) (time.Time, bool) {
	var oe *OpenError
	if errors.As(err, &oe) {
		return oe.OpenedAt, true
	}
	return time.Time{}, false
}

type state uint8

const (
	closed   state = iota
	open           // refusing until retryAt
	halfOpen       // one probe in flight, refusing the rest
)

// verdict is what one call's outcome says about the endpoint's health.
type verdict uint8

const (
	healthy verdict = iota // the service answered, even if it said no
	outage                 // busy, 5xx, transport failure or timeout
	neutral                // says nothing: the caller hung up, or an error of unknown kind
)

// judge reads a call's outcome. Only a Retryable busy, unavailable or
// timeout counts against the endpoint: a decline, a parameter error or any
// other Final answer comes from a service that works.
func judge(ctx context.Context, err error) verdict {
	if err == nil {
		return healthy
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return neutral
	}
	var pe *providers.Error
	if !errors.As(err, &pe) {
		return neutral
	}
	if pe.Class == providers.Retryable {
		switch pe.Code {
		case providers.CodeBusy, providers.CodeUnavailable, providers.CodeTimeout:
			return outage
		}
	}
	return healthy
}

// breaker is one endpoint's circuit. Every time comes from now.
type breaker struct {
	endpoint string
	cfg      BreakerConfig
	now      func() time.Time
	changed  func(change) // called without the lock held

	mu       sync.Mutex
	st       state
	fails    int    // outage failures in a row, while closed
	gen      uint64 // counts closings, so that a call admitted before one does not count after it
	openedAt time.Time
	retryAt  time.Time
	coolDown time.Duration
}

// change is a transition worth telling the observer and the log about.
type change struct {
	open     bool
	err      error         // on opening: the failure that opened it
	failures int           // on opening
	coolDown time.Duration // on opening
	openFor  time.Duration // on closing
}

// ticket is an admitted call.
type ticket struct {
	probe bool
	gen   uint64
}

func newBreaker(endpoint string, cfg BreakerConfig, now func() time.Time, changed func(change)) *breaker {
	return &breaker{endpoint: endpoint, cfg: cfg, now: now, changed: changed, coolDown: cfg.CoolDown}
}

// check refuses a call while the circuit is open and no probe is due. It
// takes nothing: a call it lets pass is admitted (or refused) by admit.
func (b *breaker) check() *OpenError {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.st == closed || (b.st == open && !b.now().Before(b.retryAt)) {
		return nil
	}
	return b.refusal()
}

// admit decides a call right before it is sent: every call while closed,
// and the first after the cool-down as the probe.
func (b *breaker) admit() (ticket, *OpenError) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.st == closed:
		return ticket{gen: b.gen}, nil
	case b.st == open && !b.now().Before(b.retryAt):
		b.st = halfOpen
		return ticket{probe: true}, nil
	}
	return ticket{}, b.refusal()
}

func (b *breaker) refusal() *OpenError {
	return &OpenError{Endpoint: b.endpoint, OpenedAt: b.openedAt}
}

// done records the outcome of an admitted call.
func (b *breaker) done(t ticket, v verdict, err error) {
	b.mu.Lock()
	c, ok := b.record(t, v, err)
	b.mu.Unlock()
	if ok {
		b.changed(c)
	}
}

func (b *breaker) record(t ticket, v verdict, err error) (change, bool) {
	now := b.now()
	if t.probe {
		switch v {
		case healthy:
			b.st, b.fails, b.coolDown = closed, 0, b.cfg.CoolDown
			b.gen++
			return change{openFor: now.Sub(b.openedAt)}, true
		case outage:
			b.st = open
			b.coolDown = min(2*b.coolDown, b.cfg.MaxCoolDown)
			b.retryAt = now.Add(b.coolDown)
		default:
			// The probe told nothing: the next call probes instead.
			b.st, b.retryAt = open, now
		}
		return change{}, false
	}
	if b.st != closed || t.gen != b.gen {
		return change{}, false // a straggler from before the circuit last changed
	}
	switch v {
	case healthy:
		b.fails = 0
	case outage:
		b.fails++
		if b.fails >= b.cfg.Failures {
			b.st, b.openedAt, b.coolDown = open, now, b.cfg.CoolDown
			b.retryAt = now.Add(b.coolDown)
			return change{open: true, err: err, failures: b.fails, coolDown: b.coolDown}, true
		}
	}
	return change{}, false
}
