package worker

// The scheduler's loop and its slots: it finds due work (the store's due
// index, the orders the consumer hands over, the orders waiting for a
// confirmation poll) and starts each in a free step slot. What a started
// step does is execute.go's; the confirm path is confirm.go's.

import (
	"context"
	"time"

	"github.com/coinsaga/coinsaga/store"
)

// maxIdle bounds how long the scheduler sleeps without looking at the
// store, so that a transient store error or a missed wake-up costs at most
// this much delay.
const maxIdle = time.Second

// dueFetchFactor sizes one Due read at this many times the step slots. The
// orders already running are the earliest due in the store (their row
// still says "due" until their step commits), so a read sized to the free
// slots alone pages through every running order on every wake-up; one
// larger read, kept in a local batch, pays that once for many starts.
const dueFetchFactor = 4

// dueFetchMax caps one Due read. With slots sized for slow providers
// (thousands), four times the slots would be thousands of whole rows,
// intents included, read again every dueBatchMaxAge while the slots are
// full and most of the batch waits: at 50 ms per call that re-reading was
// a twentieth of the worker's CPU. A batch this size outlasts
// dueBatchMaxAge at the rates one worker reaches.
const dueFetchMax = 512

// dueBatchMaxAge bounds how long a fetched batch may be used: past it the
// batch is dropped and re-read, so an order that became due meanwhile
// (a retry, a confirmation poll) never waits behind a stale list long.
const dueBatchMaxAge = 250 * time.Millisecond

// dueRecheck is how soon the scheduler reads again while orders are due
// now, which bounds how late a retry or poll starts behind running work.
const dueRecheck = 50 * time.Millisecond

// dueBatch is what the last Due read of one queue returned and the
// scheduler has not started yet, soonest first. Only the scheduler
// goroutine touches it.
type dueBatch struct {
	orders  []store.Order
	fetched time.Time // by the worker's clock, before the read: see current
	// more: the store may hold due orders of this queue that are not in
	// the batch (the last read was full, new work arrived, or time
	// passed). Without it, a freed slot needs no read: everything due was
	// in hand.
	more bool
}

// Due work is two queues. An order's own steps (a new order, a retry, a
// cancel) go first on every slot that frees; confirmation polls take the
// slots left over. A quarter of the slots is kept for polls, so that
// neither side starves the other: 50,000 orders waiting for their debit
// to show must not stop new orders, and a flood of new orders must not
// stop the polls that complete (or compensate) the waiting ones. The work
// queue is read from the store; the polls wait in memory (waitingOrders).
var workSteps = func() []Step {
	var work []Step
	for _, s := range Steps() {
		if s != StepConfirm && s != StepDone { // polls wait in memory; done is never due
			work = append(work, s)
		}
	}
	return work
}()

// dueQueues are the work queue's batch in hand and the new orders the
// consumer handed over (see handoff), which start after that batch.
type dueQueues struct {
	work  dueBatch
	fresh []freshOrder
	epoch epoch // the lease the work was read under (shared.go)
}

// schedule starts due steps until ctx is cancelled. One timer serves every
// waiting order: it fires at the earliest next_run_at in the store.
//
// The timer is only ever moved earlier between firings: a worker woken
// every millisecond by finishing steps would otherwise push it forward on
// every wake, and work that only time makes due (a retry after its
// backoff, a confirmation poll) would wait for a quiet moment.
func (w *Worker) schedule(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	var (
		q       dueQueues
		timerAt = w.now() // when the timer fires; zero once it has
		paused  bool      // the store's writes were failing at the last pass
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wakeSched:
			fresh, inStore := w.fresh.take()
			q.fresh = append(q.fresh, fresh...)
			if inStore {
				q.work.more = true // replayed orders, or more than the handoff held
			}
		case <-w.slotFreed:
		case <-timer.C:
			timerAt = time.Time{}
			q.work.more = true // time made orders due
		}
		if failing := !w.writes.ok(); failing != paused {
			paused = failing
			q.work.more = q.work.more || !failing // what became due meanwhile was not looked for
		}
		if e := w.leaseEpoch(); e != q.epoch {
			// The lease the work in hand was read under is gone.
			q = dueQueues{epoch: e, work: dueBatch{more: true}}
		}
		if w.ready.Load() {
			w.fill(ctx, &q.work, workSteps, w.workRoom, &q.fresh, q.epoch)
			w.startPolls()
		} else {
			q = dueQueues{epoch: q.epoch} // the store has them; the waiting orders stay
		}
		w.forgetCommits()
		if !timerAt.IsZero() && timerAt.Sub(w.now()) <= dueRecheck {
			continue // fires soon enough whatever the store says
		}
		d := w.untilNextDue(ctx, &q)
		if at := w.now().Add(d); timerAt.IsZero() || at.Before(timerAt) {
			timer.Reset(d)
			timerAt = at
		}
	}
}

func (w *Worker) freeSlots() int { return w.slots.free() }

// workRoom is how many of an order's own steps may start now: the free
// slots less the part of the poll reserve that polls are not using, or
// none while the store's writes fail and the next probe is not due.
func (w *Worker) workRoom() int {
	if !w.writes.mayStart(w.now()) {
		return 0
	}
	reserve := w.slots.capacity() / 4
	return w.freeSlots() - max(0, reserve-int(w.polls.Load()))
}

// fill starts due orders of one queue while room() allows, from the batch
// while it lasts and is fresh, then from the handed-over new orders (when
// fresh is not nil), then from the store.
func (w *Worker) fill(ctx context.Context, batch *dueBatch, steps []Step, room func() int, fresh *[]freshOrder, e epoch) {
	if len(batch.orders) > 0 && w.now().Sub(batch.fetched) > dueBatchMaxAge {
		*batch = dueBatch{more: true}
	}
	if fresh != nil && len(*fresh) > 0 && w.now().Sub((*fresh)[0].at) > dueBatchMaxAge {
		// Held too long for the commit memory to vouch for them: the
		// store has them.
		clear(*fresh)
		*fresh = (*fresh)[:0]
		batch.more = true
	}
	for {
		for len(batch.orders) > 0 {
			if room() <= 0 {
				return
			}
			o := batch.orders[0]
			batch.orders[0] = store.Order{} // let the intent bytes go
			batch.orders = batch.orders[1:]
			w.tryStartStep(o, batch.fetched, nil, e)
		}
		for fresh != nil && len(*fresh) > 0 {
			if room() <= 0 {
				return
			}
			f := (*fresh)[0]
			(*fresh)[0] = freshOrder{}
			*fresh = (*fresh)[1:]
			if f.epoch == e {
				w.tryStartStep(f.order, f.at, nil, e)
			}
		}
		n := room()
		if n <= 0 || !batch.more {
			return
		}
		limit := max(n, min(dueFetchFactor*w.slots.capacity(), dueFetchMax))
		fetched := w.now() // before the read: see current
		due, err := w.cfg.Store.Due(ctx, fetched, limit, steps, w.isRunning)
		if err != nil {
			if ctx.Err() == nil {
				w.log.Error("reading due orders", "err", err)
			}
			return
		}
		*batch = dueBatch{orders: due, fetched: fetched, more: len(due) == limit}
		if len(due) == 0 {
			return
		}
		// The next pass starts what fits; a read that was not full left
		// more false, so it stops there.
	}
}

// startPolls starts the confirmation polls that are due, in the slots
// the work queue left free.
func (w *Worker) startPolls() {
	for w.freeSlots() > 0 {
		wo, ok := w.waiting.popDue(w.now())
		if !ok {
			return
		}
		if !w.tryStartStep(store.Order{OutOrderID: wo.id, Step: StepConfirm}, w.now(), &wo, w.leaseEpoch()) {
			w.waiting.pushBack(wo) // draining, or lost the slot: later
			return
		}
	}
}

func (w *Worker) untilNextDue(ctx context.Context, q *dueQueues) time.Duration {
	if resume, paused := w.writes.paused(w.now()); paused {
		// Nothing starts before then, whatever is due; a write that
		// succeeds meanwhile wakes the scheduler.
		return max(resume.Sub(w.now()), time.Millisecond)
	}
	if len(q.work.orders) > 0 || len(q.fresh) > 0 {
		// Due work is in hand and no slot is free for it: a finishing
		// step wakes us; the age limit re-reads the batch otherwise.
		return dueBatchMaxAge
	}
	d := maxIdle
	if next, ok, err := w.cfg.Store.NextDue(ctx, workSteps); err == nil && ok {
		d = min(d, next.Sub(w.now()))
	}
	if next, ok := w.waiting.next(); ok {
		d = min(d, next.Sub(w.now()))
	}
	if d < time.Millisecond {
		// Due now: running orders (their rows say due until their steps
		// commit) or orders waiting for a slot. Look again soon.
		return dueRecheck
	}
	return d
}

func (w *Worker) isRunning(outOrderID string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.running[outOrderID]
	return ok
}

// tryStart runs o's due step in a free slot, unless one of its steps is
// already under way or every slot is taken (then the scheduler finds it
// later, since it is due in the store). readAt is when o was read (taken
// before the read began).
func (w *Worker) tryStart(o store.Order, readAt time.Time) bool {
	return w.tryStartStep(o, readAt, nil, w.leaseEpoch())
}

// tryStartStep is tryStart for o, or for the waiting order wait when that
// is not nil (o then carries only its key and step), as work of the lease
// epoch e.
func (w *Worker) tryStartStep(o store.Order, readAt time.Time, wait *confirmState, e epoch) bool {
	if w.draining.Load() {
		return false
	}
	if !w.slots.tryAcquire() {
		return false
	}
	w.mu.Lock()
	// Not owning: our prefix lease may have lapsed, and another worker
	// may run this order's intents now.
	if _, busy := w.running[o.OutOrderID]; busy || !w.owning() || !w.writes.admit(w.now()) {
		w.mu.Unlock()
		w.slots.release()
		return false
	}
	w.running[o.OutOrderID] = struct{}{}
	w.mu.Unlock()
	w.steps.Add(1)
	if w.metrics != nil {
		w.metrics.inflight.Inc()
	}
	if o.Step == StepConfirm {
		w.polls.Add(1)
	}
	go w.execute(o, readAt, wait, e)
	return true
}
