package worker

import (
	"container/heap"
	"context"
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

// waitingOrder is one order between polls: what a poll reads of it, and
// what the polls since its last commit changed. A poll that sees nothing
// needs no row read and no intent decode (see confirmView); only the poll
// that decides reads the row, to store the outcome on it.
type waitingOrder struct {
	id      string
	version int64     // the stored row these polls follow
	due     time.Time // next poll
	polls   int       // the row's Attempt after these polls
	errCode string    // the last read's error, if it failed
	err     string
	facts   *confirmFacts // shared by every copy of the entry; never changed
}

// confirmFacts are the rest of confirmView for the polls of one stored
// version: the debit they look for and the account whose balance shows
// it. Every waiting order holds one, so they are kept small: 50,000 of
// them are live heap the collector marks on every cycle. The account is
// interned, one copy per player however many of their orders wait; it
// holds the player's login fields, as a decoded intent does, and like it
// is never logged.
type confirmFacts struct {
	provider, state, billNo                           string
	amount                                            int64
	baselineBalance, baselineSaveAmt, baselineCostSum int64
	baselineGenBalance, usedGenAmt                    int64
	payBalance                                        int64
	hasPayBalance                                     bool
	debitedAt                                         time.Time
	account                                           unique.Handle[providers.Account]
}

func waitingOf(o store.Order, acct providers.Account) waitingOrder {
	v := confirmView(o)
	f := &confirmFacts{provider: canonical(v.Provider), state: canonical(v.State), billNo: v.BillNo,
		amount: v.Amount, baselineBalance: v.BaselineBalance, baselineSaveAmt: v.BaselineSaveAmt,
		baselineCostSum: v.BaselineCostSum, baselineGenBalance: v.BaselineGenBalance, usedGenAmt: v.UsedGenAmt,
		payBalance: v.PayBalance, hasPayBalance: v.HasPayBalance,
		debitedAt: v.DebitedAt, account: unique.Make(acct)}
	if f.billNo == v.OutOrderID {
		f.billNo = v.OutOrderID // the first bill of an order: one string for both
	}
	return waitingOrder{id: v.OutOrderID, version: v.Version, due: v.NextRunAt, polls: v.Attempt,
		errCode: v.ErrorCode, err: v.Error, facts: f}
}

// canonical returns the constant for a provider or state name, so that
// waiting orders share it rather than each keep the copy its row read.
func canonical(name string) string {
	switch name {
	case events.ProviderMOGS:
		return events.ProviderMOGS
	case events.ProviderMidas:
		return events.ProviderMidas
	case string(events.StateDebited):
		return string(events.StateDebited)
	}
	return name
}

// view is the order as its next poll reads it: confirmView of the stored
// row with the polls since applied.
func (wo waitingOrder) view() store.Order {
	f := wo.facts
	return store.Order{
		OutOrderID: wo.id, Provider: f.provider, Amount: f.amount, BillNo: f.billNo,
		State: f.state, Step: StepConfirm, Attempt: wo.polls, NextRunAt: wo.due,
		ErrorCode: wo.errCode, Error: wo.err, Version: wo.version,
		BaselineBalance: f.baselineBalance, BaselineSaveAmt: f.baselineSaveAmt, BaselineCostSum: f.baselineCostSum,
		BaselineGenBalance: f.baselineGenBalance, UsedGenAmt: f.usedGenAmt,
		HasPayBalance: f.hasPayBalance, PayBalance: f.payBalance, DebitedAt: f.debitedAt,
	}
}

// account is the account the polls read.
func (wo waitingOrder) account() providers.Account { return wo.facts.account.Value() }

// after returns wo once a poll that saw nothing left the order as o.
func (wo waitingOrder) after(o store.Order) waitingOrder {
	wo.due, wo.polls, wo.errCode, wo.err = o.NextRunAt, o.Attempt, o.ErrorCode, o.Error
	return wo
}

// onto returns the stored row o with the polls applied, if o is the row
// they follow; a row that moved on since is returned as it is.
func (wo waitingOrder) onto(o store.Order) store.Order {
	if o.Version == wo.version {
		o.NextRunAt, o.Attempt, o.ErrorCode, o.Error = wo.due, wo.polls, wo.errCode, wo.err
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
	wo  *waitingOrder
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
func (q *waitingOrders) pushBack(wo waitingOrder) {
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
func (q *waitingOrders) popDue(now time.Time) (waitingOrder, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.heap) == 0 || q.heap[0].due > now.UnixNano() {
		return waitingOrder{}, false
	}
	wo := *heap.Pop(&q.heap).(waitEntry).wo
	delete(q.queued, wo.id)
	return wo, true
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
		page, err := w.cfg.Store.Due(ctx, never, waitingLoadPage, []string{StepConfirm}, queued)
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
