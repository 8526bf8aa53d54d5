package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/kit"
	"github.com/coinsaga/coinsaga/providers/sandbox"
	"github.com/coinsaga/coinsaga/store"
	"github.com/coinsaga/coinsaga/worker"
)

func TestThousandMixedIntentsAllCompleteWithOneDebitEach(t *testing.T) {
	e := startEnv(t, func(c *worker.Config) { c.ConfirmTimeout = 30 * time.Second })
	games := []struct {
		mgID, cmd string
		value     int32
		payload   string
	}{
		{"1468180338417074177", "specify_dice_roll", 100, `{"point":6,"seq":1}`},
		{"1472142747708284929", "buy_role", 50, `{"role_id":3}`},
		{"1559736844916183041", "gift", 4, ``},
		{"1704460412809043970", "paid_events_20", 300, `{"point":12,"quality":3}`},
		{"1461228379255603251", "add_score", 100, ``}, // not in the catalog: generic checks
	}
	const n = 1000
	ids := make([]string, 0, n)
	amounts := map[string]int64{}
	for i := 0; i < n; i++ {
		provider := events.ProviderMOGS
		if i%2 == 1 {
			provider = events.ProviderMidas
		}
		in := intent(provider, int64(1+i%97))
		g := games[i%len(games)]
		in.MgID, in.Cmd, in.Value, in.Payload = g.mgID, g.cmd, g.value, nil
		if g.payload != "" {
			in.Payload = []byte(g.payload)
		}
		in.RoomID = fmt.Sprintf("room%d", i%7)
		e.publishIntent(in)
		ids = append(ids, in.OutOrderID)
		amounts[in.Payment.OpenID] = in.Payment.Amount
	}
	final := e.waitTerminal(2*time.Minute, ids...)
	for id, ev := range final {
		if ev.State != events.StateCompleted {
			t.Errorf("order %s ended %s (%+v), want completed", id, ev.State, ev.Error)
		}
	}
	// Exactly one uncancelled pay per order, of its amount.
	pays := map[string][]sandbox.Bill{}
	for _, b := range e.sandbox.Bills() {
		if b.Kind == "pay" && !b.Cancelled {
			pays[b.OpenID] = append(pays[b.OpenID], b)
		}
	}
	if len(pays) != n {
		t.Errorf("%d players were charged, want %d", len(pays), n)
	}
	for openid, amt := range amounts {
		bs := pays[openid]
		if len(bs) != 1 || bs[0].Amt != amt {
			t.Errorf("player %s: pays %+v, want one of %d", openid, bs, amt)
		}
	}
	// One pay call per order, no more: a step never runs twice on the
	// same version of an order (no faults here, so no retries either).
	if got := e.calls.Count("pay/ok") + e.calls.Count("pay/already_done") + e.calls.Count("pay_m/ok") + e.calls.Count("pay_m/already_done"); got != n {
		t.Errorf("%d pay calls for %d orders", got, n)
	}
	for _, id := range ids[:20] {
		if got := e.states(id); !slices.Equal(got, []events.State{events.StateAccepted, events.StateOrdered, events.StateDebited, events.StateCompleted}) {
			t.Errorf("order %s went %v, want accepted, ordered, debited, completed", id, got)
		}
	}
}

func TestSUDParamErrorFailsWithoutPay(t *testing.T) {
	t.Parallel()
	// SUD knows a rule our catalog does not (say, SUD updated a game
	// first): validation passes, SUD answers 10002.
	empty, err := events.LoadCatalog(strings.NewReader(emptyCatalog))
	if err != nil {
		t.Fatal(err)
	}
	e := startEnv(t, func(c *worker.Config) { c.Catalog = empty })
	in := intent(events.ProviderMOGS, 10)
	in.MgID, in.Cmd, in.Payload = "1472142747708284929", "buy_role", []byte(`{"role_id":99}`)
	ev := e.run(in, 10*time.Second)
	if ev.State != events.StateFailed || ev.Error == nil || ev.Error.Code != "param_error" {
		t.Fatalf("final event %+v, want failed with param_error", ev)
	}
	if dl := e.waitDeadLetter(in.OutOrderID, 5*time.Second); dl.Reason != events.ReasonRejected {
		t.Errorf("dead letter reason %q, want rejected", dl.Reason)
	}
	if b := e.bills(in.Payment.OpenID); len(b) != 0 {
		t.Errorf("bills %+v, want none", b)
	}
}

func TestInsufficientBalanceFailsWithNothingCharged(t *testing.T) {
	t.Parallel()
	e := startEnv(t)
	in := intent(events.ProviderMidas, 500)
	e.sandbox.SetAccount("midas", sandbox.DefaultConfig().MidasAppID, in.Payment.OpenID, 100, 0)
	ev := e.run(in, 10*time.Second)
	if ev.State != events.StateFailed || ev.Error == nil || ev.Error.Code != "insufficient_balance" {
		t.Fatalf("final event %+v, want failed with insufficient_balance", ev)
	}
	if b := e.bills(in.Payment.OpenID); len(b) != 0 {
		t.Errorf("bills %+v, want none", b)
	}
	for _, o := range e.sandbox.SUDOrders() {
		if o.OutOrderID == in.OutOrderID {
			t.Errorf("SUD saw the order of a player who cannot pay (it runs the action on create_order): %+v", o)
		}
	}
	for _, dl := range e.deadLetters() {
		if dl.OutOrderID == in.OutOrderID {
			t.Errorf("a business decline must not be dead-lettered: %+v", dl)
		}
	}
}

func TestDebitInvisiblePastConfirmTimeoutIsCompensated(t *testing.T) {
	t.Parallel()
	e := startEnv(t, func(c *worker.Config) { c.ConfirmTimeout = 300 * time.Millisecond })
	e.sandbox.SetFault(sandbox.Fault{Endpoint: "mogs.pay", VisibilityDelayMS: 60_000})
	in := intent(events.ProviderMOGS, 70)
	ev := e.run(in, 10*time.Second)
	if ev.State != events.StateCompensated || ev.Error == nil || ev.Error.Code != "confirm_timeout" {
		t.Fatalf("final event %+v, want compensated after confirm_timeout", ev)
	}
	bills := e.bills(in.Payment.OpenID)
	if len(bills) != 1 || !bills[0].Cancelled {
		t.Fatalf("bills %+v, want the one pay, cancelled", bills)
	}
	acct, _ := e.sandbox.Account("mogs", sandbox.DefaultConfig().MOGSAppID, in.Payment.OpenID)
	if acct.Balance != sandbox.DefaultConfig().InitialBalance {
		t.Errorf("balance %d after compensation, want the initial %d", acct.Balance, sandbox.DefaultConfig().InitialBalance)
	}
	if got := e.states(in.OutOrderID); !slices.Equal(got, []events.State{events.StateAccepted, events.StateOrdered,
		events.StateDebited, events.StateCompensating, events.StateCompensated}) {
		t.Errorf("states %v", got)
	}
	if dl := e.waitDeadLetter(in.OutOrderID, 5*time.Second); dl.Reason != events.ReasonFailed || dl.State != "compensated" {
		t.Errorf("dead letter %+v, want reason failed in state compensated", dl)
	}
}

func TestDroppedPayRepliesStillCompleteWithOneDebit(t *testing.T) {
	t.Parallel()
	// Half the pay replies are lost after the debit took effect; each
	// retry reuses the bill_no, so every order is charged exactly once.
	e := startEnv(t, func(c *worker.Config) {
		c.Retry = worker.RetryPolicy{MaxAttempts: 12, Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond}
	})
	e.sandbox.SetFault(sandbox.Fault{Endpoint: "midas.pay_m", DropReplyRate: 0.5})
	e.sandbox.SetFault(sandbox.Fault{Endpoint: "mogs.pay", DropReplyRate: 0.5})
	var ids []string
	players := map[string]int64{}
	for i := 0; i < 20; i++ {
		provider := []string{events.ProviderMOGS, events.ProviderMidas}[i%2]
		in := intent(provider, int64(10+i))
		e.publishIntent(in)
		ids = append(ids, in.OutOrderID)
		players[in.Payment.OpenID] = in.Payment.Amount
	}
	for id, ev := range e.waitTerminal(30*time.Second, ids...) {
		if ev.State != events.StateCompleted {
			t.Errorf("order %s ended %s %+v, want completed", id, ev.State, ev.Error)
		}
	}
	if e.calls.Count("pay/retryable")+e.calls.Count("pay_m/retryable") == 0 {
		t.Fatal("no pay reply was dropped: the test proved nothing")
	}
	for openid, amt := range players {
		bills := e.bills(openid)
		if len(bills) != 1 || bills[0].Amt != amt || bills[0].Cancelled {
			t.Errorf("player %s bills %+v, want one uncancelled pay of %d", openid, bills, amt)
		}
	}
}

func TestPayRetriesExhausted(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		fault     sandbox.Fault
		wantState events.State
		wantBills int
	}{
		{"a provider busy on every pay: the cancel finds no bill, so the order failed with nothing charged",
			sandbox.Fault{Endpoint: "mogs.pay", BusyRate: 1}, events.StateFailed, 0},
		{"every pay reply lost: the cancel voids the debit, so the order is compensated",
			sandbox.Fault{Endpoint: "mogs.pay", DropReplyRate: 1}, events.StateCompensated, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startEnv(t)
			e.sandbox.SetFault(tt.fault)
			in := intent(events.ProviderMOGS, 25)
			ev := e.run(in, 10*time.Second)
			if ev.State != tt.wantState {
				t.Fatalf("final %s %+v, want %s", ev.State, ev.Error, tt.wantState)
			}
			bills := e.bills(in.Payment.OpenID)
			if len(bills) != tt.wantBills {
				t.Fatalf("bills %+v, want %d", bills, tt.wantBills)
			}
			for _, b := range bills {
				if !b.Cancelled {
					t.Errorf("bill %s left charged for an order that did not complete", b.BillNo)
				}
			}
			if dl := e.waitDeadLetter(in.OutOrderID, 5*time.Second); dl.Reason != events.ReasonFailed {
				t.Errorf("dead letter reason %q, want failed", dl.Reason)
			}
		})
	}
}

func TestDuplicateIntentMakesOneOrder(t *testing.T) {
	t.Parallel()
	e := startEnv(t)
	in := intent(events.ProviderMOGS, 30)
	data, _ := json.Marshal(in)
	subject := e.subjects.Intent(in.MgID, in.RoomID)
	// Different message ids get past JetStream's de-duplication, as a
	// resend after the duplicate window would.
	e.publish(subject, data, "first")
	e.publish(subject, data, "second")
	e.waitTerminal(10*time.Second, in.OutOrderID)
	e.publish(subject, data, "third-after-completion")
	good := intent(events.ProviderMOGS, 1)
	e.publishIntent(good) // when this one is done, the third copy was consumed before it
	e.waitTerminal(10*time.Second, good.OutOrderID)
	if got := e.states(in.OutOrderID); !slices.Equal(got, []events.State{events.StateAccepted, events.StateOrdered, events.StateDebited, events.StateCompleted}) {
		t.Errorf("states %v, want one run of the saga", got)
	}
	if bills := e.bills(in.Payment.OpenID); len(bills) != 1 {
		t.Errorf("bills %+v, want one", bills)
	}
}

func TestConflictingIntentIsDeadLetteredAndTheOriginalUntouched(t *testing.T) {
	t.Parallel()
	e := startEnv(t)
	in := intent(events.ProviderMOGS, 40)
	e.publishIntent(in)
	e.waitTerminal(10*time.Second, in.OutOrderID)
	other := in
	other.Payment.Amount = 4000
	data, _ := json.Marshal(other)
	e.publish(e.subjects.Intent(in.MgID, in.RoomID), data, "conflicting")
	dl := e.waitDeadLetter(in.OutOrderID, 10*time.Second)
	if dl.Reason != events.ReasonConflict || string(dl.Data) != string(data) {
		t.Errorf("dead letter %+v, want reason conflict carrying the new body", dl)
	}
	o, err := e.store.Get(context.Background(), in.OutOrderID)
	if err != nil {
		t.Fatal(err)
	}
	if o.State != events.StateCompleted || o.Amount != 40 {
		t.Errorf("original order now %s amount %d, want completed 40", o.State, o.Amount)
	}
	if bills := e.bills(in.Payment.OpenID); len(bills) != 1 || bills[0].Amt != 40 {
		t.Errorf("bills %+v, want the original one", bills)
	}
}

func TestBadInputIsDeadLetteredAndGoodIntentsFlow(t *testing.T) {
	t.Parallel()
	e := startEnv(t)
	subject := e.subjects.Intent("g", "r")
	unsafe := intent(events.ProviderMOGS, 1)
	unsafe.OutOrderID = "bad id with spaces"
	unknownCmd := intent(events.ProviderMOGS, 1)
	unknownCmd.Cmd = "launch_missiles"
	zero := intent(events.ProviderMOGS, 1)
	zero.Payment.Amount = 0
	big := intent(events.ProviderMOGS, 1)
	big.Payload = []byte(`{"point":6,"seq":1,"pad":"` + strings.Repeat("x", events.MaxIntentSize) + `"}`)
	otherRoom := intent(events.ProviderMOGS, 1)
	marshal := func(in events.Intent) []byte { b, _ := json.Marshal(in); return b }
	own := func(in events.Intent) string { return e.subjects.Intent(in.MgID, in.RoomID) }
	cases := []struct {
		name    string
		subject string
		data    []byte
		id      string // "" when no order can exist
		reason  events.Reason
	}{
		{"not JSON", subject, []byte("this is not json"), "", events.ReasonInvalid},
		{"unsafe ids", subject, marshal(unsafe), "", events.ReasonInvalid},
		{"oversize", subject, marshal(big), "", events.ReasonInvalid},
		{"a valid intent on another room's subject", e.subjects.Intent(otherRoom.MgID, "1234"), marshal(otherRoom), "", events.ReasonInvalid},
		{"unknown cmd of a known game", own(unknownCmd), marshal(unknownCmd), unknownCmd.OutOrderID, events.ReasonRejected},
		{"amount of zero", own(zero), marshal(zero), zero.OutOrderID, events.ReasonRejected},
	}
	for i, c := range cases {
		e.publish(c.subject, c.data, fmt.Sprintf("bad-%d", i))
	}
	good := intent(events.ProviderMidas, 5)
	e.publishIntent(good)
	if ev := e.waitTerminal(10*time.Second, good.OutOrderID)[good.OutOrderID]; ev.State != events.StateCompleted {
		t.Fatalf("good intent ended %s, want completed", ev.State)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		dls := e.deadLetters()
		if len(dls) >= len(cases) || time.Now().After(deadline) {
			for _, c := range cases {
				t.Run(c.name+" is dead-lettered as "+string(c.reason), func(t *testing.T) {
					for _, dl := range dls {
						if string(dl.Data) == string(c.data) {
							if dl.Reason != c.reason {
								t.Errorf("reason %q (%s), want %q", dl.Reason, dl.Error, c.reason)
							}
							if c.id == "" && dl.Subject != e.subjects.DeadLetterInvalid() {
								t.Errorf("subject %s, want %s", dl.Subject, e.subjects.DeadLetterInvalid())
							}
							if dl.Error == "" {
								t.Error("dead letter says nothing about why")
							}
							return
						}
					}
					t.Errorf("no dead letter carries this input (have %d)", len(dls))
				})
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, c := range cases[4:] {
		ev := e.waitTerminal(5*time.Second, c.id)[c.id]
		if ev.State != events.StateRejected || ev.Error == nil {
			t.Errorf("%s: final event %+v, want rejected with an error", c.name, ev)
		}
	}
}

func TestAnIntentWhoseSubjectNamesAnotherRoomIsRefusedAndItsIDStaysFree(t *testing.T) {
	t.Parallel()
	e := startEnv(t)
	in := intent(events.ProviderMOGS, 3) // room 9009 in its body
	body, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	wrong := e.subjects.Intent(in.MgID, "1234")
	e.publish(wrong, body, "wrong-room-"+in.OutOrderID)
	dl := e.waitDeadLetterWhere(t, 10*time.Second, "the wrong-room intent", func(d events.DeadLetter) bool {
		return string(d.Data) == string(body)
	})
	t.Run("it is an invalid dead letter whose reason names both rooms", func(t *testing.T) {
		if dl.Reason != events.ReasonInvalid || dl.Subject != e.subjects.DeadLetterInvalid() || dl.OriginalSubject != wrong {
			t.Errorf("dead letter %s on %s from %s, want invalid on %s from %s", dl.Reason, dl.Subject, dl.OriginalSubject, e.subjects.DeadLetterInvalid(), wrong)
		}
		for _, want := range []string{"room_id 1234", "room_id 9009", e.subjects.Intent(in.MgID, in.RoomID)} {
			if !strings.Contains(dl.Error, want) {
				t.Errorf("reason %q does not say %q", dl.Error, want)
			}
		}
	})
	t.Run("no order is made of it", func(t *testing.T) {
		// The dead letter is stored before the intent is acked, and an
		// order is only ever recorded after its intent decoded.
		if o, err := e.store.Get(context.Background(), in.OutOrderID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("store holds %+v (%v), want no order", o, err)
		}
	})
	t.Run("the same intent on its own subject still becomes an order", func(t *testing.T) {
		ev := e.run(in, 10*time.Second)
		if ev.State != events.StateCompleted || ev.RoomID != "9009" {
			t.Fatalf("final event %+v, want completed in room 9009", ev)
		}
	})
}

const emptyCatalog = `{"games":[]}`

func TestAnIntentForAnUnconfiguredProviderFailsIntoTheDeadLetterStream(t *testing.T) {
	t.Parallel()
	e := startEnv(t, func(c *worker.Config) { delete(c.Wallets, events.ProviderMidas) })
	in := intent(events.ProviderMidas, 5)
	ev := e.run(in, 10*time.Second)
	if ev.State != events.StateFailed || ev.Error == nil || ev.Error.Code != "provider_not_configured" {
		t.Fatalf("final event %+v, want failed with provider_not_configured", ev)
	}
	if dl := e.waitDeadLetter(in.OutOrderID, 5*time.Second); dl.Reason != events.ReasonFailed {
		t.Errorf("dead letter reason %q, want failed (a replay finishes it once configured)", dl.Reason)
	}
}

func TestACancelThatKeepsFailingNeedsAttentionAndAReplayFinishesIt(t *testing.T) {
	t.Parallel()
	e := startEnv(t)
	// Every pay reply is lost (the debit happens) and every cancel is busy.
	e.sandbox.SetFault(sandbox.Fault{Endpoint: "mogs.pay", DropReplyRate: 1})
	e.sandbox.SetFault(sandbox.Fault{Endpoint: "mogs.cancelpay", BusyRate: 1})
	in := intent(events.ProviderMOGS, 60)
	ev := e.run(in, 10*time.Second)
	if ev.State != events.StateNeedsAttention {
		t.Fatalf("final %s %+v, want needs_attention", ev.State, ev.Error)
	}
	dl := e.waitDeadLetter(in.OutOrderID, 5*time.Second)
	if dl.Reason != events.ReasonNeedsAttention {
		t.Fatalf("dead letter reason %q, want needs_attention", dl.Reason)
	}
	if bills := e.bills(in.Payment.OpenID); len(bills) != 1 || bills[0].Cancelled {
		t.Fatalf("bills %+v, want the one debit still charged: that is why an operator is needed", bills)
	}

	// The provider recovers; the operator replays the dead letter.
	e.sandbox.ClearFaults()
	e.jet.Replay(t, dl, in.OutOrderID+":replay:1")
	e.status.WaitLatest(t, []string{in.OutOrderID}, 10*time.Second, events.StateCompensated)
	if bills := e.bills(in.Payment.OpenID); len(bills) != 1 || !bills[0].Cancelled {
		t.Errorf("bills %+v, want the debit cancelled", bills)
	}
	got := e.states(in.OutOrderID)
	want := []events.State{events.StateAccepted, events.StateOrdered, events.StateCompensating, events.StateNeedsAttention, events.StateCompensated}
	if !slices.Equal(got, want) {
		t.Errorf("states %v, want %v (seq continues across the replay)", got, want)
	}
}

// Not parallel: whether polls share a reading depends on their timing,
// which other tests' load on the machine skews.
func TestAPlayersWaitingOrdersShareTheirBalanceReads(t *testing.T) {
	// Six orders per player wait for debits the sandbox shows late. Their
	// polls line up and share one balance read per account and interval,
	// and each order still completes on a reading taken after its debit.
	e := startEnv(t, func(c *worker.Config) { c.ConfirmTimeout = 5 * time.Second })
	e.sandbox.SetFault(sandbox.Fault{Endpoint: "mogs.pay", VisibilityDelayMS: 400})
	e.sandbox.SetFault(sandbox.Fault{Endpoint: "midas.pay_m", VisibilityDelayMS: 400})
	var ids []string
	amounts := map[string][]int64{}
	for _, provider := range []string{events.ProviderMOGS, events.ProviderMidas} {
		for i := range 6 {
			in := intent(provider, int64(10+i))
			in.Payment.OpenID = "shared-player-" + provider
			e.publishIntent(in)
			ids = append(ids, in.OutOrderID)
			amounts[in.Payment.OpenID] = append(amounts[in.Payment.OpenID], in.Payment.Amount)
		}
	}
	for id, ev := range e.waitTerminal(30*time.Second, ids...) {
		if ev.State != events.StateCompleted {
			t.Errorf("order %s ended %s %+v, want completed", id, ev.State, ev.Error)
		}
	}
	for openid, want := range amounts {
		var got []int64
		for _, b := range e.bills(openid) {
			if b.Cancelled {
				t.Errorf("player %s: bill %s was cancelled", openid, b.BillNo)
			}
			got = append(got, b.Amt)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("player %s paid %v, want %v", openid, got, want)
		}
	}
	// No-news polls write nothing; the line of the poll that saw the debit
	// says how many polls it took.
	confirmedBy := regexp.MustCompile(`debit confirmed by poll (\d+)`)
	polls, shared := 0, 0
	for _, id := range ids {
		hist, err := e.store.History(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hist {
			if m := confirmedBy.FindStringSubmatch(h.Detail); m != nil {
				n, _ := strconv.Atoi(m[1])
				polls += n
				if strings.Contains(h.Detail, "for another order") {
					shared++
				}
			}
		}
	}
	baselines := len(ids)
	reads := e.calls.Count("getbalance/ok") + e.calls.Count("get_balance_m/ok") - baselines
	t.Logf("%d confirmation polls, %d orders confirmed on another order's reading, %d balance reads", polls, shared, reads)
	if polls < 2*len(ids) {
		t.Fatalf("only %d polls for %d orders: the visibility delay did not make them wait", polls, len(ids))
	}
	if reads*2 > polls || shared == 0 {
		t.Errorf("%d balance reads for %d polls: the orders of one account did not share them", reads, polls)
	}
}

func TestPollsThatSeeNothingWriteNothingAndARestartResumesThem(t *testing.T) {
	// A poll that sees nothing leaves the stored row alone; the next start
	// polls from the last stored schedule, and the order completes with
	// one debit.
	e := startEnv(t, func(c *worker.Config) { c.ConfirmInterval, c.ConfirmTimeout = 30*time.Millisecond, time.Minute })
	e.sandbox.SetFault(sandbox.Fault{Endpoint: "mogs.pay", VisibilityDelayMS: 1500})
	in := intent(events.ProviderMOGS, 25)
	e.publishIntent(in)
	e.waitState(in.OutOrderID, events.StateDebited, 10*time.Second)
	debited, err := e.store.Get(context.Background(), in.OutOrderID)
	if err != nil {
		t.Fatal(err)
	}

	// The baseline, the poll stored with the debit, then five polls more.
	const reads = 1 + 1 + 5
	kit.EventuallyOn(t, nil, 10*time.Second, fmt.Sprintf("%d balance reads", reads), func() bool {
		return e.calls.Count("getbalance/ok") >= reads
	}, func() string { return fmt.Sprintf("%d balance reads", e.calls.Count("getbalance/ok")) })
	now, err := e.store.Get(context.Background(), in.OutOrderID)
	if err != nil {
		t.Fatal(err)
	}
	if ev, _ := e.lastEvent(in.OutOrderID); ev.State != events.StateDebited {
		t.Fatalf("order %s after %d polls, want still debited (the debit shows after 1.5s)", ev.State, reads-2)
	}
	if now.Version != debited.Version || now.Attempt != debited.Attempt {
		t.Errorf("stored row moved from version %d attempt %d to %d/%d while polls saw nothing",
			debited.Version, debited.Attempt, now.Version, now.Attempt)
	}

	e.restart()
	ev := e.waitTerminal(10*time.Second, in.OutOrderID)[in.OutOrderID]
	if ev.State != events.StateCompleted {
		t.Fatalf("order ended %s %+v, want completed", ev.State, ev.Error)
	}
	if bills := e.bills(in.Payment.OpenID); len(bills) != 1 || bills[0].Cancelled || bills[0].Amt != 25 {
		t.Errorf("bills %+v, want one uncancelled pay of 25", bills)
	}
}
