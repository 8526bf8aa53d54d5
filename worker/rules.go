package worker

// The rules saga.go's decide functions apply: when a call is held by an
// open circuit, what counts as a decline, when a debit shows in a
// balance, and how fresh a shared reading must be. Pure, like them.

import (
	"time"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/protect"
	"github.com/coinsaga/coinsaga/store"
)

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

// verdictInterval is the time between query_order polls of an action SUD
// has not decided yet: as often as the balance polls, but at least every
// 5 s, since SUD's actions take seconds, not minutes.
func (p policy) verdictInterval() time.Duration { return min(p.confirmInterval, 5*time.Second) }

// isDecline reports the business declines: final outcomes for the player,
// reported on the status topic, not dead letters.
func isDecline(c providers.Code) bool {
	switch c {
	case providers.CodeInsufficientBalance, providers.CodeLoginFailed, providers.CodeRiskControl:
		return true
	}
	return false
}

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
