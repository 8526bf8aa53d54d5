package worker

// Running as one of N workers over a shared store (store.Shared with
// several owners: PostgreSQL). See docs/architecture.md, "Ownership".
//
// The worker holds one heartbeat lease in the store and renews it every
// TTL/3. Every order it accepts or claims is its own; every commit is
// fenced by the store (version, owner, live lease). Here the worker adds
// what only it can do:
//
//   - the local fence: no provider call that changes money (create_order,
//     pay, cancel) starts once TTL - LeaseFenceMargin has passed since the
//     last successful renew was sent (store.Lease.MayStart), and no step
//     starts at all while it is closed (owning);
//   - a lost lease (store.ErrLeaseLost) drops everything held in memory:
//     the orders waiting for a poll, the new orders not yet started, the
//     scheduler's batch. Each of them belongs to an epoch, one per lease;
//     work of an older epoch may finish its running call but starts no
//     money call and is not queued again, and its commits are refused by
//     the store. Then the worker registers anew, under a new id, and the
//     orders it held come back through a rescue and a claim like anyone
//     else's;
//   - every few seconds it rescues expired workers and claims orders that
//     have no owner; claimed orders waiting in confirmation join the
//     confirm queue, the others the scheduler's due reads;
//   - a graceful stop relays its outbox and then releases, so another
//     worker takes its orders at its next claim, not after a TTL.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/coinsaga/coinsaga/store"
)

const (
	// claimEvery is how often a worker claims orders without an owner: a
	// released worker's orders wait at most this long for a new owner.
	claimEvery = time.Second
	// rescueEvery is how often a worker looks for expired workers to
	// rescue; takeover after a crash is at most TTL + grace + this.
	rescueEvery = time.Second
	// claimBatch and claimRounds bound one claim pass, so that one worker
	// does not take everything a released worker left while others wait.
	claimBatch  = 500
	claimRounds = 4
	// releaseTimeout bounds the hand-over at a graceful stop.
	releaseTimeout = 10 * time.Second
)

// errFenced: the local fence is closed (or the lease this work began
// under is gone); the step's money call was not made.
var errFenced = errors.New("the worker's lease may have lapsed: no pay, cancel or create_order starts (local fence)")

// epoch numbers the leases of one worker process: work started under one
// lease is recognised when a later one replaced it.
type epoch = uint64

// sharedLease is this worker's lease in a shared store.
type sharedLease struct {
	st    store.Shared
	host  string
	cur   atomic.Pointer[store.Lease] // nil while lost and not registered again
	epoch atomic.Uint64
	check chan struct{} // a commit saw ErrLeaseLost: renew now to find out
}

func newSharedLease(st store.Shared) *sharedLease {
	host, _ := os.Hostname()
	return &sharedLease{st: st, host: host, check: make(chan struct{}, 1)}
}

// leaseEpoch is the current epoch (always 0 with a single-owner store).
func (w *Worker) leaseEpoch() epoch {
	if w.shared == nil {
		return 0
	}
	return w.shared.epoch.Load()
}

// mayMoveMoney reports whether work of epoch e may start a provider call
// that changes money now: always with a single-owner store; with a shared
// one only while e's lease is the live one and its local fence is open.
func (w *Worker) mayMoveMoney(e epoch) bool {
	if w.shared == nil {
		return true
	}
	return w.shared.epoch.Load() == e && w.sharedOpen()
}

// sharedOpen reports whether the local fence of the current lease is open.
func (w *Worker) sharedOpen() bool {
	l := w.shared.cur.Load()
	return l != nil && l.MayStart(w.now())
}

// moneyStep reports whether a step's provider call changes money.
func moneyStep(s Step) bool { return s == StepOrder || s == StepPay || s == StepCancel }

// register takes a new lease for this worker.
func (w *Worker) register(ctx context.Context) error {
	sh := w.shared
	sent := w.now()
	l, err := sh.st.Register(ctx, sh.host)
	if err != nil {
		return err
	}
	// The fence counts from when this worker sent the request, by its
	// own clock, never from the database's stamp.
	l.Sent = sent
	sh.cur.Store(&l)
	w.log.Info("registered as a worker of the shared store", "worker", l.Worker, "lease_ttl", l.TTL)
	return nil
}

// keepLease renews the lease every TTL/3 until ctx ends; when the store
// says it is lost, it drops what the worker holds and registers anew.
func (w *Worker) keepLease(ctx context.Context) {
	sh := w.shared
	every := store.LeaseRenewEvery
	if l := sh.cur.Load(); l != nil && l.TTL > 0 {
		every = l.TTL / 3
	}
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-sh.check:
		}
		if sh.cur.Load() == nil {
			w.registerAgain(ctx)
			continue
		}
		sent := w.now()
		callCtx, cancel := context.WithTimeout(ctx, every)
		l, err := sh.st.Renew(callCtx)
		cancel()
		if ctx.Err() != nil {
			return // stopping: Release may have ended the lease meanwhile
		}
		switch {
		case errors.Is(err, store.ErrLeaseLost):
			w.leaseLost(err)
			w.registerAgain(ctx)
		case err != nil:
			if !failing && ctx.Err() == nil {
				w.log.Warn("cannot renew the worker lease; no pay or cancel starts once it may have lapsed", "err", err)
			}
			failing = true
		default:
			if failing {
				w.log.Info("worker lease renewed again")
			}
			failing = false
			l.Sent = sent
			// Replace only the lease renewed: a lost one stays lost.
			if cur := sh.cur.Load(); cur != nil && cur.Worker == l.Worker {
				sh.cur.CompareAndSwap(cur, &l)
			}
		}
	}
}

// leaseLost drops everything this worker holds in memory for the lease
// that is gone: its orders belong to nobody until a rescue, then to
// whoever claims them. Running steps finish their call, start no money
// call and cannot commit (the store fences them).
func (w *Worker) leaseLost(err error) {
	sh := w.shared
	old := sh.cur.Swap(nil)
	sh.epoch.Add(1)
	dropped := w.waiting.clear()
	w.fresh.take()
	id := ""
	if old != nil {
		id = old.Worker
	}
	w.log.Error("worker lease lost: dropping the orders held in memory; another worker (or this one, registered anew) takes them after a rescue",
		"worker", id, "waiting_dropped", dropped, "running_steps", w.slots.used(), "err", err)
	wake(w.wakeSched)
}

// registerAgain registers until it succeeds or ctx ends; not while
// draining, when a new lease would hold orders nobody serves.
func (w *Worker) registerAgain(ctx context.Context) {
	for ctx.Err() == nil && !w.draining.Load() {
		callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := w.register(callCtx)
		cancel()
		if err == nil {
			wake(w.wakeSched)
			return
		}
		w.log.Warn("registering again after a lost lease", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// noteLeaseLost is how a commit or an accept that the store refused with
// ErrLeaseLost tells the lease keeper to renew (and so find out) now.
func (w *Worker) noteLeaseLost(err error) {
	if w.shared != nil && errors.Is(err, store.ErrLeaseLost) {
		wake(w.shared.check)
	}
}

// claimLoop rescues expired workers and claims orders without an owner
// until ctx ends.
func (w *Worker) claimLoop(ctx context.Context) {
	claim := time.NewTicker(claimEvery)
	defer claim.Stop()
	lastRescue := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-claim.C:
		}
		if w.draining.Load() || !w.sharedOpen() {
			continue
		}
		// Rescue needs only a live lease; claims also a worker able to run
		// what it takes (NATS and the store answer), else others should.
		if now := w.now(); now.Sub(lastRescue) >= rescueEvery {
			lastRescue = now
			callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if _, err := w.shared.st.Rescue(callCtx); err != nil && ctx.Err() == nil {
				w.log.Warn("rescuing expired workers", "err", err)
			}
			cancel()
		}
		if w.ready.Load() {
			w.claimOnce(ctx)
		}
	}
}

// claimOnce claims orders without an owner, due or not: orders waiting in
// confirmation join the confirm queue at once (their polls fall due when
// their rows say), the others are this worker's due orders now and the
// scheduler reads them.
func (w *Worker) claimOnce(ctx context.Context) int {
	e := w.leaseEpoch()
	never := w.now().Add(100 * 365 * 24 * time.Hour)
	total := 0
	for range claimRounds {
		callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		orders, err := w.shared.st.Claim(callCtx, never, claimBatch, nil)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				w.log.Warn("claiming orders without an owner", "err", err)
			}
			w.noteLeaseLost(err)
			break
		}
		for _, o := range orders {
			if o.Step == StepConfirm {
				w.waitAt(o, nil, w.log.With("out_order_id", o.OutOrderID), e)
			}
		}
		total += len(orders)
		if len(orders) < claimBatch {
			break
		}
	}
	if total > 0 {
		w.log.Info("claimed orders without an owner", "orders", total)
		w.fresh.markStore()
		wake(w.wakeSched)
	}
	return total
}

// checkNoPrefixOwner refuses to join a prefix that a single-owner worker
// (SQLite) holds: its orders live in its own store, and it and the shared
// workers would both record and run the intents they are redelivered.
func (w *Worker) checkNoPrefixOwner(ctx context.Context) error {
	kv, err := w.js.KeyValue(ctx, w.cfg.Subjects.OwnerBucket())
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the prefix lease in %s: %w", w.cfg.Subjects.OwnerBucket(), err)
	}
	entry, err := kv.Get(ctx, ownerKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the prefix lease in %s: %w", w.cfg.Subjects.OwnerBucket(), err)
	}
	var holder Owner
	_ = json.Unmarshal(entry.Value(), &holder)
	return fmt.Errorf("%w: prefix %q is served by %s with a single-owner store (SQLite); workers of a shared store cannot serve it beside that one: stop it, or give these another --prefix",
		ErrPrefixOwned, w.cfg.Subjects.Prefix, holder)
}

// release hands this worker's orders over at a graceful stop.
func (w *Worker) release(log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	n, err := w.shared.st.Release(ctx)
	if err != nil {
		log.Error("releasing the worker lease; its orders wait for a rescue", "err", err)
		return
	}
	w.shared.cur.Store(nil)
	log.Info("worker lease released: its orders are handed over", "orders", n)
}
