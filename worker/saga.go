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
// Accept, reject and replay are transitions too (decideAccept,
// decideReplay); the consumer only carries them out.
//
// The balance comes first because SUD runs the paid action on
// create_order and has no cancel: a player who cannot pay must never reach
// it. completed means both halves: the debit is confirmed and SUD reports
// EXECUTE_SUCCESS; an action that ends EXECUTE_FAIL is never left charged.
//
// Each step is two parts: run* makes the provider call (the only I/O), and
// the decide* function turns (order, reply) into the next order row. The
// decide functions are pure: everything they need is in their arguments, so
// the whole machine is tested without a network and reads top to bottom.
//
// Crash safety rests on three rules: every call reuses the idempotency key
// derived from the order (out_order_id for SUD, billNo for the wallet); the
// balance baseline and the bill's first use are committed before the pay is
// attempted, so a retried pay still confirms against the balance before
// the debit; and a step's outcome, the next step and the status event
// reporting it commit together.

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/protect"
	"github.com/coinsaga/coinsaga/providers/sud"
	"github.com/coinsaga/coinsaga/store"
)

// Step names: what the saga does next for an order. A terminal order keeps
// the step a replay resumes at.
const (
	StepBaseline = "baseline"
	StepOrder    = "order"
	StepPay      = "pay"
	StepConfirm  = "confirm"
	StepVerdict  = "verdict"
	StepCancel   = "cancel"
	StepDone     = "done"
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

// billLife is how long a bill_no may be trusted after its first use. The
// MOGS seed gives bills 48 hours (有效期是 48 小时), and providers.md assumes
// the same for Midas: after that a cancel answers "not found" whether or not
// the bill charged, and the same number may be taken as a new bill. One
// hour of margin covers clocks and the time between our record of the first
// use and the provider's.
const billLife = 47 * time.Hour

// billNoMax is the longest bill_no the wallets take (WeChat midas, whose
// field names MOGS shares: at most 63 of [0-9A-Za-z_-], no leading '_').
const billNoMax = 63

// billNo derives the wallet idempotency key from the order alone: at most
// 63 characters of [0-9A-Za-z_-], never starting with '_', and never the
// same for two orders or two generations of one order. A new generation
// starts only after a cancel confirmed the previous bill is void, so two
// bills of one order can never both be charged.
//
// The first bill of an order whose out_order_id has at most 62 characters
// and does not start with '_' is the out_order_id itself, which operators
// find in the providers' records at a glance. Every other bill is exactly
// 63 characters, so it can never equal one of those: 'b', the first 18
// characters of the out_order_id padded with '_', '-', and the 43
// characters of base64url(SHA-256(out_order_id, generation)). Two of those
// are equal only if SHA-256 collides.
func billNo(outOrderID string, generation int) string {
	if generation == 0 && len(outOrderID) < billNoMax && !strings.HasPrefix(outOrderID, "_") {
		return outOrderID
	}
	sum := sha256.Sum256([]byte("coinsaga bill\x00" + outOrderID + "\x00" + strconv.Itoa(generation)))
	head := outOrderID[:min(len(outOrderID), 18)]
	return "b" + head + strings.Repeat("_", 18-len(head)) + "-" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// billFirstUse is when o's current bill was first sent, or as early as it
// can have been: orders stored before FirstPayAt existed count from their
// creation.
func billFirstUse(o store.Order) time.Time {
	if !o.FirstPayAt.IsZero() {
		return o.FirstPayAt
	}
	return o.CreatedAt
}

// billYoung reports whether o's bill is surely still alive at now.
func billYoung(o store.Order, now time.Time) bool {
	return now.Sub(billFirstUse(o)) < billLife
}

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

// holdDelay is how long an order held by an open circuit waits before its
// step is tried again: a refused call costs nothing, and the breaker lets
// its probe through on its own schedule, so this only bounds how soon an
// order notices that the circuit closed.
const holdDelay = 3 * time.Second

// holding reports whether err is a call an open circuit refused, and the
// circuit has been open for less than the outage hold: the order then
// waits in its step without spending its retry budget, so that an outage
// that ends within the hold makes no dead letters. Past the hold, the
// step's usual rules apply.
func holding(err error, p policy) (time.Time, bool) {
	since, open := protect.OpenSince(err)
	return since, open && p.now.Sub(since) < p.outageHold
}

// hold keeps o at its step, due again after holdDelay, with its attempt
// count unchanged.
func hold(o store.Order, err error, since time.Time, p policy) outcome {
	o.NextRunAt = p.now.Add(holdDelay)
	o.ErrorCode, o.Error = string(providers.CodeOf(err)), err.Error()
	return outcome{next: o, held: true,
		detail: fmt.Sprintf("%s held: the provider's circuit has been open for %s; waiting without spending a retry", o.Step, p.now.Sub(since).Round(time.Second))}
}

// verdictInterval is the time between query_order polls of an action SUD
// has not decided yet: as often as the balance polls, but at least every
// 5 s, since SUD's actions take seconds, not minutes.
func (p policy) verdictInterval() time.Duration { return min(p.confirmInterval, 5*time.Second) }

// --- transitions shared by every step ---------------------------------------

// advance moves to the next step, due now, with a fresh attempt count.
func advance(o store.Order, state events.State, step string, now time.Time) store.Order {
	o.State, o.Step, o.Attempt, o.NextRunAt = string(state), step, 0, now
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
func stop(o store.Order, state events.State, resumeStep, code, msg string) store.Order {
	o.State, o.Step, o.NextRunAt = string(state), resumeStep, time.Time{}
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
func failAt(step string, err error) func(store.Order, string) outcome {
	return func(o store.Order, msg string) outcome {
		return outcome{next: stop(o, events.StateFailed, step, string(providers.CodeOf(err)), msg), detail: msg, dead: events.ReasonFailed}
	}
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
		return outcome{next: toPay(o, events.State(o.State), p.now), detail: detail}
	}
	return outcome{next: advance(o, events.State(o.State), StepOrder, p.now), detail: detail}
}

// toPay schedules the pay and notes the bill's first use, committed before
// the call (mustCommit), so that its age is known even if the reply is lost.
func toPay(o store.Order, state events.State, now time.Time) store.Order {
	o = advance(o, state, StepPay, now)
	if o.FirstPayAt.IsZero() {
		o.FirstPayAt = now
	}
	return o
}

// isDecline reports the business declines: final outcomes for the player,
// reported on the status topic, not dead letters.
func isDecline(c providers.Code) bool {
	switch c {
	case providers.CodeInsufficientBalance, providers.CodeLoginFailed, providers.CodeRiskControl:
		return true
	}
	return false
}

// --- step: order (SUD create_order) ----------------------------------------

// orderReply is what the order step learned from SUD.
type orderReply struct {
	orderID string
	status  string // the action's state when query_order was asked (70501), else ""
	// mismatch, when SUD answered 70501, names how the order SUD holds
	// under this out_order_id differs from ours; empty when it is ours.
	mismatch string
}

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

// sameOrder compares the order SUD holds under our out_order_id with the
// intent; it returns how they differ, or "" when SUD's is ours.
func sameOrder(in *events.Intent, q sud.Order) string {
	var diffs []string
	check := func(field, ours, theirs string) {
		if ours != theirs {
			diffs = append(diffs, fmt.Sprintf("%s %q (ours %q)", field, theirs, ours))
		}
	}
	check("mg_id", in.MgID, q.MgID)
	check("cmd", in.Cmd, q.Cmd)
	check("value", strconv.FormatInt(int64(in.Value), 10), strconv.FormatInt(q.Value, 10))
	check("from_uid", in.FromUID, q.FromUID)
	check("to_uid", in.ToUID, q.ToUID)
	return strings.Join(diffs, ", ")
}

// --- step: pay ----------------------------------------------------------

// decidePayBefore decides a pay that must not be made: SUD reported the
// action failed, or the bill is too old to trust. ok is false when the pay
// may go ahead.
func decidePayBefore(o store.Order, sudStatus string, p policy) (outcome, bool) {
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

// compensate starts the cancel of the order's bill, now.
func compensate(o store.Order, code, msg string, now time.Time) outcome {
	next := advance(o, events.StateCompensating, StepCancel, now)
	next.ErrorCode, next.Error = code, msg
	return outcome{next: next, detail: msg + "; compensating"}
}

// --- step: confirm (balance polling) -----------------------------------------

// debitVisible applies the documented confirmation rule to a balance read.
//
// MOGS: cost_sum has grown by at least the amount over the baseline. Gifts
// (present) add to balance and present_sums, never to cost_sum.
// Midas: the balance is no higher than the balance the pay reply reported
// (or, when the reply did not say, the baseline less the amount), plus any
// coins bought since the baseline (a rise in save_amt), plus any coins
// gifted since: gen_balance above what the baseline's gifted coins less
// the pay's gifted part left. Without that last term a gift received while
// the debit is confirmed would hide a debit that happened, and the order
// would be compensated: the item given and the coins refunded. The term
// cannot make a debit that did not happen look visible: without it the
// balance is the baseline plus exactly those rises.
//
// Concurrent debits by the same player can only make these true sooner
// (the baseline cannot tell them apart), and gifted coins expiring (gen_expire)
// likewise; then the deadline or the provider's records decide.
func debitVisible(o store.Order, b providers.Balance) bool {
	if o.Provider == events.ProviderMOGS {
		return b.CostSum >= o.BaselineCostSum+o.Amount
	}
	expected := o.BaselineBalance - o.Amount
	if o.HasPayBalance {
		expected = o.PayBalance
	}
	gifted := max(0, b.GenBalance-(o.BaselineGenBalance-o.UsedGenAmt))
	return b.Balance <= expected+(b.SaveAmt-o.BaselineSaveAmt)+gifted
}

// pollSince is the oldest reading that may answer o's confirmation poll
// due now (see readings). The first poll, at once after the pay, and the
// last, at the deadline, read afresh: the one must not see a balance from
// before the pay, the other decides a compensation. Any other poll may use
// a reading taken after the one that scheduled it.
func pollSince(o store.Order, p policy) time.Time {
	if o.Attempt == 0 || !p.now.Before(o.DebitedAt.Add(p.confirmTimeout)) {
		return p.now
	}
	return o.NextRunAt.Add(-p.confirmInterval)
}

// confirmView is the part of o that pollSince and decideConfirm read,
// and nothing else: what a waiting order keeps in memory so that a poll
// that sees nothing needs neither its row nor its intent. A field either
// of them starts reading belongs here too
// (TestConfirmViewDecidesAsTheWholeRow checks that they agree).
func confirmView(o store.Order) store.Order {
	return store.Order{
		OutOrderID: o.OutOrderID, Provider: o.Provider, Amount: o.Amount, BillNo: o.BillNo,
		State: o.State, Step: o.Step, Attempt: o.Attempt, NextRunAt: o.NextRunAt,
		ErrorCode: o.ErrorCode, Error: o.Error, Version: o.Version,
		BaselineBalance: o.BaselineBalance, BaselineSaveAmt: o.BaselineSaveAmt, BaselineCostSum: o.BaselineCostSum,
		BaselineGenBalance: o.BaselineGenBalance, UsedGenAmt: o.UsedGenAmt,
		HasPayBalance: o.HasPayBalance, PayBalance: o.PayBalance, DebitedAt: o.DebitedAt,
	}
}

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
		next := advance(o, events.State(o.State), StepVerdict, p.now)
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

// --- running a step ----------------------------------------------------------

// OrderService is SUD's order API as the saga uses it.
type OrderService interface {
	CreateOrder(ctx context.Context, req sud.CreateOrderRequest) (sud.CreateOrderReply, error)
	QueryOrder(ctx context.Context, outOrderID string) (sud.Order, error)
}

// saga runs steps against the providers.
type saga struct {
	sud      OrderService
	wallets  map[string]providers.Wallet
	readings *readings // confirmation reads shared by an account's orders
	verdicts *verdicts // SUD's notified verdicts, not yet read by their orders
}

// run makes the provider call for o's step and decides the outcome.
func (s *saga) run(ctx context.Context, o store.Order, in *events.Intent, p policy) (outcome, error) {
	switch o.Step {
	case StepOrder:
		r, err := s.createOrder(ctx, in)
		return decideOrder(o, r, err, p), nil
	case StepVerdict:
		status, err := s.verdict(ctx, o)
		return decideVerdict(o, status, err, p), nil
	}
	w, ok := s.wallets[o.Provider]
	if !ok {
		// Configuration, not the world, said no: stop where we are so that
		// a replay finishes the order once the provider is configured.
		msg := fmt.Sprintf("no %s wallet is configured", o.Provider)
		return outcome{next: stop(o, events.StateFailed, o.Step, codeNotConfigured, msg), detail: msg, dead: events.ReasonFailed}, nil
	}
	acct := account(in)
	switch o.Step {
	case StepBaseline:
		bal, err := w.Balance(ctx, acct)
		return decideBaseline(o, bal, err, p), nil
	case StepPay:
		if out, stopped := decidePayBefore(o, s.verdicts.peek(o.OutOrderID, o.SudStatus), p); stopped {
			return out, nil
		}
		r, err := w.Debit(ctx, acct, providers.Debit{BillNo: o.BillNo, Amount: o.Amount, PayItem: payItem(in)})
		return decidePay(o, r, err, p), nil
	case StepConfirm:
		r, err := s.readBalance(ctx, w, o, acct, p)
		return decideConfirm(o, r, err, p), nil
	case StepCancel:
		r, err := w.Cancel(ctx, acct, providers.Cancel{BillNo: o.BillNo, Amount: o.Amount})
		return decideCancel(o, r, err, p), nil
	}
	return outcome{}, fmt.Errorf("order %s: unknown step %q", o.OutOrderID, o.Step)
}

// verdict learns SUD's state of o's action: from what the order knows
// already or SUD notified, when that is final, else from query_order.
func (s *saga) verdict(ctx context.Context, o store.Order) (string, error) {
	if st := s.verdicts.peek(o.OutOrderID, o.SudStatus); st == sud.StatusExecuteSuccess || st == sud.StatusExecuteFail {
		return st, nil
	}
	q, err := s.sud.QueryOrder(ctx, o.OutOrderID)
	if err != nil {
		return "", fmt.Errorf("query_order %s: %w", o.OutOrderID, err)
	}
	return q.Status, nil
}

// confirm makes o's confirmation poll for the account acct: what run does
// for the confirm step, for a waiting order that keeps its account beside
// it (see waitingOrders). It also returns the reading and the read's
// error, so that a poll made on confirmView(o) can be decided again on the
// whole row; err is set only when no poll could be made at all.
func (s *saga) confirm(ctx context.Context, o store.Order, acct providers.Account, p policy) (out outcome, r balanceReading, readErr, err error) {
	w, ok := s.wallets[o.Provider]
	if !ok {
		return outcome{}, balanceReading{}, nil, fmt.Errorf("order %s: no %s wallet is configured", o.OutOrderID, o.Provider)
	}
	r, readErr = s.readBalance(ctx, w, o, acct, p)
	return decideConfirm(o, r, readErr, p), r, readErr, nil
}

// readBalance reads acct's balance for o's poll, or takes a reading
// another of the account's polls made recently enough (see readings).
func (s *saga) readBalance(ctx context.Context, w providers.Wallet, o store.Order, acct providers.Account, p policy) (balanceReading, error) {
	return s.readings.get(ctx, keyOf(o.Provider, acct), pollSince(o, p), p.now,
		func(ctx context.Context) (providers.Balance, error) { return w.Balance(ctx, acct) })
}

// createOrder asks SUD for the order; when SUD already has it (a retry
// after a lost reply, or a replay) it asks query_order which order that
// is, never guessing, and whether it is ours.
func (s *saga) createOrder(ctx context.Context, in *events.Intent) (orderReply, error) {
	reply, err := s.sud.CreateOrder(ctx, sud.CreateOrderRequest{
		OutOrderID: in.OutOrderID, OutGroupID: in.OutGroupID, MGID: in.MgID, RoomID: in.RoomID,
		Cmd: in.Cmd, FromUID: in.FromUID, ToUID: in.ToUID, Value: in.Value, Payload: in.Payload,
	})
	if err != nil {
		return orderReply{}, fmt.Errorf("create_order %s: %w", in.OutOrderID, err)
	}
	if reply.Class != providers.AlreadyDone && reply.OrderID != "" {
		return orderReply{orderID: reply.OrderID}, nil
	}
	q, err := s.sud.QueryOrder(ctx, in.OutOrderID)
	if err != nil {
		if providers.CodeOf(err) == providers.CodeNotFound {
			// SUD said the order exists, then that it does not: a
			// transient inconsistency, not an answer.
			err = &providers.Error{Provider: "sud", Endpoint: "query_order", Class: providers.Retryable, Code: providers.CodeBusy, Msg: "order reported existing but not found", Err: err}
		}
		return orderReply{}, fmt.Errorf("query_order %s: %w", in.OutOrderID, err)
	}
	r := orderReply{orderID: q.OrderID, status: q.Status}
	if reply.Class == providers.AlreadyDone {
		r.mismatch = sameOrder(in, q)
	}
	return r, nil
}

// account maps an intent's payment block to the wallet's account.
func account(in *events.Intent) providers.Account {
	a := providers.Account{OpenID: in.Payment.OpenID}
	if m := in.Payment.MOGS; m != nil {
		a.MOGS = providers.MOGSLogin{JSCode: m.JSCode, AppPlat: m.AppPlat, OSPlatID: m.OSPlatID, SessionKey: m.SessionKey, PayItem: m.PayItem}
	}
	if m := in.Payment.Midas; m != nil {
		a.Midas = providers.MidasLogin{OpenKey: m.OpenKey, PF: m.PF, PFKey: m.PFKey, ZoneID: m.ZoneID,
			SessionType: m.SessionType, UserIP: m.UserIP, AccountType: m.AccountType, PayItem: m.PayItem}
	}
	return a
}

func payItem(in *events.Intent) string {
	if m := in.Payment.MOGS; m != nil && m.PayItem != "" {
		return m.PayItem
	}
	if m := in.Payment.Midas; m != nil && m.PayItem != "" {
		return m.PayItem
	}
	return in.Cmd
}
