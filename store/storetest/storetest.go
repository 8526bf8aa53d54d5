// Package storetest is the conformance suite every store.Store
// implementation must pass. An implementation's own test calls Run with a
// function that opens a fresh, empty store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
//	}
//
// Run closes each store when its subtest ends; open must not register its
// own Close. RunShared runs the cases of two handles on one database, and
// RunOwnership those of the ownership seam (store.Shared) with two
// registered workers. Times in the suite are at millisecond precision, the coarsest
// a Store may keep.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/store"

	"github.com/coinsaga/coinsaga/internal/orderstate"
)

// Run runs every conformance test against stores made by open.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []testCase[func(t *testing.T, s store.Store)]{
		{"an accepted order reads back with every field intact", testAcceptRoundTrip},
		{"accept creates an order once and reports the existing order on a second accept", testAcceptTwice},
		{"accept reports a duplicate within the same call as the existing order", testAcceptSameCall},
		{"concurrent accepts of one order create it exactly once", testAcceptConcurrent},
		{"apply bumps the version and returns the order as a read returns it", testApply},
		{"apply returns the fields fixed at accept as stored, however little of them From and To carry", testApplyBareFrom},
		{"apply with a stale version is refused and writes no history or outbox", testApplyStale},
		{"apply to an unknown order is refused", testApplyUnknown},
		{"concurrent applies on one order let exactly one win", testApplyRace},
		{"concurrent applies from 50 goroutines on different orders all commit", testApplyConcurrent},
		{"outbox messages come back in insertion order with headers and bytes intact and disappear after DeleteOutbox", testOutbox},
		{"due respects time, limit, ordering and exclude", testDue},
		{"due skips any number of excluded orders to fill the limit", testDueExcludeMany},
		{"due by step returns only those steps, soonest first, however many orders wait at other steps", testDueBySteps},
		{"terminal orders are never due", testTerminalNeverDue},
		{"next due reports the earliest scheduled time and nothing when none is scheduled", testNextDue},
		{"history is append-only and ordered", testHistory},
		{"a transition covering several steps keeps a line per step, in order", testHistoryLinesOfOneTransition},
		{"reads of an unknown order report not found", testNotFound},
		{"prune removes only old terminal orders and their history", testPrune},
		{"stats count orders by state, scheduled orders by step and the outbox", testStats},
		{"a closed store refuses writes", testClosed},
	}
	runParallel(t, tests, func(t *testing.T, run func(*testing.T, store.Store)) {
		s := open(t)
		t.Cleanup(func() {
			if err := s.Close(); err != nil && !closedByTest(t) {
				t.Errorf("close: %v", err)
			}
		})
		run(t, s)
	})
}

var closedTests sync.Map // *testing.T -> true, for tests that close the store themselves

func closedByTest(t *testing.T) bool { _, ok := closedTests.Load(t); return ok }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// terminalStates are the states after which no step runs
// (events.State.Terminal), from the one list of states.
var terminalStates = func() []string {
	var names []string
	for _, s := range orderstate.TerminalStates() {
		names = append(names, string(s))
	}
	return names
}()

// now is the suite's reference time, at the precision every store keeps.
func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// Order returns a plausible freshly accepted order scheduled at runAt.
// Exported for implementations' benchmarks.
func Order(id string, runAt time.Time) store.Order {
	return store.Order{
		OutOrderID: id, MgID: "1468180338417074177", RoomID: "9009", FromUID: "001",
		Provider: "mogs", Amount: 100,
		Intent:        Intent(id),
		IntentSubject: "coinsaga.intents.1468180338417074177.9009",
		BodyHash:      fmt.Sprintf("%064x", len(id)) + id,
		State:         "accepted", Step: "order", Seq: 1,
		NextRunAt: runAt,
	}
}

// Intent is an intent body of a realistic size (about 560 bytes).
func Intent(id string) []byte {
	return []byte(`{"out_order_id":"` + id + `","out_group_id":"1659497694","mg_id":"1468180338417074177",` +
		`"room_id":"9009","cmd":"specify_dice_roll","from_uid":"001","to_uid":"002","value":100,` +
		`"payload":{"point":6,"seq":1},"payment":{"provider":"mogs","amount":100,"openid":"opvxI4y_cVJx2pxsFCQrJ4FZB5gk",` +
		`"mogs":{"js_code":"0a3Xk2ll2Bz1Yb0dQ0ml2E7mQ24Xk2lq","app_plat":1,"os_plat_id":1,"session_key":"","pay_item":"dice"},` +
		`"midas":{"openkey":"2F1C58B7D1A1C4B8E0A3F6B2D9C7E1A4","pf":"desktop_m_qq-73213123-android-73213123-qq-1105929185-1","pfkey":"5b0a2ac3e1d4bd9f","zoneid":"1","session_type":"kp_actoken","userip":"","accounttype":"common"}}}`)
}

// canon puts an order in a form reflect.DeepEqual can compare across
// stores: UTC times without monotonic readings, nil for empty bytes.
func canon(o store.Order) store.Order {
	fix := func(t time.Time) time.Time {
		if t.IsZero() {
			return time.Time{}
		}
		return t.UTC().Round(0)
	}
	o.NextRunAt, o.DebitedAt = fix(o.NextRunAt), fix(o.DebitedAt)
	o.OrderedAt, o.FirstPayAt = fix(o.OrderedAt), fix(o.FirstPayAt)
	o.CreatedAt, o.UpdatedAt = fix(o.CreatedAt), fix(o.UpdatedAt)
	if len(o.Intent) == 0 {
		o.Intent = nil
	}
	return o
}

func sameOrder(t *testing.T, what string, got, want store.Order) {
	t.Helper()
	if g, w := canon(got), canon(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got  %+v\n want %+v", what, g, w)
	}
}

func acceptOne(t *testing.T, s store.Store, o store.Order, msgs ...store.Message) store.Order {
	t.Helper()
	res, err := s.Accept(ctx(t), []store.Accept{{
		Order:   o,
		History: store.HistoryEntry{At: now(), State: o.State, Step: o.Step, Detail: "accepted"},
		Outbox:  msgs,
	}})
	if err != nil {
		t.Fatalf("accept %s: %v", o.OutOrderID, err)
	}
	if len(res) != 1 || !res[0].Created {
		t.Fatalf("accept %s: got %+v, want created", o.OutOrderID, res)
	}
	got, err := s.Get(ctx(t), o.OutOrderID)
	if err != nil {
		t.Fatalf("get %s after accept: %v", o.OutOrderID, err)
	}
	return got
}

// step applies change to from, with a history line saying detail.
func step(t *testing.T, s store.Store, from store.Order, detail string, change func(*store.Order), msgs ...store.Message) store.Order {
	t.Helper()
	to := from
	change(&to)
	got, err := s.Apply(ctx(t), store.Transition{
		From: from, To: to,
		History: []store.HistoryEntry{{At: now(), State: to.State, Step: to.Step, Attempt: to.Attempt, Detail: detail}},
		Outbox:  msgs,
	})
	if err != nil {
		t.Fatalf("apply %s (%s): %v", from.OutOrderID, detail, err)
	}
	return got
}

func complete(o *store.Order) {
	o.State, o.Step, o.Seq, o.NextRunAt = "completed", "done", o.Seq+1, time.Time{}
}

func pending(t *testing.T, s store.Store) []store.Message {
	t.Helper()
	msgs, err := s.PendingOutbox(ctx(t), 0, 1000)
	if err != nil {
		t.Fatalf("pending outbox: %v", err)
	}
	return msgs
}

func history(t *testing.T, s store.Store, id string) []store.HistoryEntry {
	t.Helper()
	h, err := s.History(ctx(t), id)
	if err != nil {
		t.Fatalf("history %s: %v", id, err)
	}
	return h
}

func ids(orders []store.Order) []string {
	out := make([]string, len(orders))
	for i, o := range orders {
		out[i] = o.OutOrderID
	}
	return out
}

func testAcceptRoundTrip(t *testing.T, s store.Store) {
	at := now()
	o := store.Order{
		OutOrderID: "o-all", MgID: "mg", RoomID: "room", FromUID: "uid", Provider: "midas", Amount: 2147483647,
		Intent: []byte{0, 1, 2, 0xff, '{'}, IntentSubject: "coinsaga.intents.mg.room", BodyHash: "hash",
		State: "debited", Step: "confirm", Seq: 3, Attempt: 2, NextRunAt: at.Add(time.Minute),
		SudOrderID: "sud-1", BillNo: "bill-1", PayGeneration: 2,
		HasBaseline: true, BaselineBalance: -5, BaselineSaveAmt: 7, BaselineCostSum: 1 << 40,
		HasPayBalance: true, PayBalance: 900, UsedGenAmt: 11, DebitedAt: at.Add(-time.Second),
		SudStatus: "EXECUTING", OrderedAt: at.Add(-3 * time.Second), FirstPayAt: at.Add(-2 * time.Second), PayUnknown: true,
		BaselineGenBalance: 13, ErrorCode: "code", Error: "message", CreatedAt: at.Add(-time.Hour),
	}
	before := time.Now().Add(-time.Second)
	got := acceptOne(t, s, o)
	if got.Version < 1 {
		t.Errorf("version after accept = %d, want >= 1", got.Version)
	}
	if got.UpdatedAt.Before(before) {
		t.Errorf("UpdatedAt %v is not the time of the accept", got.UpdatedAt)
	}
	want := o
	want.Version, want.UpdatedAt = got.Version, got.UpdatedAt
	sameOrder(t, "order read after accept", got, want)
}

func testAcceptTwice(t *testing.T, s store.Store) {
	o := Order("o-1", now())
	first := acceptOne(t, s, o, store.Message{Subject: "coinsaga.status.a", MsgID: "o-1:1", Data: []byte("accepted")})

	again := Order("o-1", now().Add(time.Hour))
	again.BodyHash = "another body"
	res, err := s.Accept(ctx(t), []store.Accept{{
		Order:   again,
		History: store.HistoryEntry{State: "accepted", Detail: "second"},
		Outbox:  []store.Message{{Subject: "coinsaga.status.a", MsgID: "o-1:1-again", Data: []byte("dup")}},
	}})
	if err != nil {
		t.Fatalf("second accept: %v", err)
	}
	if len(res) != 1 || res[0].Created {
		t.Fatalf("second accept: got %+v, want not created", res)
	}
	sameOrder(t, "existing order reported by the second accept", res[0].Existing, first)
	if got, _ := s.Get(ctx(t), "o-1"); got.BodyHash != o.BodyHash {
		t.Errorf("stored body hash = %q after second accept, want the first %q", got.BodyHash, o.BodyHash)
	}
	if h := history(t, s, "o-1"); len(h) != 1 {
		t.Errorf("history has %d lines after a duplicate accept, want 1", len(h))
	}
	if msgs := pending(t, s); len(msgs) != 1 || msgs[0].MsgID != "o-1:1" {
		t.Errorf("outbox after a duplicate accept = %+v, want only the first accept's message", msgs)
	}
}

func testAcceptSameCall(t *testing.T, s store.Store) {
	a, dup, b := Order("o-a", now()), Order("o-a", now()), Order("o-b", now())
	dup.BodyHash = "other"
	res, err := s.Accept(ctx(t), []store.Accept{
		{Order: a, History: store.HistoryEntry{State: "accepted"}, Outbox: []store.Message{{Subject: "s", MsgID: "a"}}},
		{Order: dup, History: store.HistoryEntry{State: "accepted"}, Outbox: []store.Message{{Subject: "s", MsgID: "dup"}}},
		{Order: b, History: store.HistoryEntry{State: "accepted"}, Outbox: []store.Message{{Subject: "s", MsgID: "b"}}},
	})
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	if len(res) != 3 {
		t.Fatalf("accept returned %d results for 3 requests", len(res))
	}
	if !res[0].Created || res[1].Created || !res[2].Created {
		t.Fatalf("created = %v %v %v, want true false true", res[0].Created, res[1].Created, res[2].Created)
	}
	if res[1].Existing.OutOrderID != "o-a" || res[1].Existing.BodyHash != a.BodyHash {
		t.Errorf("duplicate reported existing %+v, want the first request's order", res[1].Existing)
	}
	var got []string
	for _, m := range pending(t, s) {
		got = append(got, m.MsgID)
	}
	if want := []string{"a", "b"}; !slices.Equal(got, want) {
		t.Errorf("outbox msg ids = %v, want %v", got, want)
	}
}

func testAcceptConcurrent(t *testing.T, s store.Store) {
	const callers = 20
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created int
		errs    []error
	)
	for i := range callers {
		wg.Go(func() {
			o := Order("o-same", now())
			o.BodyHash = fmt.Sprint("caller-", i)
			res, err := s.Accept(ctx(t), []store.Accept{{Order: o, History: store.HistoryEntry{State: "accepted"}}})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			if res[0].Created {
				created++
			} else if res[0].Existing.OutOrderID != "o-same" {
				errs = append(errs, fmt.Errorf("existing order %+v", res[0].Existing))
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("accept errors: %v", errs)
	}
	if created != 1 {
		t.Errorf("%d of %d concurrent accepts created the order, want exactly 1", created, callers)
	}
	if h := history(t, s, "o-same"); len(h) != 1 {
		t.Errorf("history has %d lines, want 1", len(h))
	}
}

func testApply(t *testing.T, s store.Store) {
	o := acceptOne(t, s, Order("o-1", now()))
	debitedAt := now()
	got := step(t, s, o, "pay ok", func(o *store.Order) {
		o.State, o.Step, o.Seq, o.Attempt = "debited", "confirm", 2, 0
		o.SudOrderID, o.BillNo, o.HasPayBalance, o.PayBalance, o.DebitedAt = "sud", "bill", true, 900, debitedAt
		o.NextRunAt = debitedAt.Add(15 * time.Second)
	})
	if got.Version != o.Version+1 {
		t.Errorf("version = %d, want %d", got.Version, o.Version+1)
	}
	if got.UpdatedAt.Before(o.UpdatedAt) {
		t.Errorf("UpdatedAt went back from %v to %v", o.UpdatedAt, got.UpdatedAt)
	}
	if !got.CreatedAt.Equal(o.CreatedAt) {
		t.Errorf("CreatedAt changed from %v to %v", o.CreatedAt, got.CreatedAt)
	}
	if got.State != "debited" || got.BillNo != "bill" || !got.DebitedAt.Equal(debitedAt) || !bytes.Equal(got.Intent, o.Intent) {
		t.Errorf("applied order = %+v, want the transition's To", got)
	}
	read, err := s.Get(ctx(t), "o-1")
	if err != nil {
		t.Fatal(err)
	}
	sameOrder(t, "order read after apply vs apply's result", read, got)
}

func testApplyBareFrom(t *testing.T, s store.Store) {
	o := acceptOne(t, s, Order("o-1", now()))
	to := o
	to.State, to.Step, to.Seq = "ordered", "baseline", 2
	to.Intent, to.IntentSubject, to.BodyHash, to.CreatedAt = nil, "", "", time.Time{}
	got, err := s.Apply(ctx(t), store.Transition{
		From:    store.Order{OutOrderID: o.OutOrderID, Version: o.Version},
		To:      to,
		History: []store.HistoryEntry{{State: to.State, Step: "order", Attempt: 1, Detail: "SUD order 1"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Intent, o.Intent) || got.IntentSubject != o.IntentSubject || got.BodyHash != o.BodyHash || !got.CreatedAt.Equal(o.CreatedAt) {
		t.Errorf("apply returned accept-time fields %q %q %q %v, want those stored: %q %q %q %v",
			got.Intent, got.IntentSubject, got.BodyHash, got.CreatedAt, o.Intent, o.IntentSubject, o.BodyHash, o.CreatedAt)
	}
	read, err := s.Get(ctx(t), o.OutOrderID)
	if err != nil {
		t.Fatal(err)
	}
	sameOrder(t, "order read after apply vs apply's result", read, got)
}

func testApplyStale(t *testing.T, s store.Store) {
	o := acceptOne(t, s, Order("o-1", now()), store.Message{Subject: "s", MsgID: "o-1:1"})
	moved := step(t, s, o, "ordered", func(o *store.Order) { o.State, o.Step, o.Seq = "ordered", "debit", 2 },
		store.Message{Subject: "s", MsgID: "o-1:2"})

	_, err := s.Apply(ctx(t), store.Transition{
		From:    o, // the version before "ordered"
		To:      store.Order{OutOrderID: "o-1", State: "failed", Step: "done", Seq: 2},
		History: []store.HistoryEntry{{State: "failed", Detail: "stale"}},
		Outbox:  []store.Message{{Subject: "s", MsgID: "stale"}},
	})
	if !errors.Is(err, store.ErrStale) {
		t.Fatalf("apply from an old version: err = %v, want ErrStale", err)
	}
	got, err := s.Get(ctx(t), "o-1")
	if err != nil {
		t.Fatal(err)
	}
	sameOrder(t, "order after a refused apply", got, moved)
	if h := history(t, s, "o-1"); len(h) != 2 || h[1].Detail != "ordered" {
		t.Errorf("history after a refused apply = %+v, want accept and ordered only", h)
	}
	for _, m := range pending(t, s) {
		if m.MsgID == "stale" {
			t.Errorf("the refused apply's outbox message was written")
		}
	}
}

func testApplyUnknown(t *testing.T, s store.Store) {
	o := Order("o-ghost", now())
	o.Version = 1
	_, err := s.Apply(ctx(t), store.Transition{From: o, To: o, History: []store.HistoryEntry{{State: "x"}}})
	if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrStale) {
		t.Fatalf("apply to an unknown order: err = %v, want ErrNotFound or ErrStale", err)
	}
	if _, err := s.Get(ctx(t), "o-ghost"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("apply to an unknown order created it: get err = %v", err)
	}
}

func testApplyRace(t *testing.T, s store.Store) {
	o := acceptOne(t, s, Order("o-1", now()))
	const racers = 10
	race := applyRace(t, o, []store.Store{s}, racers, func(_, i int) string { return fmt.Sprint("state-", i) }, false)
	won, stale, winnerState, unexpected := race.won, race.stale, race.winner, race.unexpected
	if len(unexpected) > 0 {
		t.Fatalf("unexpected errors: %v", unexpected)
	}
	if won != 1 || stale != racers-1 {
		t.Fatalf("won %d, stale %d; want 1 and %d", won, stale, racers-1)
	}
	got, _ := s.Get(ctx(t), "o-1")
	if got.State != winnerState || got.Version != o.Version+1 {
		t.Errorf("stored state %q version %d, want the winner's %q at version %d", got.State, got.Version, winnerState, o.Version+1)
	}
	if h := history(t, s, "o-1"); len(h) != 2 {
		t.Errorf("history has %d lines, want accept + the winner", len(h))
	}
}

func testApplyConcurrent(t *testing.T, s store.Store) {
	const workers = 50
	const steps = 4
	orders := make([]store.Order, workers)
	reqs := make([]store.Accept, workers)
	for i := range reqs {
		reqs[i] = store.Accept{Order: Order(fmt.Sprint("o-", i), now()), History: store.HistoryEntry{State: "accepted"}}
	}
	if _, err := s.Accept(ctx(t), reqs); err != nil {
		t.Fatalf("accept: %v", err)
	}
	for i := range orders {
		o, err := s.Get(ctx(t), fmt.Sprint("o-", i))
		if err != nil {
			t.Fatal(err)
		}
		orders[i] = o
	}
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for i := range workers {
		wg.Go(func() {
			o := orders[i]
			for n := range steps {
				to := o
				to.Seq++
				to.Attempt = n
				next, err := s.Apply(ctx(t), store.Transition{
					From: o, To: to,
					History: []store.HistoryEntry{{State: to.State, Detail: fmt.Sprint("step ", n)}},
					Outbox:  []store.Message{{Subject: "s", MsgID: fmt.Sprintf("%s:%d", o.OutOrderID, to.Seq)}},
				})
				if err != nil {
					errs[i] = fmt.Errorf("%s step %d: %w", o.OutOrderID, n, err)
					return
				}
				o = next
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for i := range workers {
		id := fmt.Sprint("o-", i)
		got, err := s.Get(ctx(t), id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != orders[i].Version+steps || got.Seq != 1+steps {
			t.Errorf("%s: version %d seq %d, want %d and %d", id, got.Version, got.Seq, orders[i].Version+steps, 1+steps)
		}
		if h := history(t, s, id); len(h) != 1+steps {
			t.Errorf("%s: %d history lines, want %d", id, len(h), 1+steps)
		}
	}
	if msgs := pending(t, s); len(msgs) != workers*steps {
		t.Errorf("outbox holds %d messages, want %d", len(msgs), workers*steps)
	}
}

func testOutbox(t *testing.T, s store.Store) {
	if msgs := pending(t, s); len(msgs) != 0 {
		t.Fatalf("a new store has %d outbox messages", len(msgs))
	}
	binary := []byte{0, 0xff, 0xfe, '\n', 0, 'x'}
	m1 := store.Message{Subject: "coinsaga.status.mg.room.o-1", MsgID: "o-1:1",
		Header: map[string]string{"Nats-Msg-Id": "o-1:1", "Coinsaga-State": "accepted"}, Data: []byte(`{"seq":1}`)}
	m2 := store.Message{Subject: "coinsaga.dlq.mg.room.o-1", MsgID: "o-1:dlq", Data: binary,
		Header: map[string]string{"Coinsaga-Reason": "rejected", "Coinsaga-Error": "引号 \"quoted\"\n"}}
	m3 := store.Message{Subject: "coinsaga.status.mg.room.o-1", MsgID: "o-1:2", Data: []byte(`{"seq":2}`)}
	m4 := store.Message{Subject: "coinsaga.status.mg.room.o-2", MsgID: "o-2:1", Data: []byte(`{"seq":1}`)}

	o := acceptOne(t, s, Order("o-1", now()), m1, m2)
	step(t, s, o, "ordered", func(o *store.Order) { o.State = "ordered" }, m3)
	acceptOne(t, s, Order("o-2", now()), m4)

	got := pending(t, s)
	want := []store.Message{m1, m2, m3, m4}
	if len(got) != len(want) {
		t.Fatalf("pending = %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		w.ID = g.ID
		if len(w.Header) == 0 && len(g.Header) == 0 {
			g.Header, w.Header = nil, nil
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("message %d:\n got  %+v\n want %+v", i, g, w)
		}
		if i > 0 && got[i].ID <= got[i-1].ID {
			t.Errorf("message ids not increasing: %d after %d", got[i].ID, got[i-1].ID)
		}
	}

	if after, err := s.PendingOutbox(ctx(t), got[1].ID, 10); err != nil || len(after) != 2 || after[0].MsgID != "o-1:2" || after[1].MsgID != "o-2:1" {
		t.Fatalf("pending after the second message = %+v, %v; want the last two", after, err)
	}
	first, err := s.PendingOutbox(ctx(t), 0, 2)
	if err != nil || len(first) != 2 || first[0].MsgID != "o-1:1" || first[1].MsgID != "o-1:dlq" {
		t.Fatalf("pending with limit 2 = %+v, %v; want the two oldest", first, err)
	}
	if err := s.DeleteOutbox(ctx(t), []int64{first[0].ID, first[1].ID}); err != nil {
		t.Fatalf("delete outbox: %v", err)
	}
	rest := pending(t, s)
	if len(rest) != 2 || rest[0].MsgID != "o-1:2" || rest[1].MsgID != "o-2:1" {
		t.Fatalf("pending after delete = %+v, want o-1:2 and o-2:1", rest)
	}
	// A relay that crashed after deleting retries the delete.
	if err := s.DeleteOutbox(ctx(t), []int64{first[0].ID, rest[0].ID, rest[1].ID}); err != nil {
		t.Fatalf("delete with an already deleted id: %v", err)
	}
	if left := pending(t, s); len(left) != 0 {
		t.Fatalf("pending after deleting everything = %+v", left)
	}
	if err := s.DeleteOutbox(ctx(t), nil); err != nil {
		t.Errorf("delete of no ids: %v", err)
	}

	// Ids are never reused, so a relay cannot delete a new message by an
	// old id.
	acceptOne(t, s, Order("o-3", now()), store.Message{Subject: "s", MsgID: "o-3:1"})
	if fresh := pending(t, s); len(fresh) != 1 || fresh[0].ID <= got[len(got)-1].ID {
		t.Errorf("new message after deletes = %+v, want an id above %d", fresh, got[len(got)-1].ID)
	}
}

func testDue(t *testing.T, s store.Store) {
	base := now()
	schedule := []struct {
		id    string
		runAt time.Time
	}{
		{"o-late", base.Add(time.Minute)},
		{"o-2", base.Add(-2 * time.Minute)},
		{"o-now", base},
		{"o-1", base.Add(-3 * time.Minute)},
		{"o-3", base.Add(-time.Minute)},
	}
	for _, sc := range schedule {
		acceptOne(t, s, Order(sc.id, sc.runAt))
	}
	tests := []struct {
		name    string
		at      time.Time
		limit   int
		exclude func(string) bool
		want    []string
	}{
		{"all due orders, soonest first", base, 10, nil, []string{"o-1", "o-2", "o-3", "o-now"}},
		{"limit keeps the soonest", base, 2, nil, []string{"o-1", "o-2"}},
		{"exclude skips running orders and still fills the limit", base, 2,
			func(id string) bool { return id == "o-1" || id == "o-3" }, []string{"o-2", "o-now"}},
		{"nothing before the earliest time", base.Add(-4 * time.Minute), 10, nil, nil},
		{"the future order once its time comes", base.Add(time.Hour), 10, nil, []string{"o-1", "o-2", "o-3", "o-now", "o-late"}},
		{"zero limit returns nothing", base, 0, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Due(ctx(t), tc.at, tc.limit, nil, tc.exclude)
			if err != nil {
				t.Fatalf("due: %v", err)
			}
			if !slices.Equal(ids(got), tc.want) {
				t.Errorf("due = %v, want %v", ids(got), tc.want)
			}
		})
	}
	got, _ := s.Due(ctx(t), base, 1, nil, nil)
	if len(got) == 1 {
		want, _ := s.Get(ctx(t), got[0].OutOrderID)
		sameOrder(t, "due order vs a read of it", got[0], want)
	}
}

func testDueExcludeMany(t *testing.T, s store.Store) {
	base := now()
	reqs := make([]store.Accept, 60)
	for i := range reqs {
		reqs[i] = store.Accept{
			Order:   Order(fmt.Sprintf("o-%02d", i), base.Add(time.Duration(i-100)*time.Second)),
			History: store.HistoryEntry{State: "accepted"},
		}
	}
	if _, err := s.Accept(ctx(t), reqs); err != nil {
		t.Fatal(err)
	}
	running := func(id string) bool { return id < "o-50" }
	got, err := s.Due(ctx(t), base, 3, nil, running)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"o-50", "o-51", "o-52"}; !slices.Equal(ids(got), want) {
		t.Errorf("due with 50 running = %v, want %v", ids(got), want)
	}
	got, err = s.Due(ctx(t), base, 20, nil, running)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 10 {
		t.Errorf("due with 50 of 60 running and limit 20 = %d orders, want 10", len(got))
	}
}

func testTerminalNeverDue(t *testing.T, s store.Store) {
	past := now().Add(-time.Hour)
	for _, state := range terminalStates {
		o := acceptOne(t, s, Order("o-"+state, past))
		step(t, s, o, state, func(o *store.Order) { o.State, o.Step, o.NextRunAt = orderstate.State(state), "done", time.Time{} })
	}
	got, err := s.Due(ctx(t), now().Add(24*time.Hour), 100, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("due returned terminal orders %v", ids(got))
	}
	if at, ok, err := s.NextDue(ctx(t), nil); err != nil || ok {
		t.Errorf("next due = %v, %v, %v; want nothing scheduled", at, ok, err)
	}
	o, _ := s.Get(ctx(t), "o-completed")
	if !o.NextRunAt.IsZero() {
		t.Errorf("terminal order reads back NextRunAt %v, want zero", o.NextRunAt)
	}
}

func testNextDue(t *testing.T, s store.Store) {
	if at, ok, err := s.NextDue(ctx(t), nil); err != nil || ok {
		t.Fatalf("next due on an empty store = %v, %v, %v", at, ok, err)
	}
	base := now()
	acceptOne(t, s, Order("o-later", base.Add(time.Hour)))
	first := acceptOne(t, s, Order("o-sooner", base.Add(time.Minute)))
	at, ok, err := s.NextDue(ctx(t), nil)
	if err != nil || !ok || !at.Equal(base.Add(time.Minute)) {
		t.Fatalf("next due = %v, %v, %v; want %v", at, ok, err, base.Add(time.Minute))
	}
	step(t, s, first, "done", complete)
	at, ok, err = s.NextDue(ctx(t), nil)
	if err != nil || !ok || !at.Equal(base.Add(time.Hour)) {
		t.Fatalf("next due after completing the sooner = %v, %v, %v; want %v", at, ok, err, base.Add(time.Hour))
	}
}

func testDueBySteps(t *testing.T, s store.Store) {
	base := now()
	// Many orders wait in confirmation, due earlier than one new order.
	for i := 0; i < 40; i++ {
		o := Order(fmt.Sprintf("wait-%02d", i), base.Add(time.Duration(i)*time.Millisecond))
		o.Step = "confirm"
		acceptOne(t, s, o)
	}
	fresh := Order("new", base.Add(time.Second))
	fresh.Step = "order"
	acceptOne(t, s, fresh)
	retry := Order("retry", base.Add(500*time.Millisecond))
	retry.Step = "pay"
	acceptOne(t, s, retry)
	at := base.Add(time.Minute)

	got, err := s.Due(ctx(t), at, 5, []orderstate.Step{"order", "pay"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].OutOrderID != "retry" || got[1].OutOrderID != "new" {
		t.Errorf("due at order and pay = %v, want retry then new", ids(got))
	}
	got, err = s.Due(ctx(t), at, 3, []orderstate.Step{"confirm"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].OutOrderID != "wait-00" || got[2].OutOrderID != "wait-02" {
		t.Errorf("due at confirm = %v, want the three soonest waiting orders", ids(got))
	}
	if got, err := s.Due(ctx(t), at, 100, nil, nil); err != nil || len(got) != 42 {
		t.Errorf("due at any step = %d orders, %v; want all 42", len(got), err)
	}
	if next, ok, err := s.NextDue(ctx(t), []orderstate.Step{"order", "pay"}); err != nil || !ok || !next.Equal(base.Add(500*time.Millisecond)) {
		t.Errorf("next due at order and pay = %v, %v, %v; want the retry's %v", next, ok, err, base.Add(500*time.Millisecond))
	}
	if next, ok, err := s.NextDue(ctx(t), []orderstate.Step{"confirm"}); err != nil || !ok || !next.Equal(base) {
		t.Errorf("next due at confirm = %v, %v, %v; want the first waiting order's %v", next, ok, err, base)
	}
	if _, ok, err := s.NextDue(ctx(t), []orderstate.Step{"cancel"}); err != nil || ok {
		t.Errorf("next due at a step nobody is at = %v, %v; want nothing", ok, err)
	}
}

func testHistoryLinesOfOneTransition(t *testing.T, s store.Store) {
	base := now()
	o := acceptOne(t, s, Order("o-1", base))
	steps := []store.HistoryEntry{
		{At: base.Add(time.Second), State: "ordered", Step: "order", Attempt: 1, Detail: "SUD order sud-1"},
		{At: base.Add(time.Second), State: "ordered", Step: "baseline", Attempt: 1, Detail: "baseline balance 1000"},
	}
	to := o
	to.State, to.Step = "ordered", "pay"
	next, err := s.Apply(ctx(t), store.Transition{From: o, To: to, History: steps})
	if err != nil {
		t.Fatal(err)
	}
	if next.Version != o.Version+1 {
		t.Errorf("version %d, want one more than %d for the whole transition", next.Version, o.Version)
	}
	got := history(t, s, "o-1")
	if len(got) != 3 || got[1].Detail != steps[0].Detail || got[2].Detail != steps[1].Detail {
		t.Fatalf("history %+v, want the accept then both steps in order", got)
	}
}

func testHistory(t *testing.T, s store.Store) {
	base := now()
	o := acceptOne(t, s, Order("o-1", base))
	lines := []store.HistoryEntry{
		{At: base.Add(time.Second), State: "ordered", Step: "debit", Detail: "sud order sud-1"},
		{At: base.Add(2 * time.Second), State: "ordered", Step: "debit", Attempt: 1, ErrorCode: "timeout", Error: "pay: deadline exceeded"},
		{At: base.Add(3 * time.Second), State: "debited", Step: "confirm", Detail: "pay ok, balance 900"},
		// Provider messages end up in history as they came: quotes,
		// backslashes, control characters and Chinese must come back intact.
		{At: base.Add(4 * time.Second), State: "debited", Step: "confirm", Attempt: 2, ErrorCode: "busy",
			Error: "ret=1018 msg=\"系统繁忙\"\tpath=C:\\x\r\n\x01end", Detail: `{"balance":900}`},
	}
	for _, h := range lines {
		to := o
		to.State, to.Step, to.Attempt = h.State, h.Step, h.Attempt
		next, err := s.Apply(ctx(t), store.Transition{From: o, To: to, History: []store.HistoryEntry{h}})
		if err != nil {
			t.Fatal(err)
		}
		// A stale transition in between must not add a line.
		if _, err := s.Apply(ctx(t), store.Transition{From: o, To: to, History: []store.HistoryEntry{{Detail: "stale"}}}); !errors.Is(err, store.ErrStale) {
			t.Fatalf("replaying a transition: err = %v, want ErrStale", err)
		}
		o = next
	}
	got := history(t, s, "o-1")
	if len(got) != 1+len(lines) {
		t.Fatalf("history has %d lines, want %d: %+v", len(got), 1+len(lines), got)
	}
	if got[0].Detail != "accepted" {
		t.Errorf("first line = %+v, want the accept", got[0])
	}
	for i, want := range lines {
		g := got[i+1]
		g.At, want.At = g.At.UTC(), want.At.UTC()
		if !reflect.DeepEqual(g, want) {
			t.Errorf("line %d:\n got  %+v\n want %+v", i+1, g, want)
		}
	}
}

func testNotFound(t *testing.T, s store.Store) {
	acceptOne(t, s, Order("o-1", now()))
	if _, err := s.Get(ctx(t), "o-missing"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("get: err = %v, want ErrNotFound", err)
	}
	if _, err := s.History(ctx(t), "o-missing"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("history: err = %v, want ErrNotFound", err)
	}
}

func testPrune(t *testing.T, s store.Store) {
	past := now().Add(-time.Hour)
	var old []store.Order
	for _, state := range terminalStates {
		o := acceptOne(t, s, Order("o-old-"+state, past), store.Message{Subject: "s", MsgID: state})
		old = append(old, step(t, s, o, state, func(o *store.Order) { o.State, o.Step, o.NextRunAt = orderstate.State(state), "done", time.Time{} }))
	}
	running := acceptOne(t, s, Order("o-running", past))
	// A terminal state with a time set is waiting on something (a replay
	// being scheduled): not prunable.
	parked := acceptOne(t, s, Order("o-parked", past))
	parked = step(t, s, parked, "parked", func(o *store.Order) { o.State = "failed" })

	var cutoff time.Time
	for _, o := range append(append([]store.Order{}, old...), running, parked) {
		if o.UpdatedAt.After(cutoff) {
			cutoff = o.UpdatedAt
		}
	}
	cutoff = cutoff.Add(time.Millisecond)
	// The next write must be stamped at or after cutoff: sleep until the
	// clock is past it (a known instant, not a guess), without spinning.
	time.Sleep(time.Until(cutoff.Add(time.Millisecond)))
	fresh := acceptOne(t, s, Order("o-fresh", past))
	fresh = step(t, s, fresh, "completed", complete)
	if fresh.UpdatedAt.Before(cutoff) {
		t.Fatalf("fresh order updated at %v, before the cutoff %v", fresh.UpdatedAt, cutoff)
	}

	n, err := s.PruneTerminal(ctx(t), cutoff, 2)
	if err != nil || n != 2 {
		t.Fatalf("prune with limit 2 = %d, %v; want 2", n, err)
	}
	n, err = s.PruneTerminal(ctx(t), cutoff, 10)
	if err != nil || n != len(old)-2 {
		t.Fatalf("second prune = %d, %v; want the other %d old terminal orders", n, err, len(old)-2)
	}
	n, err = s.PruneTerminal(ctx(t), cutoff, 10)
	if err != nil || n != 0 {
		t.Fatalf("third prune = %d, %v; want nothing left", n, err)
	}
	for _, o := range old {
		if _, err := s.Get(ctx(t), o.OutOrderID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("pruned %s: get err = %v, want ErrNotFound", o.OutOrderID, err)
		}
		if _, err := s.History(ctx(t), o.OutOrderID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("pruned %s: history err = %v, want ErrNotFound", o.OutOrderID, err)
		}
	}
	for _, id := range []string{"o-running", "o-parked", "o-fresh"} {
		if _, err := s.Get(ctx(t), id); err != nil {
			t.Errorf("%s was pruned: %v", id, err)
		}
		if h := history(t, s, id); len(h) == 0 {
			t.Errorf("%s lost its history", id)
		}
	}
	// The outbox is not tied to orders: messages of pruned orders that are
	// still unpublished stay until the relay deletes them.
	if msgs := pending(t, s); len(msgs) != len(old) {
		t.Errorf("outbox after prune has %d messages, want %d", len(msgs), len(old))
	}
	if n, err := s.PruneTerminal(ctx(t), now().Add(time.Hour), 0); err != nil || n != 0 {
		t.Errorf("prune with limit 0 = %d, %v; want 0", n, err)
	}
}

func testStats(t *testing.T, s store.Store) {
	st, err := s.Stats(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.ByState) != 0 || len(st.ScheduledByStep) != 0 || st.Outbox != 0 || !st.OldestOutbox.IsZero() {
		t.Fatalf("stats of an empty store = %+v", st)
	}
	before := now()
	a := acceptOne(t, s, Order("o-a", before), store.Message{Subject: "s", MsgID: "a"})
	acceptOne(t, s, Order("o-b", before), store.Message{Subject: "s", MsgID: "b"})
	c := acceptOne(t, s, Order("o-c", before))
	step(t, s, a, "ordered", func(o *store.Order) { o.State, o.Step = "ordered", "debit" }, store.Message{Subject: "s", MsgID: "a2"})
	step(t, s, c, "completed", complete)

	st, err = s.Stats(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int64{"accepted": 1, "ordered": 1, "completed": 1}; !reflect.DeepEqual(st.ByState, want) {
		t.Errorf("by state = %v, want %v", st.ByState, want)
	}
	if want := map[string]int64{"order": 1, "debit": 1}; !reflect.DeepEqual(st.ScheduledByStep, want) {
		t.Errorf("scheduled by step = %v, want %v", st.ScheduledByStep, want)
	}
	if st.Outbox != 3 {
		t.Errorf("outbox = %d, want 3", st.Outbox)
	}
	if st.OldestOutbox.Before(before.Add(-time.Second)) || st.OldestOutbox.After(time.Now().Add(time.Second)) {
		t.Errorf("oldest outbox message at %v, want about %v", st.OldestOutbox, before)
	}
}

func testClosed(t *testing.T, s store.Store) {
	closedTests.Store(t, true)
	if err := s.Ping(ctx(t)); err != nil {
		t.Fatalf("ping of an open store: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := s.Accept(ctx(t), []store.Accept{{Order: Order("o-1", now())}}); err == nil {
		t.Error("accept after close succeeded")
	}
	if _, err := s.Apply(ctx(t), store.Transition{From: Order("o-1", now()), To: Order("o-1", now())}); err == nil {
		t.Error("apply after close succeeded")
	}
	if err := s.Ping(ctx(t)); err == nil {
		t.Error("ping after close succeeded")
	}
}
