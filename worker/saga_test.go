package worker

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/protect"
	"github.com/coinsaga/coinsaga/providers/sud"
	"github.com/coinsaga/coinsaga/store"
)

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

func testPolicy(now time.Time) policy {
	return policy{
		now:               now,
		retry:             RetryPolicy{MaxAttempts: 3, Initial: 100 * time.Millisecond, Max: time.Second},
		cancelRetry:       RetryPolicy{MaxAttempts: 4, Initial: 100 * time.Millisecond, Max: time.Second},
		confirmInterval:   15 * time.Second,
		confirmTimeout:    2 * time.Minute,
		sudExecuteTimeout: 2 * time.Minute,
	}
}

func perr(class providers.Class, code providers.Code) error {
	return &providers.Error{Provider: "test", Endpoint: "call", Class: class, Code: code}
}

func orderAt(step Step, state events.State) store.Order {
	return store.Order{OutOrderID: "o1", Provider: events.ProviderMOGS, Amount: 100,
		State: state, Step: step, NextRunAt: t0, Version: 3, CreatedAt: t0.Add(-time.Minute)}
}

// want describes the interesting parts of an outcome.
type want struct {
	state    events.State
	step     Step
	due      bool // scheduled again (not terminal)
	dead     events.Reason
	code     string
	attempts int
}

func check(t *testing.T, got outcome, w want) {
	t.Helper()
	n := got.next
	if events.State(n.State) != w.state || n.Step != w.step {
		t.Errorf("state/step = %s/%s, want %s/%s (detail %q)", n.State, n.Step, w.state, w.step, got.detail)
	}
	if due := !n.NextRunAt.IsZero(); due != w.due {
		t.Errorf("scheduled = %v, want %v", due, w.due)
	}
	if got.dead != w.dead {
		t.Errorf("dead letter = %q, want %q", got.dead, w.dead)
	}
	if w.code != "" && n.ErrorCode != w.code {
		t.Errorf("error code = %q, want %q", n.ErrorCode, w.code)
	}
	if n.Attempt != w.attempts {
		t.Errorf("attempt = %d, want %d", n.Attempt, w.attempts)
	}
	if events.State(n.State).Terminal() == w.due {
		t.Errorf("terminal state %s must not be scheduled, and a running one must", n.State)
	}
}

func TestDecideOrder(t *testing.T) {
	p := testPolicy(t0)
	exhausted := orderAt(StepOrder, events.StateAccepted)
	exhausted.Attempt = 2
	tests := []struct {
		name  string
		order store.Order
		reply orderReply
		err   error
		want  want
	}{
		{"a created order moves on to the pay", orderAt(StepOrder, events.StateAccepted), orderReply{orderID: "sud-1"}, nil,
			want{state: events.StateOrdered, step: StepPay, due: true}},
		{"an order SUD had already, and that is ours, is adopted", orderAt(StepOrder, events.StateAccepted), orderReply{orderID: "sud-1", status: "EXECUTING"}, nil,
			want{state: events.StateOrdered, step: StepPay, due: true}},
		{"an order SUD had already under our id but with other fields is a conflict, never paid", orderAt(StepOrder, events.StateAccepted),
			orderReply{orderID: "sud-9", mismatch: `cmd "gift" (ours "dice")`}, nil,
			want{state: events.StateFailed, step: StepOrder, dead: events.ReasonConflict, code: codeSUDOrderConflict}},
		{"an action SUD reports failed before the pay is never paid", orderAt(StepOrder, events.StateAccepted), orderReply{orderID: "sud-1", status: "EXECUTE_FAIL"}, nil,
			want{state: events.StateFailed, step: StepOrder, dead: events.ReasonFailed, code: codeSUDExecuteFailed}},
		{"a busy SUD is asked again later", orderAt(StepOrder, events.StateAccepted), orderReply{}, perr(providers.Retryable, providers.CodeBusy),
			want{state: events.StateAccepted, step: StepOrder, due: true, code: "busy", attempts: 1}},
		{"a busy SUD past the retry budget fails the order into the dead-letter stream", exhausted, orderReply{}, perr(providers.Retryable, providers.CodeBusy),
			want{state: events.StateFailed, step: StepOrder, dead: events.ReasonFailed, code: "busy", attempts: 2}},
		{"SUD 10002 fails the order as rejected input, with no pay", orderAt(StepOrder, events.StateAccepted), orderReply{}, perr(providers.Final, providers.CodeParamError),
			want{state: events.StateFailed, step: StepOrder, dead: events.ReasonRejected, code: "param_error"}},
		{"a bad SUD app secret fails the order for an operator", orderAt(StepOrder, events.StateAccepted), orderReply{}, perr(providers.Final, providers.CodeAuthFailed),
			want{state: events.StateFailed, step: StepOrder, dead: events.ReasonFailed, code: "auth_failed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decideOrder(tt.order, tt.reply, tt.err, p)
			check(t, got, tt.want)
			if got.next.Step == StepPay {
				if got.next.SudOrderID != tt.reply.orderID || !got.next.OrderedAt.Equal(t0) || !got.next.FirstPayAt.Equal(t0) {
					t.Errorf("SUD order %q ordered at %v first pay %v; want %q, both %v", got.next.SudOrderID, got.next.OrderedAt, got.next.FirstPayAt, tt.reply.orderID, t0)
				}
			}
		})
	}
}

func TestSameOrderComparesEveryFieldSUDRuns(t *testing.T) {
	in := &events.Intent{MgID: "mg", Cmd: "dice", FromUID: "u1", ToUID: "u2", Value: 6}
	ours := sud.Order{MgID: "mg", Cmd: "dice", FromUID: "u1", ToUID: "u2", Value: 6}
	if d := sameOrder(in, ours); d != "" {
		t.Fatalf("our own order differs: %s", d)
	}
	for name, change := range map[string]func(*sud.Order){
		"mg_id": func(q *sud.Order) { q.MgID = "other" }, "cmd": func(q *sud.Order) { q.Cmd = "gift" },
		"value": func(q *sud.Order) { q.Value = 5 }, "from_uid": func(q *sud.Order) { q.FromUID = "u9" },
		"to_uid": func(q *sud.Order) { q.ToUID = "" },
	} {
		t.Run("another "+name+" is not our order", func(t *testing.T) {
			q := ours
			change(&q)
			if d := sameOrder(in, q); !strings.Contains(d, name) {
				t.Fatalf("difference %q does not name %s", d, name)
			}
		})
	}
}

func TestDecideBaselineComesBeforeSUD(t *testing.T) {
	p := testPolicy(t0)
	o := orderAt(StepBaseline, events.StateAccepted)
	o.PayGeneration = 2
	t.Run("a player who can pay has the balance recorded and goes on to SUD", func(t *testing.T) {
		got := decideBaseline(o, providers.Balance{Balance: 900, GenBalance: 30, CostSum: 50, SaveAmt: 1000}, nil, p)
		check(t, got, want{state: events.StateAccepted, step: StepOrder, due: true})
		n := got.next
		if !n.HasBaseline || n.BaselineBalance != 900 || n.BaselineCostSum != 50 || n.BaselineSaveAmt != 1000 || n.BaselineGenBalance != 30 {
			t.Errorf("baseline not recorded: %+v", n)
		}
		if n.BillNo != billNo("o1", 2) {
			t.Errorf("bill_no = %q, want generation 2's %q", n.BillNo, billNo("o1", 2))
		}
	})
	t.Run("a player whose balance is below the amount fails before SUD sees the order", func(t *testing.T) {
		got := decideBaseline(o, providers.Balance{Balance: 99}, nil, p)
		check(t, got, want{state: events.StateFailed, step: StepBaseline, code: "insufficient_balance"})
	})
	t.Run("a balance exactly the amount is enough", func(t *testing.T) {
		check(t, decideBaseline(o, providers.Balance{Balance: 100}, nil, p), want{state: events.StateAccepted, step: StepOrder, due: true})
	})
	t.Run("an order SUD has already (a replay) goes straight to the pay", func(t *testing.T) {
		replayed := o
		replayed.SudOrderID, replayed.State = "sud-1", events.StateOrdered
		got := decideBaseline(replayed, providers.Balance{Balance: 900}, nil, p)
		check(t, got, want{state: events.StateOrdered, step: StepPay, due: true})
		if !got.next.FirstPayAt.Equal(t0) {
			t.Errorf("first pay at %v, want %v", got.next.FirstPayAt, t0)
		}
	})
	t.Run("a bill already sent keeps its number", func(t *testing.T) {
		sent := o
		sent.BillNo, sent.FirstPayAt = "o1", t0.Add(-time.Hour)
		if got := decideBaseline(sent, providers.Balance{Balance: 900}, nil, p); got.next.BillNo != "o1" {
			t.Errorf("bill_no = %q, want the bill already sent", got.next.BillNo)
		}
	})
	t.Run("a login failure is the player's outcome", func(t *testing.T) {
		check(t, decideBaseline(o, providers.Balance{}, perr(providers.Final, providers.CodeLoginFailed), p),
			want{state: events.StateFailed, step: StepBaseline, code: "login_failed"})
	})
}

func TestDecidePay(t *testing.T) {
	p := testPolicy(t0)
	base := orderAt(StepPay, events.StateOrdered)
	base.HasBaseline, base.BillNo = true, "o1"
	exhausted := base
	exhausted.Attempt = 2
	tests := []struct {
		name  string
		order store.Order
		reply providers.DebitReply
		err   error
		want  want
	}{
		{"a debit moves on to confirmation at once", base, providers.DebitReply{Class: providers.OK, Balance: 900, BalanceKnown: true}, nil,
			want{state: events.StateDebited, step: StepConfirm, due: true}},
		{"a duplicate bill_no counts as the debit it already is", base, providers.DebitReply{Class: providers.AlreadyDone}, nil,
			want{state: events.StateDebited, step: StepConfirm, due: true}},
		{"insufficient balance fails the order with nothing charged and no dead letter", base, providers.DebitReply{}, perr(providers.Final, providers.CodeInsufficientBalance),
			want{state: events.StateFailed, step: StepBaseline, code: "insufficient_balance"}},
		{"risk control is a business decline", base, providers.DebitReply{}, perr(providers.Final, providers.CodeRiskControl),
			want{state: events.StateFailed, step: StepBaseline, code: "risk_control"}},
		{"a busy provider is asked again with the same bill", base, providers.DebitReply{}, perr(providers.Retryable, providers.CodeBusy),
			want{state: events.StateOrdered, step: StepPay, due: true, code: "busy", attempts: 1}},
		{"retries run out on pay: the debit may have happened, so compensate", exhausted, providers.DebitReply{}, perr(providers.Retryable, providers.CodeUnavailable),
			want{state: events.StateCompensating, step: StepCancel, due: true, code: "unavailable"}},
		{"an unknown final code is not trusted to mean nothing was charged", base, providers.DebitReply{}, perr(providers.Final, providers.CodeUnknown),
			want{state: events.StateCompensating, step: StepCancel, due: true, code: "unknown"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decidePay(tt.order, tt.reply, tt.err, p)
			check(t, got, tt.want)
			if got.next.State == events.StateDebited && !got.next.DebitedAt.Equal(t0) {
				t.Errorf("debited_at = %v, want %v", got.next.DebitedAt, t0)
			}
		})
	}
}

func TestDebitVisible(t *testing.T) {
	mogs := store.Order{Provider: events.ProviderMOGS, Amount: 100, HasBaseline: true, BaselineCostSum: 500, BaselineBalance: 1000}
	midas := store.Order{Provider: events.ProviderMidas, Amount: 100, HasBaseline: true, BaselineBalance: 1000, BaselineSaveAmt: 5000,
		HasPayBalance: true, PayBalance: 900}
	midasNoReply := midas
	midasNoReply.HasPayBalance = false
	midasGen := midas // 30 gifted at the baseline, 20 of them spent by the pay
	midasGen.BaselineGenBalance, midasGen.UsedGenAmt = 30, 20
	tests := []struct {
		name  string
		order store.Order
		bal   providers.Balance
		want  bool
	}{
		{"MOGS: cost_sum grown by the amount shows the debit", mogs, providers.Balance{CostSum: 600}, true},
		{"MOGS: cost_sum not grown yet does not", mogs, providers.Balance{CostSum: 500}, false},
		{"MOGS: another order's smaller debit is not enough", mogs, providers.Balance{CostSum: 550}, false},
		{"Midas: the balance the pay reported shows the debit", midas, providers.Balance{Balance: 900, SaveAmt: 5000}, true},
		{"Midas: the balance from before the pay does not", midas, providers.Balance{Balance: 1000, SaveAmt: 5000}, false},
		{"Midas: a top-up since the baseline is allowed for", midas, providers.Balance{Balance: 950, SaveAmt: 5050}, true},
		{"Midas: without the pay's balance the baseline less the amount decides", midasNoReply, providers.Balance{Balance: 900, SaveAmt: 5000}, true},
		{"Midas: a gift received during the window does not hide the debit", midas, providers.Balance{Balance: 950, GenBalance: 50, SaveAmt: 5000}, true},
		{"Midas: a gift never makes a debit that did not happen look done", midas, providers.Balance{Balance: 1050, GenBalance: 50, SaveAmt: 5000}, false},
		{"Midas: gifted coins the pay spent are not taken for a gift", midasGen, providers.Balance{Balance: 900, GenBalance: 10, SaveAmt: 5000}, true},
		{"Midas: gifted coins the pay spent do not hide a missing debit", midasGen, providers.Balance{Balance: 1000, GenBalance: 30, SaveAmt: 5000}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := debitVisible(tt.order, tt.bal); got != tt.want {
				t.Errorf("debitVisible = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDecideConfirm(t *testing.T) {
	o := orderAt(StepConfirm, events.StateDebited)
	o.HasBaseline, o.BaselineCostSum, o.DebitedAt, o.BillNo = true, 500, t0, "o1"
	notYet := providers.Balance{CostSum: 500}
	readAt := func(b providers.Balance, at time.Time) balanceReading { return balanceReading{Balance: b, at: at} }
	t.Run("a visible debit moves on to SUD's verdict at once", func(t *testing.T) {
		check(t, decideConfirm(o, readAt(providers.Balance{CostSum: 600, Balance: 900}, t0), nil, testPolicy(t0)),
			want{state: events.StateDebited, step: StepVerdict, due: true})
	})
	t.Run("an invisible debit is polled again one interval later", func(t *testing.T) {
		got := decideConfirm(o, readAt(notYet, t0), nil, testPolicy(t0))
		check(t, got, want{state: events.StateDebited, step: StepConfirm, due: true, attempts: 1})
		if !got.next.NextRunAt.Equal(t0.Add(15 * time.Second)) {
			t.Errorf("next poll at %v, want 15s after the debit", got.next.NextRunAt)
		}
	})
	t.Run("a reading shared by another order times the next poll from the reading", func(t *testing.T) {
		shared := balanceReading{Balance: notYet, at: t0.Add(20 * time.Second), shared: true}
		got := decideConfirm(o, shared, nil, testPolicy(t0.Add(31*time.Second)))
		check(t, got, want{state: events.StateDebited, step: StepConfirm, due: true, attempts: 1})
		if !got.next.NextRunAt.Equal(t0.Add(35 * time.Second)) {
			t.Errorf("next poll at %v, want one interval after the shared reading", got.next.NextRunAt)
		}
	})
	t.Run("the last poll is held exactly at the deadline", func(t *testing.T) {
		got := decideConfirm(o, readAt(notYet, t0.Add(110*time.Second)), nil, testPolicy(t0.Add(110*time.Second)))
		if !got.next.NextRunAt.Equal(t0.Add(2 * time.Minute)) {
			t.Errorf("next poll at %v, want the deadline", got.next.NextRunAt)
		}
	})
	t.Run("a failed balance read is one more poll, not a failure", func(t *testing.T) {
		check(t, decideConfirm(o, readAt(providers.Balance{}, t0), errors.New("connection reset"), testPolicy(t0)),
			want{state: events.StateDebited, step: StepConfirm, due: true, attempts: 1, code: "unknown"})
	})
	t.Run("no debit by the deadline compensates", func(t *testing.T) {
		check(t, decideConfirm(o, readAt(notYet, t0.Add(2*time.Minute)), nil, testPolicy(t0.Add(2*time.Minute))),
			want{state: events.StateCompensating, step: StepCancel, due: true, code: codeConfirmTimeout})
	})
	t.Run("a reading taken before the deadline never compensates", func(t *testing.T) {
		got := decideConfirm(o, readAt(notYet, t0.Add(119*time.Second)), nil, testPolicy(t0.Add(2*time.Minute)))
		check(t, got, want{state: events.StateDebited, step: StepConfirm, due: true, attempts: 1})
	})
}

func TestPollSince(t *testing.T) {
	o := orderAt(StepConfirm, events.StateDebited)
	o.DebitedAt = t0
	tests := []struct {
		name    string
		attempt int
		due     time.Time
		now     time.Time
		want    time.Time
	}{
		{"the first poll after the pay reads afresh", 0, t0, t0.Add(time.Millisecond), t0.Add(time.Millisecond)},
		{"a later poll takes any reading newer than the one that scheduled it", 2, t0.Add(30 * time.Second), t0.Add(31 * time.Second), t0.Add(15 * time.Second)},
		{"the poll at the deadline reads afresh", 8, t0.Add(2 * time.Minute), t0.Add(2*time.Minute + time.Millisecond), t0.Add(2*time.Minute + time.Millisecond)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := o
			o.Attempt, o.NextRunAt = tt.attempt, tt.due
			if got := pollSince(o, testPolicy(tt.now)); !got.Equal(tt.want) {
				t.Errorf("pollSince = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestConfirmViewDecidesAsTheWholeRow(t *testing.T) {
	// A row with every column set, as a waiting order's row is.
	whole := func(provider string) store.Order {
		return store.Order{OutOrderID: "o1", MgID: "mg", RoomID: "room", FromUID: "u1", Provider: provider,
			Amount: 100, Intent: []byte(`{"out_order_id":"o1"}`), IntentSubject: "coinsaga.intents.mg.room",
			BodyHash: "hash", State: events.StateDebited, Step: StepConfirm, Seq: 3, Attempt: 2,
			NextRunAt: t0.Add(30 * time.Second), SudOrderID: "sud-1", BillNo: "o1", PayGeneration: 0,
			HasBaseline: true, BaselineBalance: 1000, BaselineSaveAmt: 50, BaselineCostSum: 500,
			HasPayBalance: true, PayBalance: 900, UsedGenAmt: 20, DebitedAt: t0,
			ErrorCode: "busy", Error: "an earlier read failed", CreatedAt: t0.Add(-time.Second),
			UpdatedAt: t0, Version: 7}
	}
	reading := func(b providers.Balance, at time.Duration, shared bool) balanceReading {
		return balanceReading{Balance: b, at: t0.Add(at), shared: shared}
	}
	tests := []struct {
		name     string
		provider string
		reading  balanceReading
		readErr  error
		now      time.Duration
	}{
		{"a MOGS debit that shows completes both", events.ProviderMOGS, reading(providers.Balance{CostSum: 600}, 30*time.Second, false), nil, 30 * time.Second},
		{"a MOGS debit not yet shown waits in both", events.ProviderMOGS, reading(providers.Balance{CostSum: 500}, 30*time.Second, false), nil, 30 * time.Second},
		{"a Midas debit that shows completes both", events.ProviderMidas, reading(providers.Balance{Balance: 900, SaveAmt: 50}, 30*time.Second, false), nil, 30 * time.Second},
		{"a Midas top-up hides the debit in both", events.ProviderMidas, reading(providers.Balance{Balance: 1000, SaveAmt: 50}, 30*time.Second, false), nil, 30 * time.Second},
		{"a reading shared by another order schedules both alike", events.ProviderMOGS, reading(providers.Balance{CostSum: 500}, 25*time.Second, true), nil, 31 * time.Second},
		{"a failed read waits in both", events.ProviderMidas, balanceReading{at: t0.Add(30 * time.Second)}, errors.New("connection reset"), 30 * time.Second},
		{"the deadline compensates both", events.ProviderMOGS, reading(providers.Balance{CostSum: 500}, 2*time.Minute, false), nil, 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := whole(tt.provider)
			p := testPolicy(t0.Add(tt.now))
			if got, want := pollSince(confirmView(o), p), pollSince(o, p); !got.Equal(want) {
				t.Errorf("pollSince on the view = %v, on the row %v", got, want)
			}
			full := decideConfirm(o, tt.reading, tt.readErr, p)
			onView := decideConfirm(confirmView(o), tt.reading, tt.readErr, p)
			if got, want := confirmView(onView.next), confirmView(full.next); !reflect.DeepEqual(got, want) {
				t.Errorf("decided on the view:\n%+v\non the row:\n%+v", got, want)
			}
			if onView.detail != full.detail || onView.dead != full.dead {
				t.Errorf("view says %q (dead %q), row says %q (dead %q)", onView.detail, onView.dead, full.detail, full.dead)
			}
		})
	}
}

func TestDecideCancel(t *testing.T) {
	p := testPolicy(t0)
	o := orderAt(StepCancel, events.StateCompensating)
	o.BillNo, o.HasBaseline, o.ErrorCode, o.Error = "o1", true, codeConfirmTimeout, "debit not visible"
	exhausted := o
	exhausted.Attempt = 3
	tests := []struct {
		name string
		o    store.Order
		r    providers.CancelReply
		err  error
		want want
	}{
		{"a cancelled bill compensates the order and keeps the cause", o, providers.CancelReply{Class: providers.OK}, nil,
			want{state: events.StateCompensated, step: StepBaseline, dead: events.ReasonFailed, code: codeConfirmTimeout}},
		{"an already cancelled bill compensates too", o, providers.CancelReply{Class: providers.AlreadyDone}, nil,
			want{state: events.StateCompensated, step: StepBaseline, dead: events.ReasonFailed, code: codeConfirmTimeout}},
		{"bill not found means nothing was charged: failed", o, providers.CancelReply{}, perr(providers.Final, providers.CodeNotFound),
			want{state: events.StateFailed, step: StepBaseline, dead: events.ReasonFailed, code: codeConfirmTimeout}},
		{"a busy cancel is retried", o, providers.CancelReply{}, perr(providers.Retryable, providers.CodeBusy),
			want{state: events.StateCompensating, step: StepCancel, due: true, code: "busy", attempts: 1}},
		{"a cancel that keeps failing needs an operator", exhausted, providers.CancelReply{}, perr(providers.Retryable, providers.CodeBusy),
			want{state: events.StateNeedsAttention, step: StepCancel, dead: events.ReasonNeedsAttention, code: "busy", attempts: 3}},
		{"a refused cancel needs an operator", o, providers.CancelReply{}, perr(providers.Final, providers.CodeLoginFailed),
			want{state: events.StateNeedsAttention, step: StepCancel, dead: events.ReasonNeedsAttention, code: "login_failed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decideCancel(tt.o, tt.r, tt.err, p)
			check(t, got, tt.want)
		})
	}
	t.Run("after a cancel the next pay uses a new bill_no, after not found the same one", func(t *testing.T) {
		if g := decideCancel(o, providers.CancelReply{Class: providers.OK}, nil, p).next; g.PayGeneration != 1 || g.HasBaseline {
			t.Errorf("after cancel: generation %d, baseline kept %v; want 1, false", g.PayGeneration, g.HasBaseline)
		}
		if g := decideCancel(o, providers.CancelReply{}, perr(providers.Final, providers.CodeNotFound), p).next; g.PayGeneration != 0 {
			t.Errorf("after not found: generation %d, want 0", g.PayGeneration)
		}
	})
}

func TestBillNoFitsTheWallets(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d (set COINSAGA_BILL_SEED to replay)", seed)
	if v := os.Getenv("COINSAGA_BILL_SEED"); v != "" {
		seed, _ = strconv.ParseInt(v, 10, 64)
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
	ids := []string{"a", "1659497694000", "_lead", "-lead", strings.Repeat("z", 62), strings.Repeat("z", 63), strings.Repeat("z", 64),
		strings.Repeat("_", 64), "a-1", "a_1", "b" + strings.Repeat("_", 17) + "x"}
	for range 2000 {
		b := make([]byte, 1+rng.IntN(64))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		ids = append(ids, string(b))
	}
	rule := regexp.MustCompile(`^[0-9A-Za-z-][0-9A-Za-z_-]{0,62}$`)
	seen := map[string]string{}
	for _, id := range ids {
		if !events.ValidID(id) {
			t.Fatalf("test id %q is not a valid out_order_id", id)
		}
		for gen := range 4 {
			b := billNo(id, gen)
			if !rule.MatchString(b) {
				t.Fatalf("billNo(%q, %d) = %q breaks the wallets' rule", id, gen, b)
			}
			if b != billNo(id, gen) {
				t.Fatalf("billNo(%q, %d) is not deterministic", id, gen)
			}
			key := fmt.Sprintf("%s/%d", id, gen)
			if other, dup := seen[b]; dup && other != key {
				t.Fatalf("bill_no %q is shared by %s and %s", b, other, key)
			}
			seen[b] = key
		}
	}
	t.Run("the first bill of a short order is its out_order_id", func(t *testing.T) {
		if got := billNo("1659497694000", 0); got != "1659497694000" {
			t.Fatalf("got %q", got)
		}
	})
}

func TestDecideVerdict(t *testing.T) {
	o := orderAt(StepVerdict, events.StateDebited)
	o.BillNo, o.DebitedAt, o.OrderedAt = "o1", t0, t0.Add(-time.Second)
	tests := []struct {
		name   string
		status string
		err    error
		now    time.Time
		want   want
	}{
		{"EXECUTE_SUCCESS with the debit confirmed completes the order", "EXECUTE_SUCCESS", nil, t0,
			want{state: events.StateCompleted, step: StepDone}},
		{"EXECUTE_FAIL after the debit compensates it", "EXECUTE_FAIL", nil, t0,
			want{state: events.StateCompensating, step: StepCancel, due: true, code: codeSUDExecuteFailed}},
		{"an action still executing is asked again later", "EXECUTING", nil, t0,
			want{state: events.StateDebited, step: StepVerdict, due: true, attempts: 1}},
		{"a failed query is asked again later", "", perr(providers.Retryable, providers.CodeBusy), t0,
			want{state: events.StateDebited, step: StepVerdict, due: true, attempts: 1, code: "busy"}},
		{"an action undecided past the execute timeout goes to an operator, not a guess", "EXECUTING", nil, t0.Add(2 * time.Minute),
			want{state: events.StateNeedsAttention, step: StepVerdict, dead: events.ReasonNeedsAttention, code: codeSUDExecuteTimeout}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, decideVerdict(o, tt.status, tt.err, testPolicy(tt.now)), tt.want)
		})
	}
	t.Run("the next query is at most 5 s later and never after the timeout", func(t *testing.T) {
		got := decideVerdict(o, "EXECUTING", nil, testPolicy(t0))
		if !got.next.NextRunAt.Equal(t0.Add(5 * time.Second)) {
			t.Errorf("next query at %v, want 5 s later", got.next.NextRunAt)
		}
		late := decideVerdict(o, "EXECUTING", nil, testPolicy(t0.Add(118*time.Second)))
		if !late.next.NextRunAt.Equal(o.OrderedAt.Add(2 * time.Minute)) {
			t.Errorf("next query at %v, want the timeout", late.next.NextRunAt)
		}
	})
	t.Run("a compensation for EXECUTE_FAIL ends compensated with that cause", func(t *testing.T) {
		cancelling := decideVerdict(o, "EXECUTE_FAIL", nil, testPolicy(t0)).next
		check(t, decideCancel(cancelling, providers.CancelReply{Class: providers.OK}, nil, testPolicy(t0)),
			want{state: events.StateCompensated, step: StepBaseline, dead: events.ReasonFailed, code: codeSUDExecuteFailed})
	})
}

func TestDecidePayBefore(t *testing.T) {
	o := orderAt(StepPay, events.StateOrdered)
	o.BillNo, o.FirstPayAt = "o1", t0.Add(-time.Hour)
	t.Run("an action SUD reported failed is not paid", func(t *testing.T) {
		out, stopped := decidePayBefore(o, "EXECUTE_FAIL", testPolicy(t0))
		if !stopped {
			t.Fatal("the pay would go ahead")
		}
		check(t, out, want{state: events.StateFailed, step: StepPay, dead: events.ReasonFailed, code: codeSUDExecuteFailed})
	})
	t.Run("an action SUD reported failed after a pay attempt lost its answer is cancelled, not just failed", func(t *testing.T) {
		unknown := o
		unknown.PayUnknown = true
		out, stopped := decidePayBefore(unknown, "EXECUTE_FAIL", testPolicy(t0))
		if !stopped {
			t.Fatal("the pay would go ahead")
		}
		check(t, out, want{state: events.StateCompensating, step: StepCancel, due: true, code: codeSUDExecuteFailed})
		notFound := decideCancel(out.next, providers.CancelReply{}, perr(providers.Final, providers.CodeNotFound), testPolicy(t0))
		check(t, notFound, want{state: events.StateFailed, step: StepBaseline, dead: events.ReasonFailed, code: codeSUDExecuteFailed})
	})
	t.Run("a young bill is paid", func(t *testing.T) {
		if _, stopped := decidePayBefore(o, "EXECUTING", testPolicy(t0)); stopped {
			t.Fatal("the pay was stopped")
		}
	})
	t.Run("a bill first used more than 47 h ago is never sent again", func(t *testing.T) {
		out, stopped := decidePayBefore(o, "", testPolicy(o.FirstPayAt.Add(47*time.Hour)))
		if !stopped {
			t.Fatal("the pay would go ahead with an expired bill")
		}
		check(t, out, want{state: events.StateNeedsAttention, step: StepPay, dead: events.ReasonNeedsAttention, code: codeBillExpired})
	})
}

func TestADeclineAfterAnUnknownPayIsCheckedWithACancel(t *testing.T) {
	p := testPolicy(t0)
	o := orderAt(StepPay, events.StateOrdered)
	o.BillNo, o.FirstPayAt, o.HasBaseline, o.SudOrderID = "o1", t0, true, "sud-1"
	lost := decidePay(o, providers.DebitReply{}, perr(providers.Retryable, providers.CodeTimeout), p)
	if !lost.next.PayUnknown {
		t.Fatal("a timed-out pay is not marked unknown")
	}
	for _, code := range []providers.Code{providers.CodeInsufficientBalance, providers.CodeLoginFailed, providers.CodeRiskControl, providers.CodeParamError} {
		t.Run(string(code)+" after a timeout cancels before deciding", func(t *testing.T) {
			got := decidePay(lost.next, providers.DebitReply{}, perr(providers.Final, code), p)
			check(t, got, want{state: events.StateCompensating, step: StepCancel, due: true, code: string(code)})
			failed := decideCancel(got.next, providers.CancelReply{}, perr(providers.Final, providers.CodeNotFound), p)
			check(t, failed, want{state: events.StateFailed, step: StepBaseline, dead: events.ReasonFailed, code: string(code)})
		})
	}
	t.Run("a decline with no unknown attempt before it fails at once, and counts when SUD had the order", func(t *testing.T) {
		got := decidePay(o, providers.DebitReply{}, perr(providers.Final, providers.CodeInsufficientBalance), p)
		check(t, got, want{state: events.StateFailed, step: StepBaseline, code: "insufficient_balance"})
		if !got.declinedAfterSUD {
			t.Error("not counted as declined after SUD")
		}
	})
}

func TestACancelAnsweredNotFoundProvesNothingOnceTheBillMayHaveExpired(t *testing.T) {
	o := orderAt(StepCancel, events.StateCompensating)
	o.BillNo, o.FirstPayAt, o.ErrorCode = "o1", t0, codeConfirmTimeout
	notFound := perr(providers.Final, providers.CodeNotFound)
	check(t, decideCancel(o, providers.CancelReply{}, notFound, testPolicy(t0.Add(46*time.Hour))),
		want{state: events.StateFailed, step: StepBaseline, dead: events.ReasonFailed, code: codeConfirmTimeout})
	check(t, decideCancel(o, providers.CancelReply{}, notFound, testPolicy(t0.Add(47*time.Hour))),
		want{state: events.StateNeedsAttention, step: StepCancel, dead: events.ReasonNeedsAttention, code: codeBillExpired})
}

func TestRetryDelayGrowsAndIsCapped(t *testing.T) {
	p := RetryPolicy{Initial: 100 * time.Millisecond, Max: time.Second}
	prev := time.Duration(0)
	for n := 0; n < 3; n++ {
		d := p.Delay(n)
		if d <= prev*11/10 && n > 0 {
			t.Errorf("delay %d = %v, not growing from %v", n, d, prev)
		}
		prev = d
	}
	if d := p.Delay(20); d > 1200*time.Millisecond {
		t.Errorf("delay 20 = %v, want at most the cap plus jitter", d)
	}
}

func TestAnOpenCircuitHoldsTheOrderWithoutSpendingItsRetries(t *testing.T) {
	opened := t0.Add(-time.Minute)
	refused := &providers.Error{Provider: "mogs", Endpoint: "pay", Class: providers.Retryable, Code: providers.CodeCircuitOpen,
		Err: &protect.OpenError{Endpoint: "mogs.pay", OpenedAt: opened}}
	p := testPolicy(t0)
	p.outageHold = 30 * time.Minute
	o := orderAt(StepPay, events.StateOrdered)
	o.BillNo, o.FirstPayAt, o.Attempt = "o1", t0, 2 // the last attempt of its budget

	t.Run("a refused pay waits at its step with its attempt count unchanged", func(t *testing.T) {
		got := decidePay(o, providers.DebitReply{}, refused, p)
		check(t, got, want{state: events.StateOrdered, step: StepPay, due: true, code: "circuit_open", attempts: 2})
		if !got.held || got.next.PayUnknown {
			t.Errorf("held %v, pay unknown %v; want held, and not unknown: the call was never sent", got.held, got.next.PayUnknown)
		}
		if !got.next.NextRunAt.Equal(t0.Add(holdDelay)) {
			t.Errorf("next try at %v, want %v", got.next.NextRunAt, t0.Add(holdDelay))
		}
	})
	t.Run("past the outage hold the usual retry budget applies", func(t *testing.T) {
		late := p
		late.now = opened.Add(31 * time.Minute)
		check(t, decidePay(o, providers.DebitReply{}, refused, late),
			want{state: events.StateCompensating, step: StepCancel, due: true, code: "circuit_open"})
	})
	t.Run("a balance that cannot be read past the confirm deadline undoes nothing while held", func(t *testing.T) {
		c := orderAt(StepConfirm, events.StateDebited)
		c.DebitedAt, c.BillNo = t0.Add(-3*time.Minute), "o1"
		got := decideConfirm(c, balanceReading{at: t0}, refused, p)
		check(t, got, want{state: events.StateDebited, step: StepConfirm, due: true, attempts: 1, code: "circuit_open"})
	})
	t.Run("a cancel refused by an open circuit waits too", func(t *testing.T) {
		c := orderAt(StepCancel, events.StateCompensating)
		c.Attempt, c.BillNo = 3, "o1"
		check(t, decideCancel(c, providers.CancelReply{}, refused, p),
			want{state: events.StateCompensating, step: StepCancel, due: true, code: "circuit_open", attempts: 3})
	})
}
