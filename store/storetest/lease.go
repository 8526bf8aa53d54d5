package storetest

// The ownership cases of leases: a fenced commit after a rescue, a
// renew after expiry, a release that hands orders over.

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/coinsaga/coinsaga/store"
)

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
