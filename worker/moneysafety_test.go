package worker_test

import (
	"context"
	"net/http/httptest"
	"regexp"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/kit"
	"github.com/coinsaga/coinsaga/providers"
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
	t.Logf("final states: %v; SUD saw %d of %d orders; %d pay replies lost", byState, len(sudStatus), n, e.calls.Count("pay/retryable")+e.calls.Count("pay_m/retryable"))
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
	t.Parallel()
	var offset atomic.Int64
	e := startEnv(t, func(c *worker.Config) {
		c.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	})
	e.sandbox.SetFault(sandbox.Fault{Endpoint: "mogs.pay", ErrorRate: 1})
	in := intent(events.ProviderMOGS, 40)
	ev := e.run(in, 20*time.Second)
	if ev.State != events.StateFailed {
		t.Fatalf("first run ended %s %+v, want failed (the cancel found no bill)", ev.State, ev.Error)
	}
	dl := e.waitDeadLetter(in.OutOrderID, 5*time.Second)

	e.sandbox.ClearFaults()
	offset.Store(int64(49 * time.Hour))
	e.sandbox.AdvanceClock(49 * time.Hour)
	callsBefore := e.calls.To("pay") + e.calls.To("cancelpay")
	e.jet.Replay(t, dl, in.OutOrderID+":replay:1")
	e.waitState(in.OutOrderID, events.StateNeedsAttention, 20*time.Second)
	last, _ := e.lastEvent(in.OutOrderID)
	if last.Error == nil || last.Error.Code != "bill_expired" {
		t.Fatalf("replay ended %s %+v, want needs_attention bill_expired", last.State, last.Error)
	}
	if n := e.calls.To("pay") + e.calls.To("cancelpay") - callsBefore; n != 0 {
		t.Errorf("the replay made %d pay or cancel calls, want none", n)
	}
	for _, b := range e.bills(in.Payment.OpenID) {
		t.Errorf("the wallet holds a bill for the order: %+v", b)
	}
}

// midasAccount is the wallet account of a Midas intent, as the worker
// builds it.
func midasAccount(in events.Intent) providers.Account {
	m := in.Payment.Midas
	return providers.Account{OpenID: in.Payment.OpenID, Midas: providers.MidasLogin{OpenKey: m.OpenKey, PF: m.PF, PFKey: m.PFKey,
		ZoneID: m.ZoneID, SessionType: m.SessionType, UserIP: m.UserIP, AccountType: m.AccountType}}
}

func TestAGiftDuringAMidasConfirmationDoesNotFakeAFailure(t *testing.T) {
	t.Parallel()
	e := startEnv(t, func(c *worker.Config) { c.ConfirmInterval, c.ConfirmTimeout = 100*time.Millisecond, 3*time.Second })
	// The debit shows in the balance only after a second; a gift lands
	// in the balance before that.
	e.sandbox.SetFault(sandbox.Fault{Endpoint: "midas.pay_m", VisibilityDelayMS: 1000})
	in := intent(events.ProviderMidas, 100)
	e.publishIntent(in)
	e.waitState(in.OutOrderID, events.StateDebited, 10*time.Second)
	gift := e.wallets()[events.ProviderMidas]
	if _, err := gift.Present(context.Background(), midasAccount(in), providers.Present{BillNo: "gift-" + in.OutOrderID, Amount: 500}); err != nil {
		t.Fatal(err)
	}
	ev := e.waitTerminal(10*time.Second, in.OutOrderID)[in.OutOrderID]
	if ev.State != events.StateCompleted {
		t.Fatalf("the order ended %s %+v: a gift turned a debit that happened into a compensation", ev.State, ev.Error)
	}
	charged := 0
	for _, b := range e.bills(in.Payment.OpenID) {
		if b.Kind == "pay" && !b.Cancelled {
			charged++
		}
	}
	if charged != 1 {
		t.Errorf("%d pay bills charged, want 1", charged)
	}
}

func TestA70501IsAdoptedOnlyIfTheOrderIsOurs(t *testing.T) {
	t.Parallel()
	e := startEnv(t)
	in := intent(events.ProviderMOGS, 30)
	// Another purchase took our out_order_id at SUD first: same id, another action.
	theirs := sud.CreateOrderRequest{OutOrderID: in.OutOrderID, MGID: in.MgID, RoomID: in.RoomID,
		Cmd: in.Cmd, FromUID: "someone-else", ToUID: in.ToUID, Value: in.Value, Payload: in.Payload}
	if _, err := e.sudClient().CreateOrder(context.Background(), theirs); err != nil {
		t.Fatal(err)
	}
	ev := e.run(in, 10*time.Second)
	if ev.State != events.StateFailed || ev.Error == nil || ev.Error.Code != "sud_order_conflict" {
		t.Fatalf("final %s %+v, want failed with sud_order_conflict", ev.State, ev.Error)
	}
	if dl := e.waitDeadLetter(in.OutOrderID, 5*time.Second); dl.Reason != events.ReasonConflict {
		t.Errorf("dead letter reason %q, want conflict", dl.Reason)
	}
	if b := e.bills(in.Payment.OpenID); len(b) != 0 {
		t.Errorf("bills %+v, want none: nothing is charged for someone else's order", b)
	}

	t.Run("our own order, found again after a lost reply, is adopted", func(t *testing.T) {
		mine := intent(events.ProviderMOGS, 30)
		req := sud.CreateOrderRequest{OutOrderID: mine.OutOrderID, MGID: mine.MgID, RoomID: mine.RoomID,
			Cmd: mine.Cmd, FromUID: mine.FromUID, ToUID: mine.ToUID, Value: mine.Value, Payload: mine.Payload}
		if _, err := e.sudClient().CreateOrder(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		e.publishIntent(mine)
		if ev := e.waitTerminal(10*time.Second, mine.OutOrderID)[mine.OutOrderID]; ev.State != events.StateCompleted {
			t.Fatalf("final %s %+v, want completed", ev.State, ev.Error)
		}
	})
}

func TestADeclineAfterAPayWhoseOutcomeWasLostIsCheckedFirst(t *testing.T) {
	t.Parallel()
	e := startEnv(t, func(c *worker.Config) {
		c.Retry = worker.RetryPolicy{MaxAttempts: 4, Initial: 300 * time.Millisecond, Max: 300 * time.Millisecond}
	})
	// The first pay times out at the provider's door (a 500: it may or may
	// not have charged); before the retry the player's coins are gone.
	e.sandbox.SetFault(sandbox.Fault{Endpoint: "mogs.pay", ErrorRate: 1})
	in := intent(events.ProviderMOGS, 70)
	e.publishIntent(in)
	kit.Eventually(t, 10*time.Second, "a pay attempted", func() bool { return e.calls.To("pay") > 0 })
	e.sandbox.ClearFaults()
	e.sandbox.SetAccount("mogs", sandbox.DefaultConfig().MOGSAppID, in.Payment.OpenID, 10, 0)
	e.waitTerminal(10*time.Second, in.OutOrderID)
	got := e.states(in.OutOrderID)
	if !slices.Contains(got, events.StateCompensating) || e.calls.To("cancelpay") == 0 {
		t.Fatalf("states %v with %d cancels: the decline after an unknown pay ended the order without checking", got, e.calls.To("cancelpay"))
	}
	last, _ := e.lastEvent(in.OutOrderID)
	if last.State != events.StateFailed || last.Error == nil || last.Error.Code != "insufficient_balance" {
		t.Errorf("final %s %+v, want failed insufficient_balance once the cancel found no bill", last.State, last.Error)
	}
}
