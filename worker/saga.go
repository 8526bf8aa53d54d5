package worker

// The order saga, as one explicit state machine.
//
//	step      provider call                     on success            on failure
//	--------  --------------------------------  --------------------  -------------------------------------------
//	order     SUD create_order (+ query_order)  baseline              final: failed | retries out: failed
//	baseline  balance read before the debit     pay                   declined: failed | else failed
//	pay       pay / pay_m with the bill_no      confirm (debited)     declined: failed | unknown: cancel
//	confirm   balance poll until the debit      completed             deadline passed: cancel
//	          shows, or confirm-timeout
//	cancel    cancelpay / cancel_pay_m          compensated           not found: failed | else needs_attention
//
// Each step is two parts: run* makes the provider call (the only I/O), and
// the decide* function turns (order, reply) into the next order row. The
// decide functions are pure: everything they need is in their arguments, so
// the whole machine is tested without a network and reads top to bottom.
//
// Crash safety rests on three rules: every call reuses the idempotency key
// derived from the order (out_order_id for SUD, billNo for the wallet); the
// balance baseline is committed before the pay is attempted, so a retried
// pay still confirms against the balance before the debit; and a step's
// outcome, the next step and the status event reporting it commit together.

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/sud"
	"github.com/coinsaga/coinsaga/store"
)

// Step names: what the saga does next for an order. A terminal order keeps
// the step a replay resumes at.
const (
	StepOrder    = "order"
	StepBaseline = "baseline"
	StepPay      = "pay"
	StepConfirm  = "confirm"
	StepCancel   = "cancel"
	StepDone     = "done"
)

// Error codes the saga itself assigns (provider failures keep their code).
const (
	codeConfirmTimeout   = "confirm_timeout"
	codeRetriesExhausted = "retries_exhausted"
	codeNotConfigured    = "provider_not_configured"
)

// billNo derives the wallet idempotency key from the order alone. A new
// generation starts only after a cancel confirmed the previous bill is
// void, so two bills of one order can never both be charged. The "." keeps
// the mapping one-to-one: it cannot occur in an out_order_id.
func billNo(outOrderID string, generation int) string {
	if generation == 0 {
		return outOrderID
	}
	return outOrderID + "." + strconv.Itoa(generation)
}

// outcome is what one step decided: the next order row plus what to
// report. The caller turns it into one store transition.
type outcome struct {
	next   store.Order
	detail string        // history line
	dead   events.Reason // non-empty: publish a dead letter
}

// policy is what the decide functions need to know besides the reply.
type policy struct {
	now             time.Time
	retry           RetryPolicy // order, baseline, pay
	cancelRetry     RetryPolicy // cancel
	confirmInterval time.Duration
	confirmTimeout  time.Duration
}

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
func retryOrGiveUp(o store.Order, err error, rp RetryPolicy, now time.Time, giveUp func(store.Order, string) outcome) outcome {
	if o.Attempt+1 < rp.attempts() {
		return outcome{next: retryLater(o, err, now.Add(rp.Delay(o.Attempt))),
			detail: fmt.Sprintf("%s attempt %d: %v; retrying", o.Step, o.Attempt+1, err)}
	}
	return giveUp(o, fmt.Sprintf("%s: %s after %d attempts: %v", o.Step, codeRetriesExhausted, o.Attempt+1, err))
}

// --- step: order (SUD create_order) ----------------------------------------

// decideOrder: SUD now knows the order (orderID non-empty) or it failed.
func decideOrder(o store.Order, orderID string, err error, p policy) outcome {
	switch providers.ClassOf(err) {
	case providers.OK, providers.AlreadyDone:
		o.SudOrderID = orderID
		return outcome{next: advance(o, events.StateOrdered, StepBaseline, p.now), detail: "SUD order " + orderID}
	case providers.Retryable:
		return retryOrGiveUp(o, err, p.retry, p.now, func(o store.Order, msg string) outcome {
			return outcome{next: stop(o, events.StateFailed, StepOrder, string(providers.CodeOf(err)), msg), detail: msg, dead: events.ReasonFailed}
		})
	}
	// Final: SUD refused the order; nothing was charged.
	reason := events.ReasonFailed
	if providers.CodeOf(err) == providers.CodeParamError {
		reason = events.ReasonRejected // SUD 10002: the intent itself is wrong
	}
	msg := "create_order: " + err.Error()
	return outcome{next: stop(o, events.StateFailed, StepOrder, string(providers.CodeOf(err)), msg), detail: msg, dead: reason}
}

// --- step: baseline (balance before the debit) ------------------------------

func decideBaseline(o store.Order, bal providers.Balance, err error, p policy) outcome {
	switch providers.ClassOf(err) {
	case providers.OK, providers.AlreadyDone:
		o.HasBaseline = true
		o.BaselineBalance, o.BaselineSaveAmt, o.BaselineCostSum = bal.Balance, bal.SaveAmt, bal.CostSum
		o.BillNo = billNo(o.OutOrderID, o.PayGeneration)
		next := advance(o, events.State(o.State), StepPay, p.now)
		return outcome{next: next, detail: fmt.Sprintf("baseline balance %d, cost_sum %d, save_amt %d", bal.Balance, bal.CostSum, bal.SaveAmt)}
	case providers.Retryable:
		return retryOrGiveUp(o, err, p.retry, p.now, func(o store.Order, msg string) outcome {
			return outcome{next: stop(o, events.StateFailed, StepBaseline, string(providers.CodeOf(err)), msg), detail: msg, dead: events.ReasonFailed}
		})
	}
	// Nothing was charged yet: a decline is the player's outcome, anything
	// else needs an operator.
	msg := "balance: " + err.Error()
	out := outcome{next: stop(o, events.StateFailed, StepBaseline, string(providers.CodeOf(err)), msg), detail: msg}
	if !isDecline(providers.CodeOf(err)) {
		out.dead = events.ReasonFailed
	}
	return out
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

// --- step: pay ----------------------------------------------------------

func decidePay(o store.Order, r providers.DebitReply, err error, p policy) outcome {
	switch providers.ClassOf(err) {
	case providers.OK, providers.AlreadyDone:
		o.HasPayBalance, o.PayBalance, o.UsedGenAmt = r.BalanceKnown, r.Balance, r.UsedGenAmt
		o.DebitedAt = p.now
		detail := fmt.Sprintf("pay %s of %d: %s", o.BillNo, o.Amount, r.Class)
		if r.BalanceKnown {
			detail += fmt.Sprintf(", balance %d", r.Balance)
		}
		return outcome{next: advance(o, events.StateDebited, StepConfirm, p.now), detail: detail}
	case providers.Retryable:
		// Out of retries, we cannot know whether the debit happened: the
		// cancel with the same bill_no finds out and undoes it.
		return retryOrGiveUp(o, err, p.retry, p.now, func(o store.Order, msg string) outcome {
			return compensate(o, string(providers.CodeOf(err)), msg, p.now)
		})
	}
	code := providers.CodeOf(err)
	msg := fmt.Sprintf("pay %s: %v", o.BillNo, err)
	switch {
	case isDecline(code):
		// Resume at the baseline: a replay after a top-up reads a new one.
		o.HasBaseline = false
		return outcome{next: stop(o, events.StateFailed, StepBaseline, string(code), msg), detail: msg}
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
// MOGS: cost_sum has grown by at least the amount over the baseline.
// Midas: the balance is no higher than the balance the pay reply reported
// (or, when the reply did not say, the baseline less the amount), plus any
// coins bought since the baseline (a rise in save_amt).
//
// Concurrent debits by the same player can only make these true sooner,
// and a gift received meanwhile only later (then the deadline compensates).
func debitVisible(o store.Order, b providers.Balance) bool {
	if o.Provider == events.ProviderMOGS {
		return b.CostSum >= o.BaselineCostSum+o.Amount
	}
	expected := o.BaselineBalance - o.Amount
	if o.HasPayBalance {
		expected = o.PayBalance
	}
	return b.Balance <= expected+(b.SaveAmt-o.BaselineSaveAmt)
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
		HasPayBalance: o.HasPayBalance, PayBalance: o.PayBalance, DebitedAt: o.DebitedAt,
	}
}

// decideConfirm applies the rule to a balance reading. Time is the
// reading's: the next poll is one interval after it was taken (which lines
// up the polls of one account, see readings), and only a reading taken at
// or after the deadline can time the debit out.
func decideConfirm(o store.Order, r balanceReading, err error, p policy) outcome {
	source := ""
	if r.shared {
		source = fmt.Sprintf(" (balance read %s earlier for another order)", max(0, p.now.Sub(r.at)).Round(time.Millisecond))
	}
	if err == nil && debitVisible(o, r.Balance) {
		next := advance(o, events.StateCompleted, StepDone, p.now)
		next.NextRunAt = time.Time{}
		next.PayBalance, next.HasPayBalance = r.Balance.Balance, true
		return outcome{next: next, detail: fmt.Sprintf("debit confirmed by poll %d, balance %d%s", o.Attempt+1, r.Balance.Balance, source)}
	}
	deadline := o.DebitedAt.Add(p.confirmTimeout)
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
		o.HasBaseline, o.HasPayBalance = false, false
		next := stop(o, events.StateCompensated, StepBaseline, cause, msg)
		return outcome{next: next, detail: fmt.Sprintf("cancel %s: %s", o.BillNo, r.Class), dead: events.ReasonFailed}
	case providers.Retryable:
		return retryOrGiveUp(o, err, p.cancelRetry, p.now, func(o store.Order, msg string) outcome {
			return outcome{next: stop(o, events.StateNeedsAttention, StepCancel, string(providers.CodeOf(err)), msg), detail: msg, dead: events.ReasonNeedsAttention}
		})
	}
	if providers.CodeOf(err) == providers.CodeNotFound {
		// The provider has no such bill: nothing was charged. The same
		// bill_no stays valid for a replay.
		msg := fmt.Sprintf("%s; cancel %s: bill not found, nothing was charged", o.Error, o.BillNo)
		o.HasBaseline = false
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
}

// run makes the provider call for o's step and decides the outcome.
func (s *saga) run(ctx context.Context, o store.Order, in *events.Intent, p policy) (outcome, error) {
	switch o.Step {
	case StepOrder:
		id, err := s.createOrder(ctx, in)
		return decideOrder(o, id, err, p), nil
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
// after a lost reply, or a replay) it asks query_order which order that is,
// never guessing.
func (s *saga) createOrder(ctx context.Context, in *events.Intent) (string, error) {
	reply, err := s.sud.CreateOrder(ctx, sud.CreateOrderRequest{
		OutOrderID: in.OutOrderID, OutGroupID: in.OutGroupID, MGID: in.MgID, RoomID: in.RoomID,
		Cmd: in.Cmd, FromUID: in.FromUID, ToUID: in.ToUID, Value: in.Value, Payload: in.Payload,
	})
	if err != nil {
		return "", fmt.Errorf("create_order %s: %w", in.OutOrderID, err)
	}
	if reply.Class != providers.AlreadyDone && reply.OrderID != "" {
		return reply.OrderID, nil
	}
	q, err := s.sud.QueryOrder(ctx, in.OutOrderID)
	if err != nil {
		if providers.CodeOf(err) == providers.CodeNotFound {
			// SUD said the order exists, then that it does not: a
			// transient inconsistency, not an answer.
			err = &providers.Error{Provider: "sud", Endpoint: "query_order", Class: providers.Retryable, Code: providers.CodeBusy, Msg: "order reported existing but not found", Err: err}
		}
		return "", fmt.Errorf("query_order %s: %w", in.OutOrderID, err)
	}
	return q.OrderID, nil
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
