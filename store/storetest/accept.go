package storetest

// The conformance cases of accepting and applying: what Run's first
// cases check.

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/store"
)

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
