package storetest

// The conformance cases of the outbox, the due reads, history, pruning,
// stats and a closed store.

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/internal/orderstate"
	"github.com/coinsaga/coinsaga/store"
)

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
