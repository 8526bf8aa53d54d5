package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/store"
)

// RunShared runs the cases of two store handles on one database, as two
// worker processes have them: open returns both handles on a fresh, empty
// database. A store that admits one handle per database (SQLite: a second
// open fails with ErrLocked) returns the same handle twice; the cases
// then check the same promises between goroutines of one handle.
//
// RunShared closes the handles when each case ends.
func RunShared(t *testing.T, open func(t *testing.T) (a, b store.Store)) {
	tests := []testCase[func(t *testing.T, a, b store.Store)]{
		{"two handles accepting the same orders at once create each exactly once, and the other sees it", testSharedAccept},
		{"concurrent applies on one order from two handles let exactly one win", testSharedApply},
		{"a relay reading the outbox while two handles commit sees every message exactly once", testSharedOutbox},
	}
	runParallel(t, tests, func(t *testing.T, run func(t *testing.T, a, b store.Store)) {
		a, b := open(t)
		closePair(t, a, b)
		run(t, a, b)
	})
}

// seed returns a logged random seed, so that a failing interleaving's
// inputs can be replayed.
func seed(t *testing.T) *rand.Rand {
	s := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", s)
	return rand.New(rand.NewPCG(s, s))
}

// acceptFromBothSides has a and b accept an order for each of keys at the
// same moment, b in the opposite order: a store that locked rows in
// request order would deadlock. Each order's BodyHash names its side
// ("side-0" for a, "side-1" for b); req makes the accept of an order.
// Both sides' results are in the order of keys.
func acceptFromBothSides(t *testing.T, a, b store.Store, keys []string, req func(o store.Order) store.Accept) ([2][]store.AcceptResult, error) {
	var (
		wg      sync.WaitGroup
		results [2][]store.AcceptResult
		errs    [2]error
		start   = make(chan struct{})
	)
	for side, s := range []store.Store{a, b} {
		order := slices.Clone(keys)
		if side == 1 {
			slices.Reverse(order)
		}
		reqs := make([]store.Accept, len(order))
		for i, id := range order {
			o := Order(id, now())
			o.BodyHash = fmt.Sprintf("side-%d", side)
			reqs[i] = req(o)
		}
		wg.Go(func() {
			<-start
			results[side], errs[side] = s.Accept(ctx(t), reqs)
			if side == 1 && errs[side] == nil {
				slices.Reverse(results[side])
			}
		})
	}
	close(start)
	wg.Wait()
	return results, errors.Join(errs[:]...)
}

func testSharedAccept(t *testing.T, a, b store.Store) {
	const (
		rounds = 10
		per    = 20
	)
	for round := range rounds {
		keys := make([]string, per)
		for i := range keys {
			keys[i] = fmt.Sprintf("o-%02d-%02d", round, i)
		}
		results, err := acceptFromBothSides(t, a, b, keys, func(o store.Order) store.Accept {
			return store.Accept{Order: o, History: store.HistoryEntry{State: "accepted", Detail: o.BodyHash},
				Outbox: []store.Message{{Subject: "s", MsgID: o.OutOrderID + ":" + o.BodyHash}}}
		})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		created := map[string]string{} // id -> the side that created it
		for side := range results {
			for i, r := range results[side] {
				if r.Created {
					if prev, dup := created[keys[i]]; dup {
						t.Errorf("%s created by side %s and side %d", keys[i], prev, side)
					}
					created[keys[i]] = fmt.Sprintf("side-%d", side)
				}
			}
		}
		for side := range results {
			for i, r := range results[side] {
				id := keys[i]
				if r.Created {
					continue
				}
				if want := created[id]; r.Existing.OutOrderID != id || r.Existing.BodyHash != want {
					t.Errorf("side %d was told %s exists as %q/%q, want the creator's %q", side, id, r.Existing.OutOrderID, r.Existing.BodyHash, want)
				}
			}
		}
		for _, id := range keys {
			if created[id] == "" {
				t.Errorf("%s was created by neither side", id)
				continue
			}
			if h := history(t, b, id); len(h) != 1 || h[0].Detail != created[id] {
				t.Errorf("%s: history %+v, want the creator's accept line only", id, h)
			}
		}
	}
	msgs := pending(t, a)
	if len(msgs) != rounds*per {
		t.Errorf("outbox holds %d messages for %d orders, want one each", len(msgs), rounds*per)
	}
}

func testSharedApply(t *testing.T, a, b store.Store) {
	const (
		orders = 10
		racers = 8 // per handle
	)
	for n := range orders {
		id := fmt.Sprint("o-", n)
		o := acceptOne(t, a, Order(id, now()))
		race := applyRace(t, o, []store.Store{a, b}, racers, func(side, i int) string { return fmt.Sprintf("state-%d-%d", side, i) }, true)
		won, stale, winnerState, unexpected := race.won, race.stale, race.winner, race.unexpected
		if len(unexpected) > 0 {
			t.Fatalf("%s: unexpected errors: %v", id, unexpected)
		}
		if won != 1 || stale != 2*racers-1 {
			t.Fatalf("%s: won %d, stale %d; want 1 and %d", id, won, stale, 2*racers-1)
		}
		for _, s := range []store.Store{a, b} {
			got, err := s.Get(ctx(t), id)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != winnerState || got.Version != o.Version+1 {
				t.Errorf("%s: stored state %q version %d, want the winner's %q at %d", id, got.State, got.Version, winnerState, o.Version+1)
			}
		}
		if h := history(t, b, id); len(h) != 2 || h[1].State != winnerState {
			t.Errorf("%s: history %+v, want the accept and the winner's line", id, h)
		}
	}
	var got []string
	for _, m := range pending(t, b) {
		got = append(got, m.MsgID)
	}
	if len(got) != orders {
		t.Errorf("outbox %v: want one message per order, the winners'", got)
	}
}

// testSharedOutbox is the relay's promise under concurrent commits: a
// reader that keeps a cursor on ids (worker/relay.go) and deletes what it
// read must see every committed message once. A store whose ids are not
// in commit order loses the message of a transaction that drew a lower id
// but committed after a higher one was read.
func testSharedOutbox(t *testing.T, a, b store.Store) {
	rng := seed(t)
	const (
		writers = 6 // per handle
		orders  = 25
		steps   = 3
	)
	// Some writers yield between writes, to vary the interleaving.
	load := startWriters(t, []store.Store{a, b}, writers, orders, steps, func() int { return rng.IntN(3) })

	seen := map[string]int{}
	seenIDs := map[int64]bool{}
	var cursor int64
	relay := func(s store.Store) int {
		msgs, err := s.PendingOutbox(ctx(t), cursor, 64)
		if err != nil {
			t.Fatalf("pending outbox: %v", err)
		}
		del := make([]int64, 0, len(msgs))
		for _, m := range msgs {
			if seenIDs[m.ID] {
				t.Errorf("message %d (%s) returned again after it was read and deleted", m.ID, m.MsgID)
			}
			seenIDs[m.ID] = true
			seen[m.MsgID]++
			cursor = max(cursor, m.ID)
			del = append(del, m.ID)
		}
		if err := s.DeleteOutbox(ctx(t), del); err != nil {
			t.Fatalf("delete outbox: %v", err)
		}
		return len(msgs)
	}
	// The relay alternates handles, as relays of two workers would read
	// one database.
	handles := []store.Store{a, b}
	for turn := 0; ; turn++ {
		select {
		case <-load.done:
		default:
			relay(handles[turn%2])
			continue
		}
		break
	}
	// Everything has committed: what the cursor has not reached yet comes
	// now; anything below it that never came is lost.
	for relay(a) > 0 {
	}
	if err := load.err(); err != nil {
		t.Fatalf("writers: %v", err)
	}
	load.checkEachOnce(t, seen, "read")
	if left := pending(t, b); len(left) != 0 {
		t.Errorf("outbox still holds %d messages below the cursor %d: %+v", len(left), cursor, left)
	}
}
