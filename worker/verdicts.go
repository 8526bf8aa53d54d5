package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coinsaga/coinsaga/providers/sud"
	"github.com/coinsaga/coinsaga/store"
)

// verdicts holds the execution states SUD notified
// (sud.mg.merchant.order.changed) until the orders' own steps read them:
// the pay step does not pay for an action SUD reported failed, and the
// verdict step completes or compensates without asking query_order. It is
// memory only and a hint: after a restart the verdict step asks SUD.
type verdicts struct {
	mu    sync.Mutex
	by    map[string]notified
	swept time.Time
	now   func() time.Time
}

type notified struct {
	status string
	at     time.Time
}

// verdictMemory is how long a notified verdict waits for its order.
const verdictMemory = time.Hour

func newVerdicts(now func() time.Time) *verdicts {
	return &verdicts{by: map[string]notified{}, now: now}
}

// put records SUD's state of an order's action. A final state is never
// replaced by an earlier one that a late notification brings.
func (v *verdicts) put(outOrderID, status string) {
	now := v.now()
	v.mu.Lock()
	defer v.mu.Unlock()
	if old, ok := v.by[outOrderID]; ok && final(old.status) && !final(status) {
		return
	}
	v.by[outOrderID] = notified{status: status, at: now}
	if now.Sub(v.swept) > verdictMemory {
		v.swept = now
		for id, n := range v.by {
			if now.Sub(n.at) > verdictMemory {
				delete(v.by, id)
			}
		}
	}
}

// peek returns what is known of an order's action: a notified final
// state, or else what the order itself recorded.
func (v *verdicts) peek(outOrderID, recorded string) string {
	if v == nil {
		return recorded
	}
	v.mu.Lock()
	n, ok := v.by[outOrderID]
	v.mu.Unlock()
	if ok && final(n.status) {
		return n.status
	}
	return recorded
}

// forget drops an order's notified state once its order no longer needs it.
func (v *verdicts) forget(outOrderID string) {
	v.mu.Lock()
	delete(v.by, outOrderID)
	v.mu.Unlock()
}

func final(status string) bool {
	return status == sud.StatusExecuteSuccess || status == sud.StatusExecuteFail
}

// SUDNotified takes SUD's notification that an order's action changed
// state (sud.mg.merchant.order.changed). It is a hint, never the only
// source: the pay step will not pay for an action notified failed, and an
// order waiting for its verdict is polled at once instead of at its next
// query_order. An error makes the caller answer SUD with a failure, so
// that SUD notifies again.
func (w *Worker) SUDNotified(ctx context.Context, outOrderID, status string) error {
	w.saga.verdicts.put(outOrderID, status)
	if w.metrics != nil {
		w.metrics.sudVerdicts.WithLabelValues(status).Inc()
	}
	if !final(status) {
		return nil
	}
	o, err := w.cfg.Store.Get(ctx, outOrderID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // pruned long ago, or another deployment's order
	}
	if err != nil {
		return fmt.Errorf("notify %s: %w", outOrderID, err)
	}
	out, changed := decideNotified(o, status, w.now())
	if !changed || w.isRunning(outOrderID) {
		return nil // not waiting for it, or about to run anyway
	}
	stored, err := w.cfg.Store.Apply(ctx, store.Transition{From: o, To: out.next,
		History: []store.HistoryEntry{{At: w.now(), State: o.State, Step: StepVerdict, Attempt: o.Attempt + 1,
			Detail: out.detail}}})
	if errors.Is(err, store.ErrStale) {
		return nil // it moved on meanwhile
	}
	if err != nil {
		return fmt.Errorf("notify %s: %w", outOrderID, err)
	}
	if !w.tryStart(stored, w.now()) {
		w.fresh.markStore()
		wake(w.wakeSched)
	}
	return nil
}
