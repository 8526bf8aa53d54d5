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
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/internal/orderstate"
	"github.com/coinsaga/coinsaga/store"
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
