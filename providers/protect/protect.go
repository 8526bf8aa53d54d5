// Package protect guards the provider clients against provider trouble and
// the providers against us, per endpoint ("mogs.pay", "midas.get_balance_m",
// "sud.create_order"), with three guards applied in this order:
//
//  1. A circuit breaker refuses at once, without touching the network,
//     while the endpoint is down: after Breaker.Failures outage failures in
//     a row (busy, 5xx, transport errors, timeouts; never a decline or
//     another Final answer, which come from a working service) it opens;
//     after a cool-down one probe call goes through, and its success
//     closes the circuit while its failure keeps it open for a longer
//     cool-down.
//  2. A rate limit (a token bucket, off unless configured) makes callers
//     wait for their turn; it never fails a call.
//  3. A bulkhead caps the calls in flight; a caller waits for room, never
//     fails for lack of it.
//
// The breaker is asked twice: before the waits, so that a call refused
// while the circuit is open neither takes a rate token nor waits for a
// bulkhead slot, and once more right before the call is sent, since the
// circuit may have opened meanwhile (and only one caller may be the probe);
// a call refused then gives its slot back at once, though its token is
// spent. A caller waiting for a token holds no slot. Every wait respects
// the caller's context.
//
// The breaker's clock is Config.Now; rate limits and bulkheads make real
// callers wait, in real time.
//
// A refused call is a *providers.Error, Class Retryable, Code
// providers.CodeCircuitOpen, wrapping an *OpenError that says since when
// the circuit is open. It was never sent, so it had no effect at the
// provider: retrying it is safe, a debit included. A call whose context
// ended while it waited for a token or a slot was not sent either; NotSent
// tells both apart from a call that may have reached the provider.
package protect

import (
	"time"
)

// Wait kinds, as CallWaited reports them.
const (
	WaitBulkhead = "bulkhead"
	WaitRate     = "rate"
)

// Observer is told what the guards do, for metrics. Endpoints are named as
// in Endpoints. Implementations must be safe for concurrent use and fast.
type Observer interface {
	// CircuitChanged reports a circuit opening (open true) or closing.
	CircuitChanged(endpoint string, open bool)
	// CallRefused reports a call the open circuit refused.
	CallRefused(endpoint string)
	// CallWaited reports a call that had to wait d for a rate token (kind
	// WaitRate) or a bulkhead slot (WaitBulkhead); calls that did not wait
	// are not reported.
	CallWaited(endpoint string, kind string, d time.Duration)
}

// NopObserver observes nothing.
type NopObserver struct{}

func (NopObserver) CircuitChanged(string, bool)              {}
func (NopObserver) CallRefused(string)                       {}
func (NopObserver) CallWaited(string, string, time.Duration) {}
