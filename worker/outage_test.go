package worker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/kit"
	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/protect"
	"github.com/coinsaga/coinsaga/providers/sandbox"
	"github.com/coinsaga/coinsaga/worker"
)

// TestAnOutageThatEndsMakesNoDeadLetters takes MOGS pay down completely
// (every call busy) while orders flow, then brings it back: with the
// circuit breakers in front of the clients, the pays during the outage
// are a few probes, not one per order and retry, and every order
// completes with one debit once the outage ends.
func TestAnOutageThatEndsMakesNoDeadLetters(t *testing.T) {
	const n = 200
	guards := protect.Config{Breaker: protect.BreakerConfig{CoolDown: 300 * time.Millisecond, MaxCoolDown: time.Second}}
	e := startEnv(t, func(c *worker.Config) {
		c.Retry = worker.RetryPolicy{MaxAttempts: 3, Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond}
		guarded := map[string]providers.Wallet{}
		for name, w := range c.Wallets {
			guarded[name] = protect.Wallet(w, guards)
		}
		c.Wallets, c.SUD = guarded, protect.Orders(c.SUD, guards)
	})
	e.sandbox.SetFault(sandbox.Fault{Endpoint: "mogs.pay", BusyRate: 1})
	ids := make([]string, n)
	for i := range ids {
		in := intent(events.ProviderMOGS, 10)
		ids[i] = in.OutOrderID
		e.publishIntent(in)
	}
	// The outage lasts until every order is held at its pay or has made
	// its one failed attempt, and some probes have failed.
	kit.EventuallyOn(t, nil, 30*time.Second, "orders held", func() bool {
		return e.calls.Count("pay/retryable") >= 5 && e.heldAtPay(ids) >= n-5
	}, func() string {
		return fmt.Sprintf("%d pay failures, %d held", e.calls.Count("pay/retryable"), e.heldAtPay(ids))
	})
	time.Sleep(2 * time.Second) // let the outage go on for a while: it is the subject, not an event to wait for
	during := e.calls.To("pay")
	e.sandbox.ClearFaults()

	final := e.waitTerminal(time.Minute, ids...)
	for _, id := range ids {
		if ev := final[id]; ev.State != events.StateCompleted {
			t.Errorf("order %s ended %s %+v after an outage that ended", id, ev.State, ev.Error)
		}
	}
	if during > 20 {
		t.Errorf("%d pay calls reached MOGS during the outage; want a few probes, not one per order", during)
	}
	for _, dl := range e.deadLetters() {
		t.Errorf("dead letter %s %s: %s", dl.OutOrderID, dl.Reason, dl.Error)
	}
	t.Logf("%d pay calls reached MOGS during the outage, %d orders", during, n)
}

// heldAtPay counts the orders whose last history line is a hold at the pay.
func (e *env) heldAtPay(ids []string) int {
	e.t.Helper()
	n := 0
	for _, id := range ids {
		o, err := e.store.Get(e.t.Context(), id)
		if err == nil && o.Step == "pay" && o.ErrorCode == string(providers.CodeCircuitOpen) {
			n++
		}
	}
	return n
}
