package worker

// What saga.go's decide functions take and return, and the row edits
// they share.

import (
	"fmt"
	"time"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/store"
)

// Error codes the saga itself assigns (provider failures keep their code).
const (
	codeConfirmTimeout    = "confirm_timeout"
	codeRetriesExhausted  = "retries_exhausted"
	codeNotConfigured     = "provider_not_configured"
	codeSUDExecuteFailed  = "sud_execute_failed"
	codeSUDExecuteTimeout = "sud_execute_timeout"
	codeSUDOrderConflict  = "sud_order_conflict"
	codeBillExpired       = "bill_expired"
)

// outcome is what one step decided: the next order row plus what to
// report. The caller turns it into one store transition.
type outcome struct {
	next   store.Order
	detail string        // history line
	dead   events.Reason // non-empty: publish a dead letter
	// declinedAfterSUD: the pay was declined for want of coins after SUD
	// had the order (a player spending elsewhere since the baseline): the
	// action may have run unpaid. Counted, as the one case the baseline
	// cannot catch.
	declinedAfterSUD bool
	// held: an open circuit refused the step's call; the order waits in
	// its step without spending a retry (see holding).
	held bool
}

// policy is what the decide functions need to know besides the reply.
type policy struct {
	now               time.Time
	retry             RetryPolicy // baseline, order, pay
	cancelRetry       RetryPolicy // cancel
	confirmInterval   time.Duration
	confirmTimeout    time.Duration
	sudExecuteTimeout time.Duration
	outageHold        time.Duration
}

// hold keeps o at its step, due again after holdDelay, with its attempt
// count unchanged.
func hold(o store.Order, err error, since time.Time, p policy) outcome {
	o.NextRunAt = p.now.Add(holdDelay)
	o.ErrorCode, o.Error = string(providers.CodeOf(err)), err.Error()
	return outcome{next: o, held: true,
		detail: fmt.Sprintf("%s held: the provider's circuit has been open for %s; waiting without spending a retry", o.Step, p.now.Sub(since).Round(time.Second))}
}

// repeat is what an intent does whose out_order_id is already an order.
type repeat int

const (
	repeatAbsorbed repeat = iota // a duplicate, or a replay with nothing to do
	repeatConflict               // another body under the id: a dead letter; the order is untouched
	repeatResume                 // a replay of a stopped order: the outcome resumes it
)

// then is what follows the steps an order ran since its row was stored.
type then int

const (
	thenRun    then = iota // the next step, at once, in memory
	thenWait               // polls that saw nothing: wait in memory, storing nothing
	thenCommit             // store the steps before anything else
	thenStored             // stored, waiting in the store for its next run
)

// The row edits every decide function shares.

// advance moves to the next step, due now, with a fresh attempt count.
func advance(o store.Order, state events.State, step Step, now time.Time) store.Order {
	o.State, o.Step, o.Attempt, o.NextRunAt = state, step, 0, now
	o.ErrorCode, o.Error = "", ""
	return o
}

// retryLater keeps the step and schedules another attempt.
func retryLater(o store.Order, err error, at time.Time) store.Order {
	o.Attempt++
	o.NextRunAt = at
	o.ErrorCode, o.Error = string(providers.CodeOf(err)), err.Error()
	return o
}

// stop ends the saga in a terminal state; resumeStep is where a replay
// picks up.
func stop(o store.Order, state events.State, resumeStep Step, code, msg string) store.Order {
	o.State, o.Step, o.NextRunAt = state, resumeStep, time.Time{}
	o.ErrorCode, o.Error = code, msg
	return o
}

// retryOrGiveUp applies the step's retry budget to a retryable failure.
func retryOrGiveUp(o store.Order, err error, rp RetryPolicy, p policy, giveUp func(store.Order, string) outcome) outcome {
	if since, ok := holding(err, p); ok {
		return hold(o, err, since, p)
	}
	now := p.now
	if o.Attempt+1 < rp.attempts() {
		return outcome{next: retryLater(o, err, now.Add(rp.Delay(o.Attempt))),
			detail: fmt.Sprintf("%s attempt %d: %v; retrying", o.Step, o.Attempt+1, err)}
	}
	return giveUp(o, fmt.Sprintf("%s: %s after %d attempts: %v", o.Step, codeRetriesExhausted, o.Attempt+1, err))
}

// failAt ends o failed at step with a dead letter for an operator.
func failAt(step Step, err error) func(store.Order, string) outcome {
	return func(o store.Order, msg string) outcome {
		return outcome{next: stop(o, events.StateFailed, step, string(providers.CodeOf(err)), msg), detail: msg, dead: events.ReasonFailed}
	}
}

// toPay schedules the pay and notes the bill's first use, committed before
// the call (commitPolicy), so that its age is known even if the reply is lost.
func toPay(o store.Order, state events.State, now time.Time) store.Order {
	o = advance(o, state, StepPay, now)
	if o.FirstPayAt.IsZero() {
		o.FirstPayAt = now
	}
	return o
}

// compensate starts the cancel of the order's bill, now.
func compensate(o store.Order, code, msg string, now time.Time) outcome {
	next := advance(o, events.StateCompensating, StepCancel, now)
	next.ErrorCode, next.Error = code, msg
	return outcome{next: next, detail: msg + "; compensating"}
}
