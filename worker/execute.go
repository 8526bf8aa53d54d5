package worker

// Step execution and the commit policy: a started order runs its steps
// (steps.go makes the calls, saga.go decides), chains them in memory while
// saga.go's commitPolicy allows, and commits their outcomes in one
// transaction. The commit memory here tells a started order whether the
// row it was handed is still current.

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/store"
)

// commitMemory bounds how long a commit is remembered: longer than any
// row the scheduler holds can be old (dueBatchMaxAge plus a slow read).
const commitMemory = 2 * time.Second

// forgetCommits drops commits too old to make any held row stale.
func (w *Worker) forgetCommits() {
	now := w.now()
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
// its poll first (see poll). e is the lease epoch the work was read under.
func (w *Worker) execute(o store.Order, readAt time.Time, wait *confirmState, e epoch) {
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
		w.poll(*wait, log, e)
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
	w.drive(o, &in, change{}, log, e)
}

// drive runs o's steps, after the ones c holds, until one must wait, as
// work of the lease epoch e.
func (w *Worker) drive(o store.Order, in *events.Intent, c change, log *slog.Logger, e epoch) {
	for {
		if len(c.history) > 0 {
			var more bool
			if o, more = w.settle(o, in, &c, log, e); !more {
				return
			}
		}
		out, err := w.step(o, in, e)
		if errors.Is(err, errFenced) {
			log.Warn("saga step not started", "step", o.Step, "err", err)
			w.commit(c, log) // the store fences it too if the lease is gone
			return
		}
		if err != nil {
			log.Error("saga step", "step", o.Step, "err", err)
			w.commit(c, log) // keep what the steps before it did
			return
		}
		o = c.record(w, o, out)
	}
}

// settle carries out what commitPolicy decides follows the steps recorded
// in c, the order now being o: the next step at once in memory, a wait in
// memory, or a commit and then what afterCommit decides. It returns the
// order as it goes on and whether its next step runs now.
func (w *Worker) settle(o store.Order, in *events.Intent, c *change, log *slog.Logger, e epoch) (store.Order, bool) {
	switch commitPolicy(o, c.onlyPolls(o), w.now(), w.draining.Load()) {
	case thenRun:
		return o, true
	case thenWait:
		w.waitAt(o, in, log, e)
		return o, false
	}
	stored, ok := w.commit(*c, log)
	if !ok {
		if c.from.Step == StepConfirm {
			w.rewait(c.from, log, e)
		}
		return o, false
	}
	*c = change{}
	switch afterCommit(stored, w.now(), w.draining.Load()) {
	case thenWait:
		w.waitAt(stored, in, log, e)
		return stored, false
	case thenRun:
		return stored, true
	}
	return stored, false
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

// step runs one step of o: the provider call and the decision. A call
// that changes money starts only while the lease of epoch e is live and
// its local fence open (errFenced otherwise); this is the last check,
// made just before the call.
func (w *Worker) step(o store.Order, in *events.Intent, e epoch) (outcome, error) {
	if w.shared != nil && moneyStep(o.Step) && !w.mayMoveMoney(e) {
		return outcome{}, errFenced
	}
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
	c.moves = append(c.moves, move{from: from.State, to: to.State,
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
	case errors.Is(err, store.ErrLeaseLost):
		log.Warn("steps not recorded: this worker's lease is lost; the order's next owner resumes it from its last commit", "step", c.from.Step)
		w.noteLeaseLost(err)
		return stored, false
	case errors.Is(err, store.ErrNotOwner):
		log.Info("steps not recorded: the order belongs to another worker now", "step", c.from.Step)
		return stored, false
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
	w.committed[c.from.OutOrderID] = w.now()
	w.mu.Unlock()
	if len(c.outbox) > 0 {
		wake(w.wakeRelay)
	}
	for _, m := range c.moves {
		if w.metrics != nil {
			w.metrics.transition(m, w.now())
		}
		if m.from != m.to {
			log.Debug("order state", "from", m.from, "to", m.to)
		}
	}
	return stored, true
}
