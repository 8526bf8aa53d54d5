package worker

// The order saga, as one explicit state machine.
//
//	step      provider call                     on success                  on failure
//	--------  --------------------------------  --------------------------  ----------------------------------------------
//	baseline  balance read before the order     order (balance covers it)   short of coins, declined: failed
//	order     SUD create_order (+ query_order)  pay                         final: failed | 70501 not ours: conflict
//	pay       pay / pay_m with the bill_no      confirm (debited)           declined: failed (cancel first if an
//	                                                                        earlier attempt's outcome is unknown)
//	                                                                        | unknown: cancel | bill too old: attention
//	confirm   balance poll until the debit      verdict                     deadline passed: cancel
//	          shows, or confirm-timeout
//	verdict   SUD query_order until the action  completed (EXECUTE_SUCCESS) EXECUTE_FAIL: cancel | undecided after
//	          is decided                                                    sud-execute-timeout: needs_attention
//	cancel    cancelpay / cancel_pay_m          compensated                 not found, bill young: failed
//	                                                                        | not found, bill old, or else: attention
//
// Accept, reject, replay and SUD's notification are transitions too
// (decideAccept, decideRepeat, decideNotified), and so is the choice of
// when a step's outcome must be durable (commitPolicy): the consumer and
// the scheduler only carry them out.
//
// The balance comes first because SUD runs the paid action on
// create_order and has no cancel: a player who cannot pay must never reach
// it. completed means both halves: the debit is confirmed and SUD reports
// EXECUTE_SUCCESS; an action that ends EXECUTE_FAIL is never left charged.
//
// Each step is two parts: saga.run (steps.go) makes the provider call, the
// only I/O, and a decide function here turns (order, reply, policy) into
// the next order row. The decide functions are pure, so the whole machine
// is tested without a network and reads top to bottom.
//
// Crash safety rests on three rules: every call reuses the idempotency key
// derived from the order (out_order_id for SUD, billNo for the wallet); the
// balance baseline and the bill's first use are committed before the pay is
// attempted, so a retried pay still confirms against the balance before
// the debit; and a step's outcome, the next step and the status event
// reporting it commit together.
//
// rules.go holds the predicates the decisions apply, outcome.go what they
// return, bills.go the bill numbers.

import (
	"fmt"
	"time"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/orderstate"
	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/protect"
	"github.com/coinsaga/coinsaga/providers/sud"
	"github.com/coinsaga/coinsaga/store"
)

// Step is what the saga does next for an order; a terminal order keeps
// the step a replay resumes at. The store keeps it as a name it does not
// interpret (internal/orderstate).
type Step = orderstate.Step

const (
	StepBaseline Step = "baseline"
	StepOrder    Step = "order"
	StepPay      Step = "pay"
	StepConfirm  Step = "confirm"
	StepVerdict  Step = "verdict"
	StepCancel   Step = "cancel"
	StepDone     Step = "done"
)

// Steps returns every step in saga order: the one list of steps.
func Steps() []Step {
	return []Step{StepBaseline, StepOrder, StepPay, StepConfirm, StepVerdict, StepCancel, StepDone}
}

// --- step: baseline (balance before anything else) ------------------------

// decideBaseline records the balance the debit is later confirmed against,
// and stops a player who cannot pay before SUD ever sees the order.
func decideBaseline(o store.Order, bal providers.Balance, err error, p policy) outcome {
	switch providers.ClassOf(err) {
	case providers.OK, providers.AlreadyDone:
	case providers.Retryable:
		return retryOrGiveUp(o, err, p.retry, p, failAt(StepBaseline, err))
	default:
		// Nothing was charged yet: a decline is the player's outcome,
		// anything else needs an operator.
		msg := "balance: " + err.Error()
		out := outcome{next: stop(o, events.StateFailed, StepBaseline, string(providers.CodeOf(err)), msg), detail: msg}
		if !isDecline(providers.CodeOf(err)) {
			out.dead = events.ReasonFailed
		}
		return out
	}
	detail := fmt.Sprintf("baseline balance %d (gifted %d), cost_sum %d, save_amt %d", bal.Balance, bal.GenBalance, bal.CostSum, bal.SaveAmt)
	if bal.Balance < o.Amount {
		msg := fmt.Sprintf("balance %d is below the amount %d; SUD was not asked", bal.Balance, o.Amount)
		return outcome{next: stop(o, events.StateFailed, StepBaseline, string(providers.CodeInsufficientBalance), msg), detail: detail + "; " + msg}
	}
	o.HasBaseline = true
	o.BaselineBalance, o.BaselineSaveAmt, o.BaselineCostSum, o.BaselineGenBalance = bal.Balance, bal.SaveAmt, bal.CostSum, bal.GenBalance
	if o.FirstPayAt.IsZero() {
		// A bill never sent (or voided by a cancel, which moved the
		// generation on) takes the generation's number; one that was sent
		// keeps its number until a cancel voids it.
		o.BillNo = billNo(o.OutOrderID, o.PayGeneration)
	}
	if o.SudOrderID != "" {
		// A replay: SUD has the order (and may have run it) already.
		return outcome{next: toPay(o, o.State, p.now), detail: detail}
	}
	return outcome{next: advance(o, o.State, StepOrder, p.now), detail: detail}
}

// --- step: order (SUD create_order) ----------------------------------------

// decideOrder: SUD now knows the order (orderID non-empty) or it failed.
func decideOrder(o store.Order, r orderReply, err error, p policy) outcome {
	switch providers.ClassOf(err) {
	case providers.OK, providers.AlreadyDone:
		if r.mismatch != "" {
			// Another order holds our out_order_id at SUD: adopting it would
			// charge our player for someone else's action.
			msg := "create_order: out_order_id already names a different SUD order: " + r.mismatch
			return outcome{next: stop(o, events.StateFailed, StepOrder, codeSUDOrderConflict, msg), detail: msg, dead: events.ReasonConflict}
		}
		o.SudOrderID = r.orderID
		if o.OrderedAt.IsZero() {
			o.OrderedAt = p.now
		}
		detail := "SUD order " + r.orderID
		if r.status != "" {
			o.SudStatus = r.status
			detail += ", " + r.status
		}
		if r.status == sud.StatusExecuteFail {
			msg := "SUD reports the action failed (EXECUTE_FAIL) before the pay; nothing charged"
			return outcome{next: stop(o, events.StateFailed, StepOrder, codeSUDExecuteFailed, msg), detail: detail + "; " + msg, dead: events.ReasonFailed}
		}
		return outcome{next: toPay(o, events.StateOrdered, p.now), detail: detail}
	case providers.Retryable:
		return retryOrGiveUp(o, err, p.retry, p, failAt(StepOrder, err))
	}
	// Final: SUD refused the order; nothing was charged.
	reason := events.ReasonFailed
	if providers.CodeOf(err) == providers.CodeParamError {
		reason = events.ReasonRejected // SUD 10002: the intent itself is wrong
	}
	msg := "create_order: " + err.Error()
	return outcome{next: stop(o, events.StateFailed, StepOrder, string(providers.CodeOf(err)), msg), detail: msg, dead: reason}
}

// --- step: pay ----------------------------------------------------------

// decidePayBefore stops a pay that must not be made: SUD reported the
// action failed, or the bill is too old to trust (false: pay).
func decidePayBefore(o store.Order, sudStatus string, p policy) (outcome, bool) {
	if sudStatus == sud.StatusExecuteFail && o.PayUnknown {
		// An earlier attempt of this pay lost its answer and may have
		// charged: "nothing charged" is not known, so the cancel with the
		// same bill_no finds out and undoes it.
		o.SudStatus = sudStatus
		return compensate(o, codeSUDExecuteFailed, "SUD reports the action failed (EXECUTE_FAIL) before a retried pay; an earlier attempt's outcome is unknown", p.now), true
	}
	if sudStatus == sud.StatusExecuteFail {
		o.SudStatus = sudStatus
		msg := "SUD reports the action failed (EXECUTE_FAIL) before the pay; nothing charged"
		return outcome{next: stop(o, events.StateFailed, StepPay, codeSUDExecuteFailed, msg), detail: msg, dead: events.ReasonFailed}, true
	}
	if !billYoung(o, p.now) {
		// After 48 h the wallet may take the same number as a new bill:
		// paying now could charge a second time for a bill that did.
		msg := fmt.Sprintf("bill %s was first used %s ago, more than %s: an operator must check it with the provider before any new pay",
			o.BillNo, p.now.Sub(billFirstUse(o)).Round(time.Minute), billLife)
		return outcome{next: stop(o, events.StateNeedsAttention, StepPay, codeBillExpired, msg), detail: msg, dead: events.ReasonNeedsAttention}, true
	}
	return outcome{}, false
}

func decidePay(o store.Order, r providers.DebitReply, err error, p policy) outcome {
	switch providers.ClassOf(err) {
	case providers.OK, providers.AlreadyDone:
		o.HasPayBalance, o.PayBalance, o.UsedGenAmt = r.BalanceKnown, r.Balance, r.UsedGenAmt
		o.DebitedAt, o.PayUnknown = p.now, false
		detail := fmt.Sprintf("pay %s of %d: %s", o.BillNo, o.Amount, r.Class)
		if r.BalanceKnown {
			detail += fmt.Sprintf(", balance %d", r.Balance)
		}
		return outcome{next: advance(o, events.StateDebited, StepConfirm, p.now), detail: detail}
	case providers.Retryable:
		// The attempt may have charged (unless a guard refused it before
		// it was sent); out of retries, we cannot know whether the debit
		// happened: the cancel with the same bill_no finds out and undoes it.
		if !protect.NotSent(err) {
			o.PayUnknown = true
		}
		return retryOrGiveUp(o, err, p.retry, p, func(o store.Order, msg string) outcome {
			return compensate(o, string(providers.CodeOf(err)), msg, p.now)
		})
	}
	code := providers.CodeOf(err)
	msg := fmt.Sprintf("pay %s: %v", o.BillNo, err)
	if o.PayUnknown && (isDecline(code) || code == providers.CodeParamError) {
		// An earlier attempt of this pay lost its answer and may have
		// charged; a decline now says nothing about that one.
		return compensate(o, string(code), msg+"; an earlier attempt's outcome is unknown", p.now)
	}
	switch {
	case isDecline(code):
		// Resume at the baseline: a replay after a top-up reads a new one.
		o.HasBaseline = false
		return outcome{next: stop(o, events.StateFailed, StepBaseline, string(code), msg), detail: msg,
			declinedAfterSUD: code == providers.CodeInsufficientBalance && o.SudOrderID != ""}
	case code == providers.CodeParamError:
		o.HasBaseline = false
		return outcome{next: stop(o, events.StateFailed, StepBaseline, string(code), msg), detail: msg, dead: events.ReasonRejected}
	}
	// A final answer we do not understand says nothing certain about the
	// coins: make sure with a cancel.
	return compensate(o, string(code), msg, p.now)
}

// --- step: confirm (balance polling) -----------------------------------------

// decideConfirm applies the rule to a balance reading. Time is the
// reading's: the next poll is one interval after it was taken (which lines
// up the polls of one account, see readings), and only a reading taken at
// or after the deadline can time the debit out. A visible debit moves on
// to SUD's verdict, due at once.
func decideConfirm(o store.Order, r balanceReading, err error, p policy) outcome {
	source := ""
	if r.shared {
		source = fmt.Sprintf(" (balance read %s earlier for another order)", max(0, p.now.Sub(r.at)).Round(time.Millisecond))
	}
	if err == nil && debitVisible(o, r.Balance) {
		next := advance(o, o.State, StepVerdict, p.now)
		next.PayBalance, next.HasPayBalance = r.Balance.Balance, true
		return outcome{next: next, detail: fmt.Sprintf("debit confirmed by poll %d, balance %d%s", o.Attempt+1, r.Balance.Balance, source)}
	}
	deadline := o.DebitedAt.Add(p.confirmTimeout)
	if _, held := holding(err, p); held && !r.at.Before(deadline) {
		// The balance cannot be read while its circuit is open: no
		// reading says the debit failed to show, so nothing is undone.
		deadline = p.now.Add(p.confirmInterval)
	}
	if !r.at.Before(deadline) {
		msg := fmt.Sprintf("debit of %d under %s not visible in the balance within %s", o.Amount, o.BillNo, p.confirmTimeout)
		return compensate(o, codeConfirmTimeout, msg, p.now)
	}
	nextPoll := r.at.Add(p.confirmInterval)
	if !nextPoll.After(p.now) {
		nextPoll = p.now.Add(p.confirmInterval) // never due again at once on the same reading
	}
	if nextPoll.After(deadline) {
		nextPoll = deadline
	}
	o.Attempt++
	o.NextRunAt = nextPoll
	detail := fmt.Sprintf("poll %d: debit not visible yet%s", o.Attempt, source)
	if err != nil {
		// A failed read is one more poll that saw nothing; the deadline
		// decides, not the read's error.
		o.ErrorCode, o.Error = string(providers.CodeOf(err)), err.Error()
		detail = fmt.Sprintf("poll %d: %v", o.Attempt, err)
	}
	return outcome{next: o, detail: detail}
}

// --- step: verdict (SUD's outcome of the action) -----------------------------

// decideVerdict applies SUD's state of the action (status, from
// query_order or its notification) to a confirmed debit. An action still
// undecided when the execute timeout has passed since SUD took the order
// goes to an operator: the coins are charged and the action may yet run,
// so neither a refund nor a completion would be more than a guess.
func decideVerdict(o store.Order, status string, err error, p policy) outcome {
	if err == nil {
		o.SudStatus = status
	}
	switch {
	case err == nil && status == sud.StatusExecuteSuccess:
		next := advance(o, events.StateCompleted, StepDone, p.now)
		next.NextRunAt = time.Time{}
		return outcome{next: next, detail: "SUD executed the action (EXECUTE_SUCCESS)"}
	case err == nil && status == sud.StatusExecuteFail:
		return compensate(o, codeSUDExecuteFailed, "SUD reports the action failed (EXECUTE_FAIL) after the debit", p.now)
	}
	orderedAt := o.OrderedAt
	if orderedAt.IsZero() {
		orderedAt = o.DebitedAt
	}
	deadline := orderedAt.Add(p.sudExecuteTimeout)
	what := "SUD has not decided the action yet (" + status + ")"
	if err != nil {
		what = fmt.Sprintf("query_order: %v", err)
	}
	if since, held := holding(err, p); held && !p.now.Before(deadline) {
		return hold(o, err, since, p)
	}
	if !p.now.Before(deadline) {
		msg := fmt.Sprintf("%s, %s after SUD took the order; the debit stands: check the action in the game before a replay or a refund", what, p.sudExecuteTimeout)
		return outcome{next: stop(o, events.StateNeedsAttention, StepVerdict, codeSUDExecuteTimeout, msg), detail: msg, dead: events.ReasonNeedsAttention}
	}
	o.Attempt++
	o.NextRunAt = p.now.Add(p.verdictInterval())
	if o.NextRunAt.After(deadline) {
		o.NextRunAt = deadline
	}
	if err != nil {
		o.ErrorCode, o.Error = string(providers.CodeOf(err)), err.Error()
	}
	return outcome{next: o, detail: fmt.Sprintf("verdict poll %d: %s", o.Attempt, what)}
}

// --- step: cancel (compensation) ------------------------------------------

func decideCancel(o store.Order, r providers.CancelReply, err error, p policy) outcome {
	cause := o.ErrorCode
	if cause == "" {
		cause = "compensated"
	}
	switch providers.ClassOf(err) {
	case providers.OK, providers.AlreadyDone:
		// The bill is void; a replay pays again under the next bill_no.
		msg := o.Error
		o.PayGeneration++
		o.HasBaseline, o.HasPayBalance, o.PayUnknown = false, false, false
		o.FirstPayAt = time.Time{} // the next baseline names the next bill
		next := stop(o, events.StateCompensated, StepBaseline, cause, msg)
		return outcome{next: next, detail: fmt.Sprintf("cancel %s: %s", o.BillNo, r.Class), dead: events.ReasonFailed}
	case providers.Retryable:
		return retryOrGiveUp(o, err, p.cancelRetry, p, func(o store.Order, msg string) outcome {
			return outcome{next: stop(o, events.StateNeedsAttention, StepCancel, string(providers.CodeOf(err)), msg), detail: msg, dead: events.ReasonNeedsAttention}
		})
	}
	if providers.CodeOf(err) == providers.CodeNotFound {
		if !billYoung(o, p.now) {
			// An expired bill is "not found" whether or not it charged.
			msg := fmt.Sprintf("%s; cancel %s: bill not found, but it was first used %s ago (bills live 48 h): it may have charged; check with the provider",
				o.Error, o.BillNo, p.now.Sub(billFirstUse(o)).Round(time.Minute))
			return outcome{next: stop(o, events.StateNeedsAttention, StepCancel, codeBillExpired, msg), detail: msg, dead: events.ReasonNeedsAttention}
		}
		// The provider has no such bill: nothing was charged. The same
		// bill_no stays valid for a replay.
		msg := fmt.Sprintf("%s; cancel %s: bill not found, nothing was charged", o.Error, o.BillNo)
		o.HasBaseline, o.PayUnknown = false, false
		return outcome{next: stop(o, events.StateFailed, StepBaseline, cause, msg), detail: msg, dead: events.ReasonFailed}
	}
	msg := fmt.Sprintf("cancel %s: %v", o.BillNo, err)
	return outcome{next: stop(o, events.StateNeedsAttention, StepCancel, string(providers.CodeOf(err)), msg), detail: msg, dead: events.ReasonNeedsAttention}
}

// --- accept, reject, replay, notification -------------------------------------

// decideAccept makes the new order o (as its intent describes it) accepted
// and due now, or, when invalid says why it cannot run, rejected for good
// with a dead letter. A rejected order resumes at the baseline if a replay
// ever finds its intent valid.
func decideAccept(o store.Order, invalid error, now time.Time) outcome {
	if invalid != nil {
		o.State, o.Step = events.StateRejected, StepBaseline
		o.ErrorCode, o.Error = events.CodeInvalidIntent, invalid.Error()
		return outcome{next: o, detail: "rejected: " + invalid.Error(), dead: events.ReasonRejected}
	}
	o.State, o.Step, o.NextRunAt = events.StateAccepted, StepBaseline, now
	return outcome{next: o, detail: "accepted from " + o.IntentSubject}
}

// decideRepeat decides an intent for the stored order o (sameBody: its
// content is o's; replay: an operator replayed it). A replay resumes a
// stopped order at its step, due now with a fresh attempt count; a
// rejected one whose intent is still invalid is rejected again.
func decideRepeat(o store.Order, sameBody, replay bool, validate func() error, now time.Time) (repeat, outcome) {
	if !sameBody {
		return repeatConflict, outcome{dead: events.ReasonConflict,
			detail: fmt.Sprintf("out_order_id %s already names a different intent (order state %s)", o.OutOrderID, o.State)}
	}
	switch st := o.State; {
	case !replay:
		return repeatAbsorbed, outcome{detail: "duplicate intent absorbed"}
	case st == events.StateCompleted:
		return repeatAbsorbed, outcome{detail: "replay of a completed order: already done, nothing charged"}
	case !st.Terminal():
		return repeatAbsorbed, outcome{detail: "replay of an order still in progress: nothing to do"}
	}
	resumed := o
	resumed.NextRunAt, resumed.Attempt = now, 0
	out := outcome{detail: fmt.Sprintf("replayed: resuming at step %s", o.Step)}
	if o.State == events.StateRejected {
		if verr := validate(); verr != nil {
			resumed.NextRunAt = time.Time{}
			resumed.Seq++
			resumed.Error = verr.Error()
			out = outcome{detail: "replayed, still rejected: " + verr.Error(), dead: events.ReasonRejected}
		}
	}
	out.next = resumed
	return repeatResume, out
}

// decideNotified applies SUD's notification of a final status to o: an
// order waiting in the verdict step for a later poll asks at once. It is
// false when the notification changes nothing (the order is not waiting
// for it, or is about to ask anyway).
func decideNotified(o store.Order, status string, now time.Time) (outcome, bool) {
	if o.Step != StepVerdict || o.NextRunAt.IsZero() || !o.NextRunAt.After(now) {
		return outcome{}, false
	}
	o.NextRunAt = now
	return outcome{next: o, detail: "SUD notified " + status + "; asking at once"}, true
}

// --- when outcomes become durable ---------------------------------------------

// commitPolicy decides what follows the steps run so far, the order now
// being o; onlyPolls when they were confirmation polls that saw nothing.
//
// Such polls change nothing a restart needs (see waitingOrders). Other
// steps must be durable before a call that moves money (so that a retry
// after a crash confirms against the recorded baseline, and a cancel is
// never lost), before any wait, at the end of the saga, and on drain;
// otherwise they chain in memory and commit together: a crash before the
// commit only repeats calls whose idempotency keys make them harmless
// (create_order, a balance read, a pay with the same bill_no).
func commitPolicy(o store.Order, onlyPolls bool, now time.Time, draining bool) then {
	switch {
	case onlyPolls && o.NextRunAt.After(now):
		return thenWait
	case o.Step == StepPay || o.Step == StepCancel || o.NextRunAt.IsZero() || o.NextRunAt.After(now) || draining:
		return thenCommit
	}
	return thenRun
}

// afterCommit decides what follows a commit that stored the order as o.
func afterCommit(o store.Order, now time.Time, draining bool) then {
	switch {
	case o.Step == StepConfirm && !o.NextRunAt.IsZero():
		return thenWait
	case !o.NextRunAt.IsZero() && !o.NextRunAt.After(now) && !draining:
		return thenRun
	}
	return thenStored
}
