package worker_test

import (
	"context"
	"net/http/httptest"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/providers/sandbox"
	"github.com/coinsaga/coinsaga/providers/sud"
	"github.com/coinsaga/coinsaga/worker"
)

// billRule is the wallets' rule for a bill number (WeChat midas, which
// MOGS shares its field names with): at most 63 of [0-9A-Za-z_-], no
// leading '_'.
var billRule = regexp.MustCompile(`^[0-9A-Za-z-][0-9A-Za-z_-]{0,62}$`)

// notifyWorker serves SUD's order notifications to e's worker, as serve
// does on its HTTP listener, and points the sandbox's SUD at it.
func notifyWorker(e *env) {
	d := sandbox.DefaultConfig()
	h := sud.NotifyHandler(sud.NotifyConfig{AppID: d.SUDAppID, AppSecret: d.SUDAppSecret},
		func(ctx context.Context, n sud.Notification) error {
			return e.worker.SUDNotified(ctx, n.Order.OutOrderID, n.Order.Status)
		})
	srv := httptest.NewServer(h)
	e.t.Cleanup(srv.Close)
	e.sandbox.SetSUDNotifyURL(srv.URL)
}

// TestNoFreeItemsNoLiveBillForAFailedAction runs 800 mixed intents against
// providers as strict as the real ones: every 10th player cannot pay, SUD
// fails 30% of the actions after 1.5 s, and 15% of pay replies are lost.
func TestNoFreeItemsNoLiveBillForAFailedAction(t *testing.T) {
	if testing.Short() {
		t.Skip("800 orders through the sandbox")
	}
	const n = 800
	e := startEnv(t, func(c *worker.Config) {
		c.ConfirmInterval, c.ConfirmTimeout, c.SUDExecuteTimeout = 100*time.Millisecond, 5*time.Second, 30*time.Second
		c.Retry = worker.RetryPolicy{MaxAttempts: 6, Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond}
	})
	notifyWorker(e)
	e.sandbox.SetFault(sandbox.Fault{Endpoint: "sud.create_order", ExecuteFailRate: 0.3, ExecuteDelayMS: 1500})
	e.sandbox.SetFault(sandbox.Fault{Endpoint: "mogs.pay", DropReplyRate: 0.15})
	e.sandbox.SetFault(sandbox.Fault{Endpoint: "midas.pay_m", DropReplyRate: 0.15})

	d := sandbox.DefaultConfig()
	ins := make([]events.Intent, n)
	ids := make([]string, n)
	poor := map[string]bool{}
	start := map[string]int64{}
	for i := range ins {
		in := intent([]string{events.ProviderMOGS, events.ProviderMidas}[i%2], int64(10+i%90))
		ins[i], ids[i] = in, in.OutOrderID
		appID := d.MOGSAppID
		if in.Payment.Provider == events.ProviderMidas {
			appID = d.MidasAppID
		}
		balance := int64(1000)
		if i%10 == 9 {
			balance = in.Payment.Amount - 1 // cannot pay
			poor[in.OutOrderID] = true
		}
		e.sandbox.SetAccount(in.Payment.Provider, appID, in.Payment.OpenID, balance, 0)
		start[in.Payment.OpenID] = balance
	}
	for _, in := range ins {
		e.publishIntent(in)
	}
	final := e.waitTerminal(3*time.Minute, ids...)

	sudStatus := map[string]string{}
	for _, o := range e.sandbox.SUDOrders() {
		sudStatus[o.OutOrderID] = o.Status
	}
	byState := map[events.State]int{}
	for _, in := range ins {
		id := in.OutOrderID
		ev := final[id]
		byState[ev.State]++
		live := 0
		var charged int64
		for _, b := range e.bills(in.Payment.OpenID) {
			if !billRule.MatchString(b.BillNo) {
				t.Errorf("order %s: bill_no %q breaks the wallets' rule", id, b.BillNo)
			}
			if b.Kind == "pay" && !b.Cancelled {
				live++
				charged += b.Amt
			}
		}
		status, reachedSUD := sudStatus[id]
		switch {
		case poor[id] && reachedSUD:
			t.Errorf("order %s: a player who cannot pay reached SUD (%s): a free item", id, status)
		case poor[id] && (ev.State != events.StateFailed || ev.Error == nil || ev.Error.Code != "insufficient_balance"):
			t.Errorf("order %s: a player who cannot pay ended %s %+v, want failed insufficient_balance", id, ev.State, ev.Error)
		case status == sud.StatusExecuteFail && (ev.State == events.StateCompleted || live > 0):
			t.Errorf("order %s: SUD failed the action, yet the order is %s with %d live bill(s)", id, ev.State, live)
		case ev.State == events.StateCompleted && (status != sud.StatusExecuteSuccess || live != 1 || charged != in.Payment.Amount):
			t.Errorf("order %s: completed with SUD %q and %d live bill(s) of %d coins, want EXECUTE_SUCCESS and one of %d", id, status, live, charged, in.Payment.Amount)
		case ev.State != events.StateCompleted && live != 0:
			t.Errorf("order %s: %s but %d bill(s) stay charged", id, ev.State, live)
		}
		appID := d.MOGSAppID
		if in.Payment.Provider == events.ProviderMidas {
			appID = d.MidasAppID
		}
		acct, _ := e.sandbox.Account(in.Payment.Provider, appID, in.Payment.OpenID)
		if acct.Balance != start[in.Payment.OpenID]-charged {
			t.Errorf("order %s: balance %d, want %d less the %d charged", id, acct.Balance, start[in.Payment.OpenID], charged)
		}
	}
	t.Logf("final states: %v; SUD saw %d of %d orders; %d pay replies lost", byState, len(sudStatus), n, e.calls.count("pay/retryable")+e.calls.count("pay_m/retryable"))
	for _, want := range []events.State{events.StateCompleted, events.StateFailed, events.StateCompensated} {
		if byState[want] == 0 {
			t.Errorf("no order ended %s: the faults did not drive that path", want)
		}
	}
}

// TestTheReplayOfAnOrderWhoseBillExpiredNeitherChargesNorRefunds ends an
// order failed with its bill sent (the pay kept failing, the cancel found
// no bill), moves the worker's and the wallet's clocks 49 hours on, and
// replays it: the wallet would now take the same bill_no as a new bill,
// so the order must go to an operator without a pay or a cancel.
func TestTheReplayOfAnOrderWhoseBillExpiredNeitherChargesNorRefunds(t *testing.T) {
	var offset atomic.Int64
	e := startEnv(t, func(c *worker.Config) {
		c.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	})
	e.sandbox.SetFault(sandbox.Fault{Endpoint: "mogs.pay", ErrorRate: 1})
	in := intent(events.ProviderMOGS, 40)
	e.publishIntent(in)
	ev := e.waitTerminal(20*time.Second, in.OutOrderID)[in.OutOrderID]
	if ev.State != events.StateFailed {
		t.Fatalf("first run ended %s %+v, want failed (the cancel found no bill)", ev.State, ev.Error)
	}
	dl := e.waitDeadLetter(in.OutOrderID, 5*time.Second)

	e.sandbox.ClearFaults()
	offset.Store(int64(49 * time.Hour))
	e.sandbox.AdvanceClock(49 * time.Hour)
	callsBefore := e.calls.calls("pay") + e.calls.calls("cancelpay")
	m := nats.NewMsg(dl.OriginalSubject)
	m.Data = dl.Data
	m.Header.Set(events.HeaderMsgID, in.OutOrderID+":replay:1")
	m.Header.Set(events.HeaderReplay, "1")
	if _, err := e.js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	e.waitState(in.OutOrderID, events.StateNeedsAttention, 20*time.Second)
	last, _ := e.lastEvent(in.OutOrderID)
	if last.Error == nil || last.Error.Code != "bill_expired" {
		t.Fatalf("replay ended %s %+v, want needs_attention bill_expired", last.State, last.Error)
	}
	if n := e.calls.calls("pay") + e.calls.calls("cancelpay") - callsBefore; n != 0 {
		t.Errorf("the replay made %d pay or cancel calls, want none", n)
	}
	for _, b := range e.bills(in.Payment.OpenID) {
		t.Errorf("the wallet holds a bill for the order: %+v", b)
	}
}
