package worker

import (
	"container/heap"
	"context"
	"fmt"
	"sync"
	"time"

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

// waitingOrder is one order between polls: what the polls since its last
// commit changed, and nothing else. A poll re-reads the row (a read, far
// cheaper than the write it spares), so 50,000 waiting orders cost the
// collector 50,000 small objects, not their rows and intents.
type waitingOrder struct {
	id      string
	version int64     // the stored row these polls follow
	due     time.Time // next poll
	polls   int       // the row's Attempt after these polls
	errCode string    // the last read's error, if it failed
	err     string
}

func waitingOf(o store.Order) waitingOrder {
	return waitingOrder{id: o.OutOrderID, version: o.Version, due: o.NextRunAt, polls: o.Attempt,
		errCode: o.ErrorCode, err: o.Error}
}

// onto returns the stored row o with the polls applied, if o is the row
// they follow; a row that moved on since is returned as it is.
func (wo waitingOrder) onto(o store.Order) store.Order {
	if o.Version == wo.version {
		o.NextRunAt, o.Attempt, o.ErrorCode, o.Error = wo.due, wo.polls, wo.errCode, wo.err
	}
	return o
}

type waitHeap []waitingOrder

func (h waitHeap) Len() int           { return len(h) }
func (h waitHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h waitHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *waitHeap) Push(x any)        { *h = append(*h, x.(waitingOrder)) }
func (h *waitHeap) Pop() any {
	old := *h
	last := old[len(old)-1]
	old[len(old)-1] = waitingOrder{}
	*h = old[:len(old)-1]
	return last
}

// push adds o, due at o.NextRunAt, unless it is queued already.
func (q *waitingOrders) push(o store.Order) { q.pushBack(waitingOf(o)) }

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
	heap.Push(&q.heap, wo)
}

// popDue removes and returns the order polled soonest if it is due at now.
func (q *waitingOrders) popDue(now time.Time) (waitingOrder, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.heap) == 0 || q.heap[0].due.After(now) {
		return waitingOrder{}, false
	}
	wo := heap.Pop(&q.heap).(waitingOrder)
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
	return q.heap[0].due, true
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
			w.waiting.push(o)
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
