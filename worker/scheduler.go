package worker

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/coinsaga/coinsaga/events"
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
	fetched time.Time
	readAt  time.Time // monotonic, taken before the read: see current
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
var workSteps = []string{StepBaseline, StepOrder, StepPay, StepVerdict, StepCancel}

// dueQueues are the work queue's batch in hand and the new orders the
// consumer handed over (see handoff), which start after that batch.
type dueQueues struct {
	work  dueBatch
	fresh []freshOrder
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
		timerAt = time.Now() // when the timer fires; zero once it has
		paused  bool         // the store's writes were failing at the last pass
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
		if w.ready.Load() {
			w.fill(ctx, &q.work, workSteps, w.workRoom, &q.fresh)
			w.startPolls()
		} else {
			q = dueQueues{} // the store has them; the waiting orders stay
		}
		w.forgetCommits()
		if !timerAt.IsZero() && time.Until(timerAt) <= dueRecheck {
			continue // fires soon enough whatever the store says
		}
		d := w.untilNextDue(ctx, &q)
		if at := time.Now().Add(d); timerAt.IsZero() || at.Before(timerAt) {
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
func (w *Worker) fill(ctx context.Context, batch *dueBatch, steps []string, room func() int, fresh *[]freshOrder) {
	if len(batch.orders) > 0 && w.now().Sub(batch.fetched) > dueBatchMaxAge {
		*batch = dueBatch{more: true}
	}
	if fresh != nil && len(*fresh) > 0 && time.Since((*fresh)[0].at) > dueBatchMaxAge {
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
			w.tryStart(o, batch.readAt)
		}
		for fresh != nil && len(*fresh) > 0 {
			if room() <= 0 {
				return
			}
			f := (*fresh)[0]
			(*fresh)[0] = freshOrder{}
			*fresh = (*fresh)[1:]
			w.tryStart(f.order, f.at)
		}
		n := room()
		if n <= 0 || !batch.more {
			return
		}
		limit := max(n, dueFetchFactor*w.slots.capacity())
		readAt, fetched := time.Now(), w.now()
		due, err := w.cfg.Store.Due(ctx, fetched, limit, steps, w.isRunning)
		if err != nil {
			if ctx.Err() == nil {
				w.log.Error("reading due orders", "err", err)
			}
			return
		}
		*batch = dueBatch{orders: due, fetched: fetched, readAt: readAt, more: len(due) == limit}
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
		if !w.tryStartStep(store.Order{OutOrderID: wo.id, Step: StepConfirm}, time.Now(), &wo) {
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
	return w.tryStartStep(o, readAt, nil)
}

// tryStartStep is tryStart for o, or for the waiting order wait when that
// is not nil (o then carries only its key and step).
func (w *Worker) tryStartStep(o store.Order, readAt time.Time, wait *waitingOrder) bool {
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
	go w.execute(o, readAt, wait)
	return true
}

// commitMemory bounds how long a commit is remembered: longer than any
// row the scheduler holds can be old (dueBatchMaxAge plus a slow read).
const commitMemory = 2 * time.Second

// forgetCommits drops commits too old to make any held row stale.
func (w *Worker) forgetCommits() {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if now.Sub(w.lastForget) < commitMemory {
		return
	}
	w.lastForget = now
	for id, at := range w.committed {
		if now.Sub(at) > commitMemory {
			delete(w.committed, id)
		}
	}
}

// execute runs o's steps for as long as the next one is due at once, so
// that an order normally goes from accepted to its first confirmation poll
// without waiting for the scheduler. A waiting order (wait not nil) makes
// its poll first (see poll).
func (w *Worker) execute(o store.Order, readAt time.Time, wait *waitingOrder) {
	id, polling := o.OutOrderID, o.Step == StepConfirm
	defer func() {
		if polling {
			w.polls.Add(-1)
		}
		w.mu.Lock()
		delete(w.running, id)
		w.mu.Unlock()
		w.slots.release()
		if w.metrics != nil {
			w.metrics.inflight.Dec()
		}
		w.steps.Done()
		wake(w.slotFreed)
	}()
	log := w.log.With("out_order_id", id)
	if wait != nil {
		w.poll(*wait, log)
		return
	}
	o, due := w.current(o, readAt)
	if !due {
		return
	}
	in, ok := w.decoded.take(id, o.BodyHash)
	if !ok {
		var err error
		if in, err = events.DecodeIntent(o.Intent); err != nil {
			// Accepted intents decoded once already; a row that no longer
			// does is damage an operator must see.
			log.Error("stored intent does not decode", "err", err)
			return
		}
	}
	w.drive(o, &in, change{}, log)
}

// drive runs o's steps, after the ones c holds, until one must wait.
func (w *Worker) drive(o store.Order, in *events.Intent, c change, log *slog.Logger) {
	for {
		if len(c.history) > 0 {
			var more bool
			if o, more = w.settle(o, in, &c, log); !more {
				return
			}
		}
		out, err := w.step(o, in)
		if err != nil {
			log.Error("saga step", "step", o.Step, "err", err)
			w.commit(c, log) // keep what the steps before it did
			return
		}
		o = c.record(w, o, out)
	}
}

// settle decides what follows the steps recorded in c, the order now
// being o: the next step at once in memory, a commit, or a wait. It
// returns the order as it goes on and whether its next step runs now.
func (w *Worker) settle(o store.Order, in *events.Intent, c *change, log *slog.Logger) (store.Order, bool) {
	if c.onlyPolls(o) && o.NextRunAt.After(w.now()) {
		// Polls that saw nothing change nothing a restart needs (see
		// waitingOrders): wait in memory for the next one.
		w.wait(o, in, log)
		return o, false
	}
	if !w.mustCommit(o) {
		return o, true // the next step is due now and moves no money
	}
	stored, ok := w.commit(*c, log)
	if !ok {
		if c.from.Step == StepConfirm {
			w.rewait(c.from, log)
		}
		return o, false
	}
	*c = change{}
	if stored.Step == StepConfirm && !stored.NextRunAt.IsZero() {
		w.wait(stored, in, log)
		return stored, false
	}
	due := !stored.NextRunAt.IsZero() && !stored.NextRunAt.After(w.now()) && !w.draining.Load()
	return stored, due
}

// poll makes a waiting order's due confirmation poll on what the entry
// keeps (confirmView and the account). A poll that sees nothing only
// moves the entry to its next poll. One that decides (the debit showed,
// or the deadline passed) reads the row, decides again on the whole row
// with the same reading, and hands the order on to store the outcome and
// run what follows (a compensation).
func (w *Worker) poll(wo waitingOrder, log *slog.Logger) {
	view := wo.view()
	ctx, cancel := context.WithTimeout(w.stepCtx, w.cfg.StepTimeout)
	defer cancel()
	started := w.now()
	p := w.policy(started)
	out, reading, readErr, err := w.saga.confirm(ctx, view, wo.account(), p)
	if err == nil {
		if w.metrics != nil {
			w.metrics.stepDone(StepConfirm, out, w.now().Sub(started))
		}
		if next := out.next; next.Step == StepConfirm && next.NextRunAt.After(w.now()) {
			w.waiting.pushBack(wo.after(next))
			return
		}
	}
	o, waiting, err2 := w.stillWaiting(ctx, wo.id)
	if err2 != nil {
		log.Error("reading a waiting order", "err", err2)
		wo.due = w.now().Add(rewaitDelay)
		w.waiting.pushBack(wo)
		return
	}
	if !waiting {
		return
	}
	if o.Version != wo.version {
		w.wait(o, nil, log) // a newer row: poll on its facts
		return
	}
	o = wo.onto(o)
	in, decodeErr := events.DecodeIntent(o.Intent)
	if decodeErr != nil {
		log.Error("stored intent does not decode", "err", decodeErr)
		return
	}
	var c change
	if err != nil {
		// The entry could not be polled on (no wallet for its provider
		// any more): the step itself, on the whole row, says what that
		// means for the order.
		w.drive(o, &in, c, log)
		return
	}
	o = c.record(w, o, decideConfirm(o, reading, readErr, p))
	w.drive(o, &in, c, log)
}

// rewaitDelay is how long a waiting order whose poll could not be stored
// waits before it is polled again.
const rewaitDelay = time.Second

// rewait puts a waiting order whose poll outcome could not be stored back
// among the waiting, as the store now holds it: the store's due index no
// longer brings confirmation polls, so an order left out here would wait
// for the next start.
func (w *Worker) rewait(from store.Order, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(w.stepCtx, 5*time.Second)
	defer cancel()
	o, waiting, err := w.stillWaiting(ctx, from.OutOrderID)
	if err != nil {
		log.Error("re-reading a waiting order whose poll was not stored", "err", err)
		o, waiting = from, true // as last known; the version check guards the next commit
	}
	if !waiting {
		return
	}
	o.NextRunAt = w.now().Add(rewaitDelay)
	w.wait(o, nil, log)
}

// stillWaiting re-reads a waiting order's row. It is false when nothing
// waits any more: the order was pruned, or a newer change moved it out of
// the confirm step.
func (w *Worker) stillWaiting(ctx context.Context, outOrderID string) (store.Order, bool, error) {
	o, err := w.cfg.Store.Get(ctx, outOrderID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return o, false, nil
	case err != nil:
		return o, false, err
	}
	return o, o.Step == StepConfirm && !o.NextRunAt.IsZero(), nil
}

// current returns o as last committed, now that this goroutine owns it,
// and whether it is still due. A row read while an earlier owner was
// finishing may predate that owner's last commit (a Due read races the end
// of a running step, and the scheduler keeps a batch of rows for a while);
// acting on it would repeat a provider call on old data. Only a commit
// changes the row, so a row read before the order's last commit (noted
// once the commit returned) is re-read; any other row is current already.
// Owners that commit nothing, like most confirmation polls, leave no note.
func (w *Worker) current(o store.Order, readAt time.Time) (store.Order, bool) {
	w.mu.Lock()
	committedAt, ok := w.committed[o.OutOrderID]
	w.mu.Unlock()
	if ok && !committedAt.Before(readAt) {
		ctx, cancel := context.WithTimeout(w.stepCtx, 5*time.Second)
		defer cancel()
		fresh, err := w.cfg.Store.Get(ctx, o.OutOrderID)
		if err != nil {
			w.log.Error("re-reading a due order", "out_order_id", o.OutOrderID, "err", err)
			return o, false
		}
		o = fresh
	}
	if o.NextRunAt.IsZero() || o.NextRunAt.After(w.now()) {
		return o, false // a newer change already moved it on
	}
	return o, true
}

// step runs one step of o: the provider call and the decision.
func (w *Worker) step(o store.Order, in *events.Intent) (outcome, error) {
	ctx, cancel := context.WithTimeout(w.stepCtx, w.cfg.StepTimeout)
	defer cancel()
	started := w.now()
	out, err := w.saga.run(ctx, o, in, w.policy(started))
	if err != nil {
		return out, err
	}
	if w.metrics != nil {
		w.metrics.stepDone(o.Step, out, w.now().Sub(started))
	}
	return out, nil
}

// mustCommit reports whether the steps run so far must be durable before
// anything else happens to o: before a call that moves money (so that a
// retry after a crash confirms against the recorded baseline, and a
// cancel is never lost), before any wait, and at the end of the saga.
// Other steps chain in memory and commit together: a crash before the
// commit only repeats calls whose idempotency keys make them harmless
// (create_order, a balance read, a pay with the same bill_no).
func (w *Worker) mustCommit(o store.Order) bool {
	return o.Step == StepPay || o.Step == StepCancel || o.NextRunAt.IsZero() ||
		o.NextRunAt.After(w.now()) || w.draining.Load()
}

// change is what consecutive steps of one order did since its row was
// last stored: the row as it is now, a history line per step, and the
// status events and dead letters reporting them.
type change struct {
	from    store.Order // as stored; its version is checked at commit
	to      store.Order
	history []store.HistoryEntry
	outbox  []store.Message
	moves   []move // per step, for metrics and logs
}

// move is what metrics and logs need of one step: kept apart from the two
// rows it joins, which would cost a polling order a kilobyte per poll.
type move struct {
	from, to  events.State
	ended     bool      // the step ended the saga (the order is no longer scheduled)
	createdAt time.Time // the order's, for the accepted-to-terminal time
}

// onlyPolls reports whether the change holds nothing but confirmation
// polls that saw nothing, the order now being o: no state change, no news.
func (c *change) onlyPolls(o store.Order) bool {
	return c.from.Step == StepConfirm && o.Step == StepConfirm && len(c.outbox) == 0
}

// record adds one step's outcome and returns the order after it.
func (c *change) record(w *Worker, from store.Order, out outcome) store.Order {
	if len(c.history) == 0 {
		c.from = from
	}
	to := out.next
	now := w.now()
	// A state change is news, and so is every end of the saga, even when
	// the state stays the same (a replayed failed order that fails again).
	if to.State != from.State || (to.NextRunAt.IsZero() && !from.NextRunAt.IsZero()) {
		to.Seq = from.Seq + 1
		c.outbox = append(c.outbox, statusMessage(w.cfg.Subjects, to, now))
	}
	if out.dead != "" {
		c.outbox = append(c.outbox, deadLetter(w.cfg.Subjects, to, out.dead, now))
	}
	c.history = append(c.history, store.HistoryEntry{At: now, State: to.State, Step: from.Step,
		Attempt: from.Attempt + 1, ErrorCode: to.ErrorCode, Error: to.Error, Detail: out.detail})
	c.moves = append(c.moves, move{from: events.State(from.State), to: events.State(to.State),
		ended: to.NextRunAt.IsZero() && !from.NextRunAt.IsZero(), createdAt: to.CreatedAt})
	c.to = to
	return to
}

// commit applies a change in one transaction and returns the stored row.
// It is false when nothing could be stored; the order then runs again
// from its last stored row, repeating only idempotent calls.
func (w *Worker) commit(c change, log *slog.Logger) (store.Order, bool) {
	if len(c.history) == 0 {
		return c.from, false
	}
	ctx, cancel := context.WithTimeout(w.stepCtx, 30*time.Second)
	defer cancel()
	stored, err := w.cfg.Store.Apply(ctx, store.Transition{From: c.from, To: c.to, History: c.history, Outbox: c.outbox})
	switch {
	case errors.Is(err, store.ErrStale):
		log.Info("order changed while its steps ran; leaving it to the newer change", "step", c.from.Step)
		return stored, false
	case errors.Is(err, store.ErrNotFound):
		// An answer, not a store that cannot write.
		log.Error("recording saga steps", "steps", len(c.history), "err", err)
		return stored, false
	case err != nil:
		// The order stays as last stored and runs again, with the same
		// idempotency keys, once the store writes; meanwhile steps pause.
		log.Debug("recording saga steps", "steps", len(c.history), "err", err)
		w.storeWriteFailed("saga steps", err)
		return stored, false
	}
	w.storeWriteOK()
	w.mu.Lock()
	w.committed[c.from.OutOrderID] = time.Now()
	w.mu.Unlock()
	if len(c.outbox) > 0 {
		wake(w.wakeRelay)
	}
	for _, m := range c.moves {
		if w.metrics != nil {
			w.metrics.transition(m)
		}
		if m.from != m.to {
			log.Debug("order state", "from", m.from, "to", m.to)
		}
	}
	return stored, true
}
