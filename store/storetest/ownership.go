package storetest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/internal/orderstate"
	"github.com/coinsaga/coinsaga/store"
)

// OpenShared opens two handles on one fresh, empty database with the given
// lease timings. A store with a single owner (SQLite) returns the same
// handle twice: the cases that need two live workers then skip, saying
// why, and the others run between goroutines of the one handle.
type OpenShared func(t *testing.T, lt store.LeaseTimings) (a, b store.Shared)

// RunOwnership runs the cases of the ownership seam (store.Shared): two
// workers, each with its own handle, on one database. It closes the
// handles when each case ends.
func RunOwnership(t *testing.T, open OpenShared) {
	tests := []testCase[func(t *testing.T, open OpenShared)]{
		{"two workers accepting the same out_order_id at once: one creates and owns it, the other sees it exists", testOwnedAccept},
		{"two workers claiming many due orphans at once claim each exactly once", testClaimOnce},
		{"a commit of a worker whose lease expired is refused after a rescue and writes nothing", testFencedAfterRescue},
		{"a renew after the lease expired fails and the worker's writes are refused", testRenewAfterExpiry},
		{"release hands a worker's orders over at once", testReleaseHandsOver},
		{"a claiming relay under concurrent commits loses no outbox row and publishes none twice", testClaimingRelay},
		{"get, history and retention pruning work on any worker's orders from any handle", testReadsAndPruneAcrossWorkers},
	}
	runParallel(t, tests, func(t *testing.T, run func(*testing.T, OpenShared)) { run(t, open) })
}

// openPair opens the handles and closes them when the test ends.
func openPair(t *testing.T, open OpenShared, lt store.LeaseTimings) (a, b store.Shared) {
	a, b = open(t, lt)
	closePair(t, a, b)
	return a, b
}

// singleOwner skips a case that needs two live workers on a store that
// has one.
func singleOwner(t *testing.T, a, b store.Shared, why string) {
	if a == b {
		t.Skip("single owner: " + why)
	}
}

func register(t *testing.T, s store.Shared, host string) store.Lease {
	t.Helper()
	l, err := s.Register(ctx(t), host)
	if err != nil {
		t.Fatalf("register %s: %v", host, err)
	}
	if l.Worker == "" {
		t.Fatalf("register %s: empty worker id", host)
	}
	return l
}

// eventually waits for cond, checking it every few milliseconds, until a
// deadline; what it waits for is an event in the database (a lease
// expiring), which nothing signals.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		<-tick.C
	}
}

// acceptDue accepts orders due now, each with its status message.
func acceptDue(t *testing.T, s store.Shared, prefix string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	reqs := make([]store.Accept, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%03d", prefix, i)
		reqs[i] = store.Accept{Order: Order(ids[i], now().Add(-time.Second)), History: store.HistoryEntry{State: "accepted"},
			Outbox: []store.Message{{Subject: "s", MsgID: ids[i] + ":0"}}}
	}
	res, err := s.Accept(ctx(t), reqs)
	if err != nil {
		t.Fatalf("accept %d orders: %v", n, err)
	}
	for i, r := range res {
		if !r.Created {
			t.Fatalf("accept %s: not created", ids[i])
		}
	}
	return ids
}

func testOwnedAccept(t *testing.T, open OpenShared) {
	a, b := openPair(t, open, store.LeaseTimings{})
	la := register(t, a, "host-a")
	lb := la
	if b != a {
		lb = register(t, b, "host-b")
	}
	workerOf := map[int]string{0: la.Worker, 1: lb.Worker}
	const n = 40
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("o-%02d", i)
	}
	results, err := acceptFromBothSides(t, a, b, keys, func(o store.Order) store.Accept {
		return store.Accept{Order: o, History: store.HistoryEntry{State: "accepted"}}
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range keys {
		ra, rb := results[0][i], results[1][i]
		if ra.Created == rb.Created {
			t.Errorf("%s: created by a %v, by b %v; want exactly one", id, ra.Created, rb.Created)
			continue
		}
		creator, other := 0, rb
		if rb.Created {
			creator, other = 1, ra
		}
		if want := fmt.Sprint("side-", creator); other.Existing.OutOrderID != id || other.Existing.BodyHash != want {
			t.Errorf("%s: the other side was told %q/%q exists, want the creator's %q", id, other.Existing.OutOrderID, other.Existing.BodyHash, want)
		}
		owner, err := a.Owner(ctx(t), id)
		if err != nil {
			t.Fatal(err)
		}
		if owner != workerOf[creator] {
			t.Errorf("%s: owner %q, want its creator %q", id, owner, workerOf[creator])
		}
	}
	if _, err := a.Owner(ctx(t), "no-such-order"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("owner of an unknown order: err = %v, want ErrNotFound", err)
	}
}

func testClaimOnce(t *testing.T, open OpenShared) {
	a, b := openPair(t, open, store.LeaseTimings{})
	singleOwner(t, a, b, "every order is the one worker's, so none is ever without an owner to claim")
	register(t, a, "host-a")
	const n = 300
	orphans := acceptDue(t, a, "orphan", n)
	// A release leaves the orders without an owner, as a rescue does.
	if got, err := a.Release(ctx(t)); err != nil || got != n {
		t.Fatalf("release: %d orders, %v; want %d", got, err, n)
	}
	leases := []store.Lease{register(t, a, "host-a"), register(t, b, "host-b")}
	// No worker's own orders are due yet; claims by step take that step only.
	if at, found, err := a.NextDue(ctx(t), nil); err != nil || found {
		t.Fatalf("a's next due before claiming: %v %v, %v; want none of its own", at, found, err)
	}
	if got, err := a.Claim(ctx(t), now(), n, []orderstate.Step{"no-such-step"}); err != nil || len(got) != 0 {
		t.Fatalf("claim at another step: %v, %v; want none", ids(got), err)
	}
	first, err := a.Claim(ctx(t), now(), 1, []orderstate.Step{"order"})
	if err != nil || len(first) != 1 || first[0].OutOrderID != orphans[0] {
		t.Fatalf("claim of one at step order: %v, %v; want the soonest, %s", ids(first), err, orphans[0])
	}
	if _, found, err := a.NextDue(ctx(t), []orderstate.Step{"order"}); err != nil || !found {
		t.Fatalf("a's next due after a claim: %v, %v; want its claimed order", found, err)
	}
	var (
		wg      sync.WaitGroup
		claimed [2][]store.Order
		errs    [2]error
		start   = make(chan struct{})
	)
	claimed[0] = first
	for side, s := range []store.Shared{a, b} {
		wg.Go(func() {
			<-start
			for {
				got, err := s.Claim(ctx(t), now(), 7, nil)
				if err != nil {
					errs[side] = err
					return
				}
				if len(got) == 0 {
					return
				}
				claimed[side] = append(claimed[side], got...)
			}
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		t.Fatal(err)
	}
	by := map[string]int{}
	for side := range claimed {
		for _, o := range claimed[side] {
			if prev, dup := by[o.OutOrderID]; dup {
				t.Errorf("%s claimed by %d and %d", o.OutOrderID, prev, side)
			}
			by[o.OutOrderID] = side
			if o.Version != 3 { // accept 1, release 2, claim 3
				t.Errorf("%s claimed at version %d, want 3 (a claim bumps it)", o.OutOrderID, o.Version)
			}
		}
	}
	t.Logf("claimed %d by a, %d by b", len(claimed[0]), len(claimed[1]))
	for _, id := range orphans {
		side, ok := by[id]
		if !ok {
			t.Errorf("%s claimed by nobody", id)
			continue
		}
		if owner, err := a.Owner(ctx(t), id); err != nil || owner != leases[side].Worker {
			t.Errorf("%s: owner %q (%v), want its claimer %q", id, owner, err, leases[side].Worker)
		}
	}
	// Each worker's Due is its own orders.
	for side, s := range []store.Shared{a, b} {
		due, err := s.Due(ctx(t), now(), 2*n, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(due) != len(claimed[side]) {
			t.Errorf("side %d: due %d orders, want its %d claimed", side, len(due), len(claimed[side]))
		}
		for _, o := range due {
			if by[o.OutOrderID] != side {
				t.Errorf("side %d: due %s, which the other side claimed", side, o.OutOrderID)
			}
		}
	}
	if got, err := a.Claim(ctx(t), now(), n, nil); err != nil || len(got) != 0 {
		t.Errorf("a claim after all were claimed: %d orders, %v; want none", len(got), err)
	}
}
func testClaimingRelay(t *testing.T, open OpenShared) {
	a, b := openPair(t, open, store.LeaseTimings{})
	register(t, a, "host-a")
	if b != a {
		register(t, b, "host-b")
	}
	rng := seed(t)
	const (
		writers = 4 // per handle
		orders  = 20
		steps   = 3
	)
	load := startWriters(t, []store.Store{a, b}, writers, orders, steps, nil)

	var (
		mu       sync.Mutex
		inFlight = map[string]bool{} // being published by some relay
		acked    = map[string]int{}
		lastSeq  = map[string]int{} // per order, the last acked step
		problems []string
	)
	// publish acks a random prefix of its batch, so that unacked rows stay
	// and are relayed again; a row two relays hold at once, or one order's
	// steps acked out of order, is a problem.
	publish := func(seedRng func(int) int) func(ctx context.Context, msgs []store.Message) ([]int64, error) {
		return func(_ context.Context, msgs []store.Message) ([]int64, error) {
			mu.Lock()
			for _, m := range msgs {
				if inFlight[m.MsgID] {
					problems = append(problems, m.MsgID+" held by two relays at once")
				}
				inFlight[m.MsgID] = true
			}
			mu.Unlock()
			runtime.Gosched() // let the other relay and the writers interleave
			n := len(msgs)
			if k := seedRng(4); k == 0 {
				n = seedRng(len(msgs) + 1)
			}
			mu.Lock()
			defer mu.Unlock()
			var ids []int64
			for i, m := range msgs {
				delete(inFlight, m.MsgID)
				if i >= n {
					continue
				}
				acked[m.MsgID]++
				order, st, _ := strings.Cut(m.MsgID, ":")
				step, _ := strconv.Atoi(st)
				if prev, ok := lastSeq[order]; ok && step <= prev {
					problems = append(problems, fmt.Sprintf("%s acked after step %d", m.MsgID, prev))
				}
				lastSeq[order] = step
				ids = append(ids, m.ID)
			}
			return ids, nil
		}
	}
	var rngMu sync.Mutex
	intn := func(n int) int {
		rngMu.Lock()
		defer rngMu.Unlock()
		if n <= 0 {
			return 0
		}
		return rng.IntN(n)
	}
	var relays sync.WaitGroup
	relayErr := make([]error, 2)
	for side, s := range []store.Shared{a, b} {
		relays.Go(func() {
			pub := publish(intn)
			for {
				select {
				case <-load.done:
					return
				default:
				}
				if _, err := s.RelayOutbox(ctx(t), 16, pub); err != nil {
					relayErr[side] = err
					return
				}
			}
		})
	}
	relays.Wait()
	if err := errors.Join(relayErr...); err != nil {
		t.Fatalf("relay: %v", err)
	}
	if err := load.err(); err != nil {
		t.Fatalf("writers: %v", err)
	}
	// Everything has committed: drain what is left through both relays.
	pub := publish(func(int) int { return 1 }) // ack everything
	for drained := false; !drained; {
		drained = true
		for _, s := range []store.Shared{a, b} {
			n, err := s.RelayOutbox(ctx(t), 64, pub)
			if err != nil {
				t.Fatalf("drain: %v", err)
			}
			if n > 0 {
				drained = false
			}
		}
	}
	load.checkEachOnce(t, acked, "acked")
	if len(problems) > 0 {
		t.Errorf("relay problems: %v", problems)
	}
	if left := pending(t, b); len(left) != 0 {
		t.Errorf("outbox still holds %d messages", len(left))
	}
}

func testReadsAndPruneAcrossWorkers(t *testing.T, open OpenShared) {
	a, b := openPair(t, open, store.LeaseTimings{})
	register(t, a, "host-a")
	if b != a {
		register(t, b, "host-b")
	}
	const n = 10
	for side, s := range []store.Shared{a, b} {
		for _, id := range acceptDue(t, s, fmt.Sprint("side", side), n) {
			o, err := s.Get(ctx(t), id)
			if err != nil {
				t.Fatal(err)
			}
			step(t, s, o, "done", complete)
		}
	}
	// Each side reads the other's orders and their history.
	for side, s := range []store.Shared{a, b} {
		id := fmt.Sprintf("side%d-%03d", 1-side, 0)
		if o, err := s.Get(ctx(t), id); err != nil || o.NextRunAt != (time.Time{}) {
			t.Errorf("side %d reads %s: %+v, %v; want it completed", side, id, o, err)
		}
		if h := history(t, s, id); len(h) != 2 {
			t.Errorf("side %d reads %s's history: %d lines, want 2", side, id, len(h))
		}
	}
	// One worker's retention prunes every worker's old finished orders.
	pruned, err := b.PruneTerminal(ctx(t), time.Now().Add(time.Hour), 10*n)
	if err != nil || pruned != 2*n {
		t.Fatalf("prune: %d, %v; want all %d finished orders", pruned, err, 2*n)
	}
	if _, err := a.Get(ctx(t), "side0-000"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a pruned order still reads: %v", err)
	}
}
