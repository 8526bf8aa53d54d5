package worker

// The scheduler's own tests: a Worker without NATS (newWorker) on a store
// in a temporary SQLite file, fake providers, and the hand-moved clock.
// Nothing here sleeps to let time pass: the clock moves when the test
// says, and the test waits on what the providers saw, with a deadline.

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/internal/testclock"
	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/providers/sud"
	"github.com/coinsaga/coinsaga/store"
)

// fakeWallet is a MOGS wallet in memory. A debit shows in cost_sum unless
// hideDebits is set; gate, when not nil, holds every balance read until
// it is closed.
type fakeWallet struct {
	clock      *testclock.Clock
	hideDebits bool
	gate       chan struct{}
	reads      chan time.Time // the clock at each balance read, as it starts

	mu              sync.Mutex
	costSum         int64
	inflight, peak  int
	debits, cancels map[string]int // by bill_no
}

func newFakeWallet(clock *testclock.Clock) *fakeWallet {
	return &fakeWallet{clock: clock, reads: make(chan time.Time, 1000),
		debits: map[string]int{}, cancels: map[string]int{}}
}

func (f *fakeWallet) Provider() string { return events.ProviderMOGS }

func (f *fakeWallet) Balance(ctx context.Context, _ providers.Account) (providers.Balance, error) {
	f.reads <- f.clock.Now()
	f.mu.Lock()
	f.inflight++
	f.peak = max(f.peak, f.inflight)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight--
		f.mu.Unlock()
	}()
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return providers.Balance{}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return providers.Balance{Balance: 1000, CostSum: f.costSum}, nil
}

func (f *fakeWallet) Debit(_ context.Context, _ providers.Account, d providers.Debit) (providers.DebitReply, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.debits[d.BillNo]++
	if !f.hideDebits && f.debits[d.BillNo] == 1 {
		f.costSum += d.Amount
	}
	return providers.DebitReply{Class: providers.OK, BillNo: d.BillNo}, nil
}

func (f *fakeWallet) Cancel(_ context.Context, _ providers.Account, c providers.Cancel) (providers.CancelReply, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancels[c.BillNo]++
	return providers.CancelReply{Class: providers.OK, BillNo: c.BillNo}, nil
}

func (f *fakeWallet) Present(context.Context, providers.Account, providers.Present) (providers.PresentReply, error) {
	return providers.PresentReply{}, fmt.Errorf("present: not in these tests")
}

func (f *fakeWallet) calls() (debits, cancels int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.debits {
		debits += n
	}
	for _, n := range f.cancels {
		cancels += n
	}
	return debits, cancels
}

// fakeSUD takes every order and reports every action executed.
type fakeSUD struct{}

func (fakeSUD) CreateOrder(_ context.Context, req sud.CreateOrderRequest) (sud.CreateOrderReply, error) {
	return sud.CreateOrderReply{Class: providers.OK, OutOrderID: req.OutOrderID, OrderID: "sud-" + req.OutOrderID}, nil
}

func (fakeSUD) QueryOrder(_ context.Context, outOrderID string) (sud.Order, error) {
	return sud.Order{OutOrderID: outOrderID, OrderID: "sud-" + outOrderID, Status: sud.StatusExecuteSuccess}, nil
}

// schedEnv is a Worker's scheduler running on a temporary store.
type schedEnv struct {
	clock  *testclock.Clock
	wallet *fakeWallet
	store  *store.SQLite
	w      *Worker
}

func startScheduler(t *testing.T, concurrency int, configure func(*Config, *fakeWallet)) *schedEnv {
	t.Helper()
	clock := testclock.New(testclock.Start)
	st, err := store.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "orders.db"))
	if err != nil {
		t.Fatal(err)
	}
	wallet := newFakeWallet(clock)
	cfg := Config{Store: st, SUD: fakeSUD{}, Wallets: map[string]providers.Wallet{events.ProviderMOGS: wallet},
		Concurrency: concurrency, MaxSteps: concurrency, Now: clock.Now,
		ConfirmInterval: 15 * time.Second, ConfirmTimeout: time.Minute}
	if configure != nil {
		configure(&cfg, wallet)
	}
	w, err := newWorker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.ready.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.schedule(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if wallet.gate != nil {
			select {
			case <-wallet.gate:
			default:
				close(wallet.gate)
			}
		}
		w.steps.Wait()
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	return &schedEnv{clock: clock, wallet: wallet, store: st, w: w}
}

// add stores a new order for a MOGS intent of amount coins, due at due,
// and tells the scheduler the store holds new work.
func (e *schedEnv) add(t *testing.T, id string, due time.Time) {
	t.Helper()
	in := events.Intent{OutOrderID: id, OutGroupID: "g1", MgID: "1468180338417074177", RoomID: "9009",
		Cmd: "specify_dice_roll", FromUID: "001", ToUID: "002", Value: 100,
		Payload: json.RawMessage(`{"point":6}`),
		Payment: events.Payment{Provider: events.ProviderMOGS, Amount: 40, OpenID: "player-" + id,
			MOGS: &events.MOGSPayment{JSCode: "js", AppPlat: 1, OSPlatID: 1, PayItem: "dice"}}}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	o := store.Order{OutOrderID: id, MgID: in.MgID, RoomID: in.RoomID, FromUID: in.FromUID,
		Provider: events.ProviderMOGS, Amount: 40, Intent: data, IntentSubject: "coinsaga.intents.1468180338417074177.9009",
		BodyHash: in.Hash(), State: events.StateAccepted, Step: StepBaseline, Seq: 1, NextRunAt: due,
		CreatedAt: now, UpdatedAt: now}
	if _, err := e.store.Accept(t.Context(), []store.Accept{{Order: o, History: store.HistoryEntry{At: now, State: o.State, Step: "accept"}}}); err != nil {
		t.Fatal(err)
	}
	e.poke()
}

// poke wakes the scheduler as a commit or an accept would, so that it
// looks at the store and at the clock now rather than when its idle timer
// fires.
func (e *schedEnv) poke() {
	e.w.fresh.markStore()
	wake(e.w.wakeSched)
}

func (e *schedEnv) order(t *testing.T, id string) store.Order {
	t.Helper()
	o, err := e.store.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// eventually waits up to 10 s of real time for cond, checking it every
// millisecond: what it waits for happens on the scheduler's goroutines.
func (e *schedEnv) eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// nextRead waits for the wallet's next balance read and returns the
// clock's time when it started.
func (e *schedEnv) nextRead(t *testing.T, what string) time.Time {
	t.Helper()
	select {
	case at := <-e.wallet.reads:
		return at
	case <-time.After(10 * time.Second):
		t.Fatalf("no balance read within 10s: %s", what)
		return time.Time{}
	}
}

func TestSchedulerRunsTheOrdersThatAreDue(t *testing.T) {
	t.Parallel()
	e := startScheduler(t, 8, nil)
	t0 := e.clock.Now()
	due := []string{"due-1", "due-2", "due-3"}
	for _, id := range due {
		e.add(t, id, t0)
	}
	e.add(t, "later", t0.Add(time.Hour))

	t.Run("due orders run to completion", func(t *testing.T) {
		for _, id := range due {
			e.eventually(t, id+" completed", func() bool { return e.order(t, id).State == events.StateCompleted })
		}
		if debits, _ := e.wallet.calls(); debits != len(due) {
			t.Errorf("%d debits, want one per due order (%d)", debits, len(due))
		}
	})
	t.Run("an order not due yet is left alone", func(t *testing.T) {
		if o := e.order(t, "later"); o.State != events.StateAccepted || o.Attempt != 0 || o.Version != 1 {
			t.Errorf("the order due in an hour ran: %s at %s, attempt %d, version %d", o.State, o.Step, o.Attempt, o.Version)
		}
	})
	t.Run("it runs once the clock reaches its time", func(t *testing.T) {
		e.clock.Advance(time.Hour)
		e.poke()
		e.eventually(t, "later completed", func() bool { return e.order(t, "later").State == events.StateCompleted })
	})
}

func TestSchedulerKeepsToItsConcurrencyLimit(t *testing.T) {
	t.Parallel()
	const limit, orders = 8, 20
	e := startScheduler(t, limit, func(_ *Config, w *fakeWallet) { w.gate = make(chan struct{}) })
	t0 := e.clock.Now()
	ids := make([]string, orders)
	for i := range ids {
		ids[i] = fmt.Sprintf("o-%02d", i)
		e.add(t, ids[i], t0)
	}
	// A quarter of the slots is kept for confirmation polls, which no
	// order has reached yet: the orders' own steps fill the rest.
	work := limit - limit/4
	for range work {
		e.nextRead(t, "a baseline read")
	}
	e.poke() // a wake while the slots are full starts nothing
	inflight := func() int {
		e.wallet.mu.Lock()
		defer e.wallet.mu.Unlock()
		return e.wallet.inflight
	}
	e.eventually(t, "the slots the work may use are full", func() bool { return inflight() == work && e.w.workRoom() == 0 })
	if used := e.w.slots.used(); used != work || len(e.wallet.reads) != 0 {
		t.Fatalf("%d slots in use and %d more reads with %d orders due, want %d (%d slots, %d kept for polls)",
			used, len(e.wallet.reads), orders, work, limit, limit/4)
	}
	e.wallet.mu.Lock()
	gatedPeak := e.wallet.peak
	e.wallet.mu.Unlock()
	if gatedPeak != work {
		t.Errorf("%d baseline reads at once, want %d", gatedPeak, work)
	}
	close(e.wallet.gate)
	for _, id := range ids {
		e.eventually(t, id+" completed", func() bool { return e.order(t, id).State == events.StateCompleted })
	}
	e.wallet.mu.Lock()
	defer e.wallet.mu.Unlock()
	if e.wallet.peak > limit {
		t.Errorf("%d balance reads at once, more than the %d slots", e.wallet.peak, limit)
	}
}

func TestSchedulerDoesNotRerunACommittedOrder(t *testing.T) {
	t.Parallel()
	e := startScheduler(t, 4, nil)
	t0 := e.clock.Now()
	e.add(t, "o-1", t0)
	e.eventually(t, "o-1 completed", func() bool { return e.order(t, "o-1").State == events.StateCompleted })
	e.eventually(t, "o-1's last step let go of it", func() bool { return !e.w.isRunning("o-1") })
	debits, _ := e.wallet.calls()
	reads := len(e.wallet.reads)

	// A row read before the order's last commit, as a Due batch or a
	// handoff may still hold one: it says the baseline is due.
	stale := e.order(t, "o-1")
	stale.State, stale.Step, stale.NextRunAt, stale.Version = events.StateAccepted, StepBaseline, t0, 1
	readAt := t0.Add(-time.Second)
	if !e.w.tryStart(stale, readAt) {
		t.Fatal("no slot for the stale row")
	}
	e.w.steps.Wait()
	if got, _ := e.wallet.calls(); got != debits || len(e.wallet.reads) != reads {
		t.Errorf("the stale row ran again: %d debits (was %d), %d balance reads (was %d)", got, debits, len(e.wallet.reads), reads)
	}
	if o := e.order(t, "o-1"); o.State != events.StateCompleted {
		t.Errorf("order now %s at %s", o.State, o.Step)
	}
}

func TestSchedulerPollsTheConfirmationAtTheIntervalAndGivesUpAtTheTimeout(t *testing.T) {
	t.Parallel()
	e := startScheduler(t, 4, func(c *Config, w *fakeWallet) { w.hideDebits = true })
	t0 := e.clock.Now()
	e.add(t, "o-1", t0)
	reads := []time.Time{e.nextRead(t, "the baseline"), e.nextRead(t, "the first poll, right after the pay")}
	for _, at := range []time.Duration{15 * time.Second, 30 * time.Second, 45 * time.Second, time.Minute} {
		e.eventually(t, fmt.Sprintf("the poll at +%s scheduled", at), func() bool {
			next, ok := e.w.waiting.next()
			return ok && next.Equal(t0.Add(at))
		})
		if o := e.order(t, "o-1"); o.State != events.StateDebited || o.Step != StepConfirm {
			t.Fatalf("order %s at %s while its debit should be polled for", o.State, o.Step)
		}
		e.clock.Advance(15 * time.Second)
		e.poke()
		reads = append(reads, e.nextRead(t, fmt.Sprintf("the poll at +%s", at)))
	}
	e.eventually(t, "o-1 compensated", func() bool { return e.order(t, "o-1").State == events.StateCompensated })

	want := []time.Time{t0, t0, t0.Add(15 * time.Second), t0.Add(30 * time.Second), t0.Add(45 * time.Second), t0.Add(time.Minute)}
	if !slices.EqualFunc(reads, want, time.Time.Equal) {
		t.Errorf("balance reads at %v, want %v", reads, want)
	}
	if o := e.order(t, "o-1"); o.ErrorCode != codeConfirmTimeout {
		t.Errorf("compensated with code %q, want %q", o.ErrorCode, codeConfirmTimeout)
	}
	if debits, cancels := e.wallet.calls(); debits != 1 || cancels != 1 {
		t.Errorf("%d debits and %d cancels, want one of each", debits, cancels)
	}
	if _, waiting := e.w.waiting.next(); waiting {
		t.Error("the compensated order still waits for a poll")
	}
}
