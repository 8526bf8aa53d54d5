package worker

import (
	"context"
	"log/slog"
	"time"

	"github.com/coinsaga/coinsaga/store"
)

// pruneBatch is how many terminal orders one delete removes: small enough
// not to hold the store for long, and repeated until less is left.
const pruneBatch = 5000

// pruneEvery is how often retention looks for orders past their time.
const pruneEvery = time.Minute

// RunRetention deletes the worker's terminal orders keep after they ended,
// once a minute until ctx is done, so that the store stays the size of
// the recent past. A failed delete is logged and tried again next time.
func (w *Worker) RunRetention(ctx context.Context, keep time.Duration) {
	PruneLoop(ctx, w.cfg.Store, keep, w.cfg.Now, w.cfg.Logger)
}

// PruneLoop is RunRetention for a store without a worker; now is the
// clock that says how old an order is.
func PruneLoop(ctx context.Context, st store.Store, keep time.Duration, now func() time.Time, log *slog.Logger) {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		for {
			n, err := st.PruneTerminal(ctx, now().Add(-keep), pruneBatch)
			if err != nil {
				log.Warn("pruning old orders", "err", err)
			}
			if n < pruneBatch {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
