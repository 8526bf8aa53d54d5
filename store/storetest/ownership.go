package storetest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
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

// shortLease is a lease that expires within the test: the lease is the
// database's clock, which a test cannot inject, so it is made short; long
// enough that the live handle, which renews before each of its writes,
// keeps its own on a loaded machine.
var shortLease = store.LeaseTimings{TTL: time.Second, Grace: 100 * time.Millisecond}

// renew keeps s's short lease alive before a write.
func renew(t *testing.T, s store.Shared) {
	t.Helper()
	if _, err := s.Renew(ctx(t)); err != nil {
		t.Fatalf("renew: %v", err)
	}
}

// holdingOne opens two handles with short leases (skipping, for why, a
// store with one owner) and has a register and accept one due order,
// o-000, which it returns as read with a's lease.
func holdingOne(t *testing.T, open OpenShared, why string) (a, b store.Shared, la store.Lease, held store.Order) {
	t.Helper()
	a, b = openPair(t, open, shortLease)
	singleOwner(t, a, b, why)
	la = register(t, a, "host-a")
	acceptDue(t, a, "o", 1)
	held, err := a.Get(ctx(t), "o-000")
	if err != nil {
		t.Fatal(err)
	}
	return a, b, la, held
}

func testFencedAfterRescue(t *testing.T, open OpenShared) {
	a, b, la, held := holdingOne(t, open, "the lock file is the lease: a second process cannot open the database, so there is nobody to rescue it")
	register(t, b, "host-b")
	// a stops renewing; b keeps its own lease and rescues a once a's has
	// been expired for the grace.
	var rescued store.Rescued
	eventually(t, 10*time.Second, "a rescue of a's expired lease", func() bool {
		if _, err := b.Renew(ctx(t)); err != nil {
			t.Fatalf("b renew: %v", err)
		}
		r, err := b.Rescue(ctx(t))
		if err != nil {
			t.Fatalf("rescue: %v", err)
		}
		rescued = r
		return len(r.Workers) > 0
	})
	if !slices.Equal(rescued.Workers, []string{la.Worker}) || rescued.Orders != 1 {
		t.Errorf("rescue: %+v, want worker %s and its 1 order", rescued, la.Worker)
	}
	if again, err := b.Rescue(ctx(t)); err != nil || len(again.Workers) != 0 || again.Orders != 0 {
		t.Errorf("a second rescue: %+v, %v; want nothing to do", again, err)
	}
	renew(t, b)
	got, err := b.Claim(ctx(t), now(), 10, nil)
	if err != nil || len(got) != 1 || got[0].OutOrderID != "o-000" {
		t.Fatalf("b claims: %v, %v; want o-000", ids(got), err)
	}
	claimed := got[0]
	before := history(t, b, "o-000")
	outboxBefore := len(pending(t, b))

	to := held
	to.State, to.Seq = "paid", 2
	_, err = a.Apply(ctx(t), store.Transition{From: held, To: to,
		History: []store.HistoryEntry{{State: "paid"}}, Outbox: []store.Message{{Subject: "s", MsgID: "o-000:stale"}}})
	if !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("a's apply after the rescue: err = %v, want ErrLeaseLost", err)
	}
	if !errors.Is(err, store.ErrStale) {
		t.Errorf("ErrLeaseLost does not match ErrStale: %v", err)
	}
	now1, err := b.Get(ctx(t), "o-000")
	if err != nil {
		t.Fatal(err)
	}
	sameOrder(t, "the order after the refused apply", now1, claimed)
	if h := history(t, b, "o-000"); len(h) != len(before) {
		t.Errorf("history grew from %d to %d lines: the refused apply wrote", len(before), len(h))
	}
	if n := len(pending(t, b)); n != outboxBefore {
		t.Errorf("outbox grew from %d to %d: the refused apply wrote", outboxBefore, n)
	}
	// The new owner's copy commits.
	renew(t, b)
	to = claimed
	to.State, to.Seq = "paid", 2
	if _, err := b.Apply(ctx(t), store.Transition{From: claimed, To: to, History: []store.HistoryEntry{{State: "paid"}}}); err != nil {
		t.Errorf("b's apply of its claimed order: %v", err)
	}
	if _, err := a.Renew(ctx(t)); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("a's renew after the rescue: err = %v, want ErrLeaseLost", err)
	}
}

func testRenewAfterExpiry(t *testing.T, open OpenShared) {
	a, b, la, held := holdingOne(t, open, "the lock file is the lease and cannot expire while the process lives (release ends it: see the release case)")
	if !la.MayStart(la.Sent) {
		// With a TTL under the fence margin the local fence is shut at
		// once: that is the point of the margin.
		t.Logf("local fence of a %v lease is shut from the start", la.TTL)
	}
	eventually(t, 10*time.Second, "a's lease expiring", func() bool {
		ws, err := b.Workers(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range ws {
			if w.Worker == la.Worker {
				return w.Expired
			}
		}
		t.Fatalf("worker %s is not listed", la.Worker)
		return false
	})
	if _, err := a.Renew(ctx(t)); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("renew after expiry: err = %v, want ErrLeaseLost", err)
	}
	// Not rescued yet, and still refused: the fence is the live lease.
	to := held
	to.State = "paid"
	if _, err := a.Apply(ctx(t), store.Transition{From: held, To: to, History: []store.HistoryEntry{{State: "paid"}}}); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("apply on an expired lease: err = %v, want ErrLeaseLost", err)
	}
	if got, err := a.Get(ctx(t), "o-000"); err != nil || got.Version != held.Version {
		t.Errorf("the order after the refused apply: version %d (%v), want %d", got.Version, err, held.Version)
	}
	if _, err := a.Accept(ctx(t), []store.Accept{{Order: Order("late", now()), History: store.HistoryEntry{State: "accepted"}}}); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("accept on an expired lease: err = %v, want ErrLeaseLost", err)
	}
	if _, err := a.Get(ctx(t), "late"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the refused accept wrote its order: %v", err)
	}
	if _, err := a.Claim(ctx(t), now(), 10, nil); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("claim on an expired lease: err = %v, want ErrLeaseLost", err)
	}
	// Registering anew gives a new worker, which owns none of the old one's
	// orders until a rescue hands them over.
	lb := register(t, a, "host-a")
	if lb.Worker == la.Worker {
		t.Errorf("a new registration reused worker id %s", la.Worker)
	}
	if _, err := a.Apply(ctx(t), store.Transition{From: held, To: to}); !errors.Is(err, store.ErrNotOwner) {
		t.Errorf("the new worker's apply of the old one's order: err = %v, want ErrNotOwner", err)
	}
}

func testReleaseHandsOver(t *testing.T, open OpenShared) {
	a, b := openPair(t, open, store.LeaseTimings{})
	register(t, a, "host-a")
	const n = 30
	accepted := acceptDue(t, a, "o", n)
	held, err := a.Get(ctx(t), accepted[0])
	if err != nil {
		t.Fatal(err)
	}
	if b != a {
		register(t, b, "host-b")
		if got, err := b.Claim(ctx(t), now(), 2*n, nil); err != nil || len(got) != 0 {
			t.Fatalf("b claims a's live orders: %v, %v; want none", ids(got), err)
		}
		if due, err := b.Due(ctx(t), now(), 2*n, nil, nil); err != nil || len(due) != 0 {
			t.Fatalf("b's due lists a's orders: %v, %v", ids(due), err)
		}
	}
	released, err := a.Release(ctx(t))
	if err != nil || released != n {
		t.Fatalf("release: %d, %v; want %d orders", released, err, n)
	}
	to := held
	to.State = "paid"
	if _, err := a.Apply(ctx(t), store.Transition{From: held, To: to}); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("apply after release: err = %v, want ErrLeaseLost", err)
	}
	if _, err := a.Renew(ctx(t)); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("renew after release: err = %v, want ErrLeaseLost", err)
	}
	// The released worker's last flush still publishes its messages.
	var flushed []string
	if _, err := a.RelayOutbox(ctx(t), 2*n, func(_ context.Context, msgs []store.Message) ([]int64, error) {
		acked := make([]int64, len(msgs))
		for i, m := range msgs {
			flushed, acked[i] = append(flushed, m.MsgID), m.ID
		}
		return acked, nil
	}); err != nil || len(flushed) != n {
		t.Errorf("the flush after release published %d messages (%v), want its %d", len(flushed), err, n)
	}
	var got []store.Order
	if b == a {
		// One owner: the next registration holds every order.
		register(t, a, "host-a")
		got, err = a.Due(ctx(t), now(), 2*n, nil, nil)
	} else {
		// At once: no TTL or grace to wait for.
		got, err = b.Claim(ctx(t), now(), 2*n, nil)
	}
	if err != nil || len(got) != n {
		t.Fatalf("after the release: %d orders, %v; want all %d", len(got), err, n)
	}
	if _, err := b.Apply(ctx(t), store.Transition{From: got[0], To: got[0]}); err != nil {
		t.Errorf("the new holder's apply: %v", err)
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
