package worker

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
	"unique"

	"github.com/coinsaga/coinsaga/events"
	"github.com/coinsaga/coinsaga/providers"
	"github.com/coinsaga/coinsaga/store"
)

// waitingOrders are the orders waiting for their debit to show in the
// balance, by the time of their next confirmation poll. They live in
// memory, not in the store's due index.
//
// A poll that sees nothing changes nothing that matters after a crash:
// the deadline is counted from the debit time, which is stored, and a
// restart that forgets the polls made since the last commit polls from the
// schedule stored then, earlier than needed: a harmless balance read or a
// few. So such a poll writes nothing; only the poll that
// sees the debit, or the deadline, commits. With 50,000 orders waiting and
// a poll every 15 s that spares 3,300 commits a second, which is what lets
// new orders flow beside them. The store still holds each waiting order as
// scheduled in the confirm step (with the poll time of its last commit),
// and a starting worker loads them all from there (loadWaiting).
//
// Only the scheduler pops; steps push when they leave an order waiting.
type waitingOrders struct {
	mu     sync.Mutex
	heap   waitHeap
	queued map[string]bool // out_order_ids in heap
}

// confirmState is an order in the confirm step, the one type the confirm
// path keeps it as: the debit its polls look for (the part of the row
// pollSince and decideConfirm read, see confirmView), the account whose
// balance shows it, and what the polls since its last commit changed. A
// poll that sees nothing needs no row read and no intent decode; only the
// poll that decides reads the row, to store the outcome on it.
//
// 50,000 of them are live heap the collector marks on every cycle, and a
// poll that sees nothing requeues a copy, so they are kept small: the
// debit is behind a pointer that every copy of one stored version shares,
// provider and state names are the shared constants (canonical), and the
// account is interned, one copy per player however many of their orders
// wait. It holds the player's login fields, as a decoded intent does, and
// like it is never logged.
type confirmState struct {
	id      string
	version int64 // the stored row these polls follow

	// The polls since the row: what each one that sees nothing changes.
	due     time.Time // next poll
	polls   int       // the row's Attempt after these polls
	errCode string    // the last read's error, if it failed
	err     string

	*confirmDebit // shared by every copy; never changed
}

// confirmDebit is the debit a confirm state's polls look for, as the stored
// row says, and the account they read: the part of confirmState no poll
// changes.
type confirmDebit struct {
	provider, billNo                                  string
	state                                             events.State
	amount                                            int64
	baselineBalance, baselineSaveAmt, baselineCostSum int64
	baselineGenBalance, usedGenAmt                    int64
	payBalance                                        int64
	hasPayBalance                                     bool
	debitedAt                                         time.Time
	acct                                              unique.Handle[providers.Account]
}

// confirmOf is o's confirm state, polled on acct.
func confirmOf(o store.Order, acct unique.Handle[providers.Account]) confirmState {
	d := &confirmDebit{provider: canonical(o.Provider, events.ProviderMOGS, events.ProviderMidas),
		state: canonical(o.State, events.StateDebited), billNo: o.BillNo,
		amount: o.Amount, baselineBalance: o.BaselineBalance, baselineSaveAmt: o.BaselineSaveAmt,
		baselineCostSum: o.BaselineCostSum, baselineGenBalance: o.BaselineGenBalance, usedGenAmt: o.UsedGenAmt,
		payBalance: o.PayBalance, hasPayBalance: o.HasPayBalance, debitedAt: o.DebitedAt, acct: acct}
	if d.billNo == o.OutOrderID {
		d.billNo = o.OutOrderID // the first bill of an order: one string for both
	}
	return confirmState{id: o.OutOrderID, version: o.Version,
		due: o.NextRunAt, polls: o.Attempt, errCode: o.ErrorCode, err: o.Error, confirmDebit: d}
}

// waitingOf is o, a stored row in the confirm step, waiting for its polls
// on acct.
func waitingOf(o store.Order, acct providers.Account) confirmState {
	return confirmOf(o, unique.Make(acct))
}

// confirmView is the part of o that pollSince and decideConfirm read, and
// nothing else: o through its confirm state and back. A field either of
// them starts reading belongs in confirmState (or its debit) too
// (TestConfirmViewDecidesAsTheWholeRow checks that they agree).
func confirmView(o store.Order) store.Order {
	v := confirmOf(o, unique.Handle[providers.Account]{}).view()
	v.Step = o.Step
	return v
}

// canonical returns the constant for a provider or state name, so that
// waiting orders share it rather than each keep the copy its row read.
func canonical[T ~string](name T, constants ...T) T {
	for _, c := range constants {
		if c == name {
			return c
		}
	}
	return name
}

// view is the order as its next poll reads it: confirmView of the stored
// row with the polls since applied.
func (c confirmState) view() store.Order {
	return store.Order{
		OutOrderID: c.id, Provider: c.provider, Amount: c.amount, BillNo: c.billNo,
		State: c.state, Step: StepConfirm, Attempt: c.polls, NextRunAt: c.due,
		ErrorCode: c.errCode, Error: c.err, Version: c.version,
		BaselineBalance: c.baselineBalance, BaselineSaveAmt: c.baselineSaveAmt, BaselineCostSum: c.baselineCostSum,
		BaselineGenBalance: c.baselineGenBalance, UsedGenAmt: c.usedGenAmt,
		HasPayBalance: c.hasPayBalance, PayBalance: c.payBalance, DebitedAt: c.debitedAt,
	}
}

// account is the account the polls read.
func (c confirmState) account() providers.Account { return c.acct.Value() }

// after returns c once a poll that saw nothing left the order as o.
func (c confirmState) after(o store.Order) confirmState {
	c.due, c.polls, c.errCode, c.err = o.NextRunAt, o.Attempt, o.ErrorCode, o.Error
	return c
}

// onto returns the stored row o with the polls applied, if o is the row
// they follow; a row that moved on since is returned as it is.
func (c confirmState) onto(o store.Order) store.Order {
	if o.Version == c.version {
		o.NextRunAt, o.Attempt, o.ErrorCode, o.Error = c.due, c.polls, c.errCode, c.err
	}
	return o
}

// waitHeap orders the waiting by their next poll. An entry is the due
// time and a pointer, not the order itself: 3,300 pops and pushes a second
// on a heap of 50,000 move entries around a lot, and small ones with one
// pointer cost the collector's write barriers little.
type waitHeap []waitEntry

type waitEntry struct {
	due int64 // UnixNano of wo.due
	wo  *confirmState
}

func (h waitHeap) Len() int           { return len(h) }
func (h waitHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h waitHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *waitHeap) Push(x any)        { *h = append(*h, x.(waitEntry)) }
func (h *waitHeap) Pop() any {
	old := *h
	last := old[len(old)-1]
	old[len(old)-1] = waitEntry{}
	*h = old[:len(old)-1]
	return last
}

// push adds o, due at o.NextRunAt and polled on acct, unless it is
// queued already.
func (q *waitingOrders) push(o store.Order, acct providers.Account) {
	q.pushBack(waitingOf(o, acct))
}

// pushBack adds wo (a popped order that could not start, or a new one),
// unless it is queued already.
func (q *waitingOrders) pushBack(wo confirmState) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.queued == nil {
		q.queued = map[string]bool{}
	}
	if q.queued[wo.id] {
		return
	}
	q.queued[wo.id] = true
	heap.Push(&q.heap, waitEntry{due: wo.due.UnixNano(), wo: &wo})
}

// popDue removes and returns the order polled soonest if it is due at now.
func (q *waitingOrders) popDue(now time.Time) (confirmState, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.heap) == 0 || q.heap[0].due > now.UnixNano() {
		return confirmState{}, false
	}
	wo := *heap.Pop(&q.heap).(waitEntry).wo
	delete(q.queued, wo.id)
	return wo, true
}

// clear drops every waiting order and returns how many there were.
func (q *waitingOrders) clear() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.heap)
	q.heap, q.queued = nil, nil
	return n
}

// next returns when the soonest poll is due.
func (q *waitingOrders) next() (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.heap) == 0 {
		return time.Time{}, false
	}
	return q.heap[0].wo.due, true
}

// waitingLoadPage bounds one store read of loadWaiting.
const waitingLoadPage = 1000

// loadWaiting queues every order the store holds as waiting in the
// confirm step: a starting worker's share of the orders a previous run
// left waiting. Their polls fall due at the times last stored, no later
// than the polls the previous run had planned.
func (w *Worker) loadWaiting(ctx context.Context) error {
	never := w.now().Add(100 * 365 * 24 * time.Hour)
	queued := func(id string) bool {
		w.waiting.mu.Lock()
		defer w.waiting.mu.Unlock()
		return w.waiting.queued[id]
	}
	loaded := 0
	for {
		page, err := w.cfg.Store.Due(ctx, never, waitingLoadPage, []Step{StepConfirm}, queued)
		if err != nil {
			return fmt.Errorf("loading orders waiting for confirmation: %w", err)
		}
		for _, o := range page {
			w.wait(o, nil, w.log.With("out_order_id", o.OutOrderID))
		}
		loaded += len(page)
		if len(page) < waitingLoadPage {
			break
		}
	}
	if loaded > 0 {
		w.log.Info("resuming orders waiting for confirmation", "orders", loaded)
	}
	return nil
}

// wait puts o, a stored row in the confirm step, among the waiting orders.
// in is its decoded intent, or nil to decode it from the row. A row whose
// intent no longer decodes cannot be polled: it stays in the store, as
// the step that finds such a row leaves it, for an operator to see.
func (w *Worker) wait(o store.Order, in *events.Intent, log *slog.Logger) {
	if in == nil {
		decoded, err := events.DecodeIntent(o.Intent)
		if err != nil {
			log.Error("stored intent does not decode", "err", err)
			return
		}
		in = &decoded
	}
	w.waiting.push(o, account(in))
}

// poll makes a waiting order's due confirmation poll on what the entry
// keeps (confirmView and the account). A poll that sees nothing only
// moves the entry to its next poll. One that decides (the debit showed,
// or the deadline passed) reads the row, decides again on the whole row
// with the same reading, and hands the order on to store the outcome and
// run what follows (a compensation).
func (w *Worker) poll(wo confirmState, log *slog.Logger, e epoch) {
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
			if e == w.leaseEpoch() {
				w.waiting.pushBack(wo.after(next))
			}
			return
		}
	}
	o, waiting, err2 := w.stillWaiting(ctx, wo.id)
	if err2 != nil {
		log.Error("reading a waiting order", "err", err2)
		wo.due = w.now().Add(rewaitDelay)
		if e == w.leaseEpoch() {
			w.waiting.pushBack(wo)
		}
		return
	}
	if !waiting {
		return
	}
	if o.Version != wo.version {
		w.waitAt(o, nil, log, e) // a newer row: poll on its facts
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
		w.drive(o, &in, c, log, e)
		return
	}
	o = c.record(w, o, decideConfirm(o, reading, readErr, p))
	w.drive(o, &in, c, log, e)
}

// rewaitDelay is how long a waiting order whose poll could not be stored
// waits before it is polled again.
const rewaitDelay = time.Second

// rewait puts a waiting order whose poll outcome could not be stored back
// among the waiting, as the store now holds it: the store's due index no
// longer brings confirmation polls, so an order left out here would wait
// for the next start.
func (w *Worker) rewait(from store.Order, log *slog.Logger, e epoch) {
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
	w.waitAt(o, nil, log, e)
}

// waitAt is wait for work of the lease epoch e: once that lease is gone,
// the order is no longer this worker's to hold (see leaseLost).
func (w *Worker) waitAt(o store.Order, in *events.Intent, log *slog.Logger, e epoch) {
	if e != w.leaseEpoch() {
		return
	}
	w.wait(o, in, log)
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
